"""What a Hugging Face config.json leaves unsaid, told as notes: the defaults a config naming only `model_type`
is counted with, and the remote code (`auto_map`) flopcalc never runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Keys that say nothing about the architecture's size: a config holding only these (and model_type) is counted
# with the family's defaults.
METADATA_KEYS = frozenset(
    {"model_type", "architectures", "transformers_version", "torch_dtype", "dtype", "auto_map", "_name_or_path"}
)
# The sizes a defaults note lists, where the family's config has them.
SIZE_KEYS = (
    "vocab_size",
    "hidden_size",
    "d_model",
    "n_embd",
    "num_hidden_layers",
    "num_layers",
    "n_layer",
    "encoder_layers",
    "decoder_layers",
    "num_attention_heads",
    "n_head",
    "num_key_value_heads",
    "intermediate_size",
    "d_ff",
    "max_position_embeddings",
    "image_size",
    "patch_size",
    "num_local_experts",
    "num_experts_per_tok",
)


def config_notes(values: Mapping[str, Any], config: Any, model: Any) -> tuple[str, ...]:
    """Notes on the config as written (`values`, the JSON) next to what was built from it (`config`, `model`)."""
    notes = []
    if not set(values) - METADATA_KEYS:
        sizes = [
            f"{key} {getattr(config, key):,}"
            for key in SIZE_KEYS
            if isinstance(getattr(config, key, None), int) and not isinstance(getattr(config, key), bool)
        ]
        notes.append(
            f"the config names only model_type {values.get('model_type')!r}: counted with "
            f"{type(config).__name__}'s defaults ({', '.join(sizes) or 'no sizes of its own'}); "
            "write the sizes you mean into the config"
        )
    auto_map = values.get("auto_map")
    if auto_map:
        named = sorted({str(ref) for ref in (auto_map.values() if isinstance(auto_map, Mapping) else [auto_map])})
        notes.append(
            f"auto_map names remote code ({', '.join(named)}); flopcalc never runs it: counted "
            f"transformers' own {type(model).__name__} for model_type {values.get('model_type')!r}"
        )
    return tuple(notes)
