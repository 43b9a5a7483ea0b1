"""Published transformer shapes the tests and benchmarks plan with: one home each, as `model_from_params` keywords
and, through `plan_flags`, as the flags `flopcalc plan` takes. Torch-free, so a benchmark can read it cheaply."""

from __future__ import annotations

# Llama-3-70B: 80 layers of 8192, 64 query heads sharing 8 key/value heads, a SwiGLU of 28672, 128,256 tokens
LLAMA_3_70B: dict[str, int | str] = dict(
    layers=80, hidden=8192, heads=64, kv_heads=8, ffn=28672, mlp="swiglu", vocab=128256
)


def plan_flags(shape: dict[str, int | str]) -> tuple[str, ...]:
    """`shape` as `flopcalc plan` flags, in its order: kv_heads=8 gives --kv-heads 8."""
    return tuple(word for key, value in shape.items() for word in (f"--{key.replace('_', '-')}", str(value)))
