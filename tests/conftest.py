"""Shared test helpers: paths of the shipped examples, a tiny mixture-of-experts config."""

import json
from pathlib import Path

import pytest

from flopcalc.loaders.zoo import define_torchvision_ops

# as flopcalc does before it imports them: the tests that import transformers or Lightning themselves need
# torchvision's ops defined where its wheel was built for another torch (flopcalc/loaders/zoo.py says why)
define_torchvision_ops()

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def examples() -> Path:
    return EXAMPLES


@pytest.fixture
def moe_config(tmp_path) -> Path:
    """A one-layer Mixtral config.json: 4 experts (hidden 32, ffn 64), each token routed to top-2 of them."""
    pytest.importorskip("transformers")
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "mixtral",
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "vocab_size": 100,
                "num_local_experts": 4,
                "num_experts_per_tok": 2,
            }
        )
    )
    return path
