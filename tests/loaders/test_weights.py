"""`--weights FILE`: a state dict or safetensors file put into any loaded model, refused in one line when it
does not match."""

import pytest
import torch
import torch.nn as nn

from flopcalc.errors import ModelLoadError
from flopcalc.loaders import load_model
from flopcalc.loaders.weights import apply_weights, read_state_dict
from flopcalc.spec import ModelSpec


def _model():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def test_a_torch_save_state_dict_replaces_the_values(tmp_path):
    source = _model()
    with torch.no_grad():
        source[0].weight.zero_()
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    target = _model()
    apply_weights(target, path)
    assert int((target[0].weight == 0).sum()) == 12


def test_a_safetensors_file_replaces_the_values(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    source = _model()
    with torch.no_grad():
        source[2].weight.fill_(0.5)
    path = tmp_path / "w.safetensors"
    save_file(source.state_dict(), str(path))
    target = _model()
    apply_weights(target, path)
    assert torch.equal(target[2].weight, torch.full((2, 3), 0.5))


def test_a_wrapped_checkpoint_is_unwrapped(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": _model().state_dict()}, path)
    assert set(read_state_dict(path)) == set(_model().state_dict())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("2.bias"), "missing 1 (2.bias)"),
        (lambda s: s.update(extra=torch.zeros(1)), "unexpected 1 (extra)"),
        (lambda s: s.update({"0.weight": torch.zeros(3, 5)}), "0.weight is 3x5 in the file and 3x4 in the model"),
    ],
)
def test_weights_that_do_not_match_are_refused_in_one_line(tmp_path, change, message):
    state = _model().state_dict()
    change(state)
    path = tmp_path / "w.pt"
    torch.save(state, path)
    with pytest.raises(ModelLoadError, match="does not match the model") as error:
        apply_weights(_model(), path)
    assert message in error.value.message and "\n" not in error.value.message


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "w.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a readable state dict"):
        apply_weights(_model(), path)
    torch.save([1, 2], path)
    with pytest.raises(ModelLoadError, match="not a name -> tensor state dict"):
        apply_weights(_model(), path)
    with pytest.raises(ModelLoadError, match="not found"):
        apply_weights(_model(), tmp_path / "missing.pt")


def test_load_model_applies_the_specs_weights(tmp_path, examples):
    source = load_model(ModelSpec(f"{examples / 'pruned.py'}:build"), device="cpu").module
    path = tmp_path / "pruned.pt"
    torch.save(source.state_dict(), path)
    loaded = load_model(ModelSpec(f"{examples / 'pruned.py'}:dense", weights=str(path)), device="cpu").module
    assert torch.equal(loaded[0].weight, source[0].weight)
    assert int((loaded[2].weight == 0).sum()) == 384
