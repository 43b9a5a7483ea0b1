"""The config.json files (transformers, diffusers) the tests price by hand: one home for the shapes several files share."""

from __future__ import annotations

import json
from pathlib import Path


def decoder(hidden: int, ffn: int, layers: int, heads: int, vocab: int, model_type: str = "llama", **more) -> dict:
    """The keys every Llama-style config.json gives; `more` adds the optional ones (KV heads, positions, a tied head)."""
    return dict(
        model_type=model_type,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        vocab_size=vocab,
        **more,
    )


def causal_lm(
    hidden: int, ffn: int, layers: int, heads: int, kv_heads: int, vocab: int, positions: int, model_type: str = "llama"
) -> dict:
    """A decoder-only config with an untied head, as Llama-2 ships it; `architectures` names the ForCausalLM class."""
    return decoder(
        hidden,
        ffn,
        layers,
        heads,
        vocab,
        model_type,
        architectures=[f"{model_type.capitalize()}ForCausalLM"],
        num_key_value_heads=kv_heads,
        max_position_embeddings=positions,
        tie_word_embeddings=False,
    )


def gpt2(width: int, layers: int, heads: int, vocab: int, positions: int, **more) -> dict:
    """A GPT-2 config.json in its own key names (n_embd, n_layer, ...); `more` adds token ids or `architectures`."""
    return dict(
        model_type="gpt2", n_embd=width, n_layer=layers, n_head=heads, vocab_size=vocab, n_positions=positions, **more
    )


# (hidden, ffn, layers, heads, kv heads, vocab, positions) as the published config.json files give them
LLAMA_2_7B = causal_lm(4096, 11008, 32, 32, 32, 32000, 4096)
TINYLLAMA = causal_lm(2048, 5632, 22, 32, 4, 32000, 2048)  # TinyLlama-1.1B: 4 KV heads for 32 query heads
TINY_LLAMA = causal_lm(64, 160, 2, 4, 2, 1000, 256)  # small enough to build on the CPU in a CLI test
# one GPT-2 block of width 16 over 32 positions, its token ids inside the 64-word vocabulary
TINY_GPT2 = gpt2(16, 1, 2, 64, 32, bos_token_id=0, eos_token_id=0)


# two BERT layers of width 64: attention that sees both ways, no causal mask
TINY_BERT = dict(model_type="bert", hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)


def tiny_bert(architecture: str) -> dict:
    """TINY_BERT over a 1,000-word vocabulary, built as `architecture`."""
    return dict(TINY_BERT, vocab_size=1000, architectures=[architecture])


# a two-level Stable-Diffusion-style UNet (cross-attention on the first level only), small enough to build on the CPU
TINY_UNET = {
    "_class_name": "UNet2DConditionModel",
    "block_out_channels": [32, 64],
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "layers_per_block": 1,
    "cross_attention_dim": 16,
    "attention_head_dim": 4,
    "norm_num_groups": 8,
    "sample_size": 8,
}


def write_config(folder: Path, values: dict) -> str:
    """`values` as `folder`/config.json; its path as text."""
    path = folder / "config.json"
    path.write_text(json.dumps(values))
    return str(path)
