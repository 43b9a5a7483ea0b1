"""Fixtures the command tests share: a config.json small enough for a CLI test to build."""

import pytest

from tests._hf_configs import TINY_LLAMA, write_config


@pytest.fixture
def tiny_llama(tmp_path) -> str:
    """TINY_LLAMA written to tmp_path/config.json (transformers builds it; skipped without it)."""
    pytest.importorskip("transformers")
    return write_config(tmp_path, TINY_LLAMA)
