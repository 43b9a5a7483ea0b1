"""ModelSpec: parsed and validated once, and its key is the one name of "this model counted this way"."""

import pytest

from flopcalc.errors import InputSpecError, UsageError
from flopcalc.spec import CallArgs, InputSpec, ModelSpec, parse_dims, parse_input_spec, parse_kwargs


@pytest.mark.parametrize(
    "text, spec",
    [
        ("1x3x224x224", InputSpec((1, 3, 224, 224))),
        ("8,1024", InputSpec((8, 1024))),
        ("1x2048:int64", InputSpec((1, 2048), "int64")),
        ("4x4:bf16", InputSpec((4, 4), "bfloat16")),
        ("pixel_values=1x3x224x224", InputSpec((1, 3, 224, 224), name="pixel_values")),
        ("decoder_input_ids = 1x128:INT64", InputSpec((1, 128), "int64", "decoder_input_ids")),
    ],
)
def test_input_specs(text, spec):
    assert parse_input_spec(text) == spec


@pytest.mark.parametrize(
    "text", ["", "1x", "ax3", "1x0", "2x2:complex7", "1.5x2", "=1x2", "2ids=1x2", "a-b=1x2", "ids=", "ids=ax2"]
)
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
        ModelSpec("m.onnx", seq_len=16),
        ModelSpec("m.onnx", dims={"batch": 8}),
        ModelSpec("m.onnx", frozen=["a.*"]),
        ModelSpec("m.onnx", causal_half=True),
        ModelSpec("m.onnx", backward=False),
    ]
    keys = {spec.key() for spec in variants}
    assert len(keys) == len(variants) and base.key() not in keys
    assert ModelSpec("m.onnx", device="cpu").key() == base.key()  # where it is counted does not change the count
    assert ModelSpec("m.onnx", dims={"b": 1, "a": 2}).key() == ModelSpec("m.onnx", dims={"a": 2, "b": 1}).key()


def test_input_specs_print_as_typed_in_normal_form():
    assert str(parse_input_spec("ids=1,8:long")) == "ids=1x8:int64"
    assert str(parse_input_spec("1x3:float32")) == "1x3"


def test_key_tells_named_from_positional_inputs_and_names_the_decoder_length():
    keys = {
        ModelSpec("t5.json", inputs=["1x8:int64"]).key(),
        ModelSpec("t5.json", inputs=["input_ids=1x8:int64"]).key(),
        ModelSpec("t5.json", inputs=["decoder_input_ids=1x8:int64"]).key(),
        ModelSpec("t5.json", decoder_seq_len=8).key(),
        ModelSpec("t5.json").key(),
    }
    assert len(keys) == 5
    assert ModelSpec("t5.json", decoder_seq_len=8).key() == "t5.json --decoder-seq-len 8"


def test_call_args_read_every_form_of_inputs():
    assert CallArgs.of(("a", "b")) == CallArgs(("a", "b"))
    assert CallArgs.of({"x": 1}) == CallArgs((), {"x": 1})
    assert CallArgs.of("t").named() == [(None, "t")]
    assert CallArgs(("a",), {"k": "v"}).call(lambda *a, **k: (a, k)) == (("a",), {"k": "v"})


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
        ({"batch_size": 0}, InputSpecError, "batch_size 0"),
        ({"seq_len": -1}, InputSpecError, "seq_len -1"),
        ({"decoder_seq_len": 0}, InputSpecError, "decoder_seq_len 0"),
        ({"max_layers": 0}, UsageError, "max_layers 0"),
        ({"inputs": ["ids=1x2", "ids=1x3"]}, InputSpecError, "--input ids= is given twice"),
        ({"dims": {"batch": 0}}, UsageError, "--dim batch=0"),
        ({"device": "tpu"}, UsageError, "--device 'tpu'"),
    ],
)
def test_bad_options_fail_when_the_spec_is_made(options, error, message):
    with pytest.raises(error, match=message):
        ModelSpec("net.py", **options)


@pytest.mark.parametrize("option", ["batch_size", "seq_len", "decoder_seq_len", "max_layers"])
def test_an_error_about_one_option_carries_its_name_for_the_cli_to_map(option):
    from flopcalc.errors import FlopcalcError

    with pytest.raises(FlopcalcError) as caught:
        ModelSpec("net.py", **{option: 0})
    assert caught.value.field == option and caught.value.message.startswith(f"{option} 0 ")


def test_option_parsers():
    assert parse_kwargs('{"depth": 50}') == {"depth": 50} and parse_kwargs(None) == {}
    assert parse_dims(["batch=8", "seq=128"]) == {"batch": 8, "seq": 128}
    with pytest.raises(UsageError, match="not valid JSON"):
        parse_kwargs("{depth")
    with pytest.raises(UsageError, match="JSON object"):
        parse_kwargs("[1]")
    with pytest.raises(UsageError, match="NAME=SIZE"):
        parse_dims(["batch"])
