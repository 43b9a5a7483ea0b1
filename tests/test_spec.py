"""ModelSpec: parsed and validated once, and its key is the one name of "this model counted this way"."""

import pytest

from flopcalc.errors import InputSpecError, UsageError
from flopcalc.spec import InputSpec, ModelSpec, parse_dims, parse_input_spec, parse_kwargs


@pytest.mark.parametrize(
    "text, spec",
    [("1x3x224x224", InputSpec((1, 3, 224, 224))), ("8,1024", InputSpec((8, 1024))),
     ("1x2048:int64", InputSpec((1, 2048), "int64")), ("4x4:bf16", InputSpec((4, 4), "bfloat16"))],
)
def test_input_specs(text, spec):
    assert parse_input_spec(text) == spec


@pytest.mark.parametrize("text", ["", "1x", "ax3", "1x0", "2x2:complex7", "1.5x2"])
def test_bad_input_specs(text):
    with pytest.raises(InputSpecError):
        parse_input_spec(text)


def test_key_makes_files_absolute_and_lists_inputs_batch_and_kwargs(tmp_path, monkeypatch):
    (tmp_path / "net.py").write_text("")
    monkeypatch.chdir(tmp_path)
    key = ModelSpec("net.py:build", inputs=["8x1024:int64"], batch_size=4, kwargs={"depth": 2}).key()
    # the form calibration files written before ModelSpec existed use: their entries keep matching
    assert key == f'{tmp_path / "net.py"}:build --input 8x1024:int64 --batch-size 4 --kwargs {{"depth":2}}'
    assert ModelSpec("missing.py:build").key() == "missing.py:build"


def test_key_names_every_option_that_changes_the_count():
    base = ModelSpec("m.onnx")
    variants = [
        ModelSpec("m.onnx", seq_len=16), ModelSpec("m.onnx", dims={"batch": 8}), ModelSpec("m.onnx", frozen=["a.*"]),
        ModelSpec("m.onnx", causal_half=True), ModelSpec("m.onnx", backward=False),
    ]
    keys = {spec.key() for spec in variants}
    assert len(keys) == len(variants) and base.key() not in keys
    assert ModelSpec("m.onnx", device="cpu").key() == base.key()  # where it is counted does not change the count
    assert ModelSpec("m.onnx", dims={"b": 1, "a": 2}).key() == ModelSpec("m.onnx", dims={"a": 2, "b": 1}).key()


def test_spec_is_frozen_and_holds_tuples():
    spec = ModelSpec("net.py", inputs=["2x3"], frozen=["x"])
    assert spec.inputs == ("2x3",) and spec.frozen == ("x",)
    assert spec.input_specs == (InputSpec((2, 3)),)
    with pytest.raises(AttributeError):
        spec.source = "other.py"  # type: ignore[misc]


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"inputs": ["2xq"]}, InputSpecError, "not a shape"),
        ({"batch_size": 0}, InputSpecError, "--batch-size 0"),
        ({"seq_len": -1}, InputSpecError, "--seq-len -1"),
        ({"dims": {"batch": 0}}, UsageError, "--dim batch=0"),
        ({"device": "tpu"}, UsageError, "--device 'tpu'"),
    ],
)
def test_bad_options_fail_when_the_spec_is_made(options, error, message):
    with pytest.raises(error, match=message):
        ModelSpec("net.py", **options)


def test_option_parsers():
    assert parse_kwargs('{"depth": 50}') == {"depth": 50} and parse_kwargs(None) == {}
    assert parse_dims(["batch=8", "seq=128"]) == {"batch": 8, "seq": 128}
    with pytest.raises(UsageError, match="not valid JSON"):
        parse_kwargs("{depth")
    with pytest.raises(UsageError, match="JSON object"):
        parse_kwargs("[1]")
    with pytest.raises(UsageError, match="NAME=SIZE"):
        parse_dims(["batch"])
