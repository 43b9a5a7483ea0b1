from dataclasses import asdict

import pytest

from flopcalc.errors import UsageError
from flopcalc.plan import GivenShape, Shape, model_from_params, transformer_shape
from flopcalc.predict import TransformerShape

LLAMA_7B = GivenShape(layers=32, hidden=4096, heads=32, ffn=11008, mlp="swiglu", vocab=32000)


def test_a_given_shape_passed_whole_plans_as_its_fields_by_keyword():
    whole = model_from_params(6.7e9, 2048, LLAMA_7B)
    by_keyword = model_from_params(6.7e9, 2048, **asdict(LLAMA_7B))
    assert whole == by_keyword
    assert whole.ffn == round(1.5 * 11008) and whole.vocab == 32000 and whole.kv_heads == 32


def test_keywords_override_the_given_shapes_fields():
    flash = model_from_params(None, 2048, LLAMA_7B)
    math = model_from_params(None, 2048, LLAMA_7B, attention="math")
    assert flash.activations is not None and math.activations is not None
    assert not flash.activations.block_scores.floating_elements
    assert math.activations.block_scores.floating_elements == 32 * 2 * 32 * 2048**2  # 2 x a s^2 per layer
    assert math.source.endswith("--mlp swiglu --attention math (N = 6.607e+09 from the shape)")
    with pytest.raises(TypeError):
        model_from_params(None, 2048, LLAMA_7B, depth=3)


def test_flags_name_each_figure_none_where_not_given_and_the_kinds_at_their_defaults():
    shape = GivenShape(layers=2, hidden=8, heads=2, head_dim=4, mlp="swiglu")
    flags = {
        "--layers": 2,
        "--hidden": 8,
        "--heads": 2,
        "--kv-heads": None,
        "--head-dim": 4,
        "--ffn": None,
        "--vocab": None,
        "--mlp": "swiglu",
        "--attention": None,
    }
    assert shape.flags() == flags
    assert shape.sizes() == {flag: value for flag, value in flags.items() if flag not in ("--mlp", "--attention")}
    assert GivenShape().flags() == dict.fromkeys(shape.flags())


def test_the_source_line_names_every_figure_given_in_one_order():
    model = model_from_params(
        7e9,
        1024,
        layers=2,
        hidden=8,
        heads=2,
        kv_heads=1,
        head_dim=4,
        ffn=16,
        vocab=100,
        mlp="swiglu",
        attention="math",
    )
    assert model.source == (
        "--params 7e+09 --seq-len 1024 --layers 2 --hidden 8 --heads 2 --kv-heads 1 --head-dim 4 --ffn 16 "
        "--vocab 100 --mlp swiglu --attention math"
    )


def test_resolved_fills_in_the_defaults_and_none_gives_none():
    assert GivenShape(layers=2, hidden=8, heads=2, mlp="swiglu").resolved() == Shape(
        2, 8, 2, 2, 4, round(8 * 8 / 3), "swiglu", None, "flash"
    )
    assert GivenShape().resolved() is None
    assert transformer_shape(2, 8, 2, kv_heads=1) == GivenShape(2, 8, 2, kv_heads=1).resolved()
    with pytest.raises(UsageError, match="--kv-heads, --vocab need --layers, --hidden and --heads"):
        GivenShape(kv_heads=1, vocab=10).resolved()
    with pytest.raises(UsageError, match="--heads 4 is not divisible by --kv-heads 3"):
        GivenShape(layers=1, hidden=8, heads=4, kv_heads=3).resolved()


def test_the_step_time_models_shape_as_given():
    gpt = TransformerShape(layers=2, hidden=8, heads=2, seq_len=16, vocab=100, ffn=24, kv_heads=1)
    assert GivenShape.of_gemm_shape(gpt, attention="math") == GivenShape(
        layers=2, hidden=8, heads=2, kv_heads=1, ffn=24, vocab=100, attention="math"
    )
    plain = GivenShape.of_gemm_shape(TransformerShape(layers=2, hidden=8, heads=2, seq_len=16, vocab=100))
    assert plain.resolved() == Shape(2, 8, 2, 2, 4, 32, "gelu", 100, "flash")  # 4h MLP, K/V heads = heads
