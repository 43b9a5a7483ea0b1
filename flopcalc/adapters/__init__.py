"""Fine-tuning with adapters: LoRA put into a loaded model so its graph is counted and measured as it trains, and
the bytes of a frozen base held at a quantised dtype (QLoRA's NF4, LLM.int8()). Plain data over torch code: the
configuration and the storage formulas need no torch; `lora` does."""

from .config import DEFAULT_ALPHA_PER_RANK, LoraConfig, lora_config, read_peft_config
from .quantisation import BASE_DTYPES, WeightEntry, base_dtype, frozen_weight_bytes

__all__ = [
    "BASE_DTYPES",
    "DEFAULT_ALPHA_PER_RANK",
    "LoraConfig",
    "WeightEntry",
    "base_dtype",
    "frozen_weight_bytes",
    "lora_config",
    "read_peft_config",
]
