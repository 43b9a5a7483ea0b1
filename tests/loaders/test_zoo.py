"""`timm:NAME` and `torchvision:NAME`: built on meta without weights, counted at their default input size, and
checked against the GMACs and parameters torchvision publishes in its weights' metadata."""

import json
import sys

import pytest

import flopcalc
from flopcalc.errors import MissingDependencyError
from flopcalc.loaders.zoo import define_torchvision_ops, load_zoo, zoo_name
from tests._cli import invoke

# auxiliary classifiers that run in training mode (as flopcalc counts every model) and not in the published
# inference figures: built without them to compare
AUXILIARY = {"googlenet", "inception_v3"}


def torchvision_models():
    define_torchvision_ops()  # as the loader does (conftest does too): see flopcalc/loaders/zoo.py
    pytest.importorskip(
        "torchvision", reason="the torchvision extra is not installed: pip install 'flopcalc[torchvision]'"
    )
    from torchvision import models

    return models


def multiply_adds(report):
    """What torchvision's `_ops` counts: the multiply-adds of convolutions, matmuls and attention products."""
    by_category = report.to_dict()["totals"]["forward_by_category"]
    return (by_category["matmul"] + by_category["conv"] + by_category["attention"]) // 2


def check_published(name):
    models = torchvision_models()
    weights = models.get_model_weights(name).DEFAULT
    meta = weights.meta
    kwargs = {"aux_logits": False} if name in AUXILIARY else {}
    if name.startswith("vit_"):  # a ViT is built for one image size: its default weights' (vit_h_14's is 518)
        kwargs["image_size"] = weights.transforms.keywords["crop_size"]
    report = flopcalc.count(f"torchvision:{name}", backward=False, kwargs=kwargs)
    assert round(multiply_adds(report) / 1e9, 3) == meta["_ops"]
    if name != "inception_v3":  # its published parameters keep the auxiliary classifier its FLOPs leave out
        assert report.params == meta["num_params"]
    return report


def test_zoo_names():
    assert zoo_name("timm:resnet50") == ("timm", "resnet50")
    assert zoo_name("torchvision:vit_b_16") == ("torchvision", "vit_b_16")
    assert zoo_name("models/net.py:build") is None and zoo_name("keras:resnet50") is None


def test_torchvision_resnet50_matches_its_published_figures():
    report = check_published("resnet50")
    assert multiply_adds(report) == 4_089_184_256  # 4.09 GMACs
    assert report.params == 25_557_032
    assert report.inputs[0].shape == (1, 3, 224, 224)


def test_torchvision_vit_b_16_matches_its_published_figures():
    report = check_published("vit_b_16")
    assert round(multiply_adds(report) / 1e9, 2) == 17.56
    assert report.to_dict()["totals"]["forward_by_category"]["attention"] > 0  # its attention as attention


def test_googlenet_without_its_auxiliary_classifiers_matches_its_published_figures():
    check_published("googlenet")
    with_aux = flopcalc.count("torchvision:googlenet", backward=False)
    assert with_aux.params == 13_004_888  # the auxiliary classifiers, as built for training


def test_timm_resnet50_is_torchvision_resnet50(tmp_path):
    pytest.importorskip("timm", reason="the timm extra is not installed: pip install 'flopcalc[timm]'")
    result = invoke("count", "timm:resnet50", "--no-backward", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    by_category = data["totals"]["forward_by_category"]
    assert (by_category["conv"] + by_category["matmul"]) // 2 == 4_089_184_256
    assert data["totals"]["params"] == 25_557_032
    assert data["inputs"] == [{"name": None, "shape": [1, 3, 224, 224], "dtype": "float32"}]
    assert "input 1x3x224x224: the size of timm's pretrained config for resnet50" in data["notes"]


def test_batch_size_and_input_size_options():
    torchvision_models()
    one = invoke("count", "torchvision:resnet18", "--format", "json")
    eight = invoke("count", "torchvision:resnet18", "--batch-size", 8, "--format", "json")
    assert one.exit_code == 0 and eight.exit_code == 0, one.output + eight.output
    for category in ("conv", "matmul"):  # per example; batch norm's statistics are per batch, not per example
        assert (
            json.loads(eight.stdout)["totals"]["forward_by_category"][category]
            == 8 * json.loads(one.stdout)["totals"]["forward_by_category"][category]
        )
    assert json.loads(eight.stdout)["inputs"][0]["shape"] == [8, 3, 224, 224]
    larger = invoke("count", "torchvision:resnet18", "--input", "1x3x448x448", "--format", "json")
    data = json.loads(larger.stdout)
    assert (
        data["totals"]["forward_by_category"]["conv"]
        == 4 * json.loads(one.stdout)["totals"]["forward_by_category"]["conv"]
    )
    assert not any("crop size" in note for note in data["notes"])  # the default input is not in use


def test_kwargs_go_to_the_builder():
    torchvision_models()
    ten = flopcalc.count("torchvision:resnet18", kwargs={"num_classes": 10}, backward=False)
    assert ten.params == 11_689_512 - 512 * 1000 - 1000 + 512 * 10 + 10


def test_a_vit_is_sized_by_its_own_image_size():
    models = torchvision_models()
    loaded = load_zoo(
        "torchvision", "vit_b_16", kwargs={"image_size": 384}, device="meta", source="torchvision:vit_b_16"
    )
    assert loaded.example_inputs[0].shape == (1, 3, 384, 384)
    assert loaded.example_notes == ("input 1x3x384x384: the image_size vit_b_16 is built with",)
    assert models.get_model_weights("vit_b_16").DEFAULT.transforms.keywords["crop_size"] == 224


@pytest.mark.parametrize(
    "source, message",
    [
        ("torchvision:resnet5", "torchvision has no model 'resnet5' (did you mean resnet50"),
        ("timm:not_a_model", "timm has no model 'not_a_model'"),
        ("torchvision:", "'torchvision:' names no model"),
    ],
)
def test_unknown_names_are_one_line(source, message):
    pytest.importorskip(source.partition(":")[0])
    result = invoke("count", source)
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert message in result.output


def test_options_for_configs_are_refused():
    torchvision_models()
    result = invoke("count", "torchvision:resnet18", "--seq-len", 128)
    assert result.exit_code == 2 and "--seq-len applies to Hugging Face config.json models" in result.output


def test_models_without_one_image_input_ask_for_it():
    torchvision_models()
    result = invoke("count", "torchvision:r3d_18")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "torchvision:r3d_18 takes a clip, batch x channels x frames x H x W" in result.output
    clip = invoke("count", "torchvision:r3d_18", "--input", "1x3x16x112x112", "--no-backward", "--format", "json")
    assert clip.exit_code == 0, clip.output
    assert json.loads(clip.stdout)["totals"]["forward_by_category"]["conv"] > 0


@pytest.mark.parametrize("library", ["timm", "torchvision"])
def test_a_missing_extra_names_its_install(library, monkeypatch):
    monkeypatch.setitem(sys.modules, library, None)  # as if not installed: importing it raises ImportError
    with pytest.raises(MissingDependencyError, match=rf"pip install 'flopcalc\[{library}\]'"):
        load_zoo(library, "resnet50", kwargs={}, device="meta", source=f"{library}:resnet50")


def test_torchvision_ops_are_defined_once_imported():
    torchvision_models()
    import torch

    define_torchvision_ops()  # nothing left to do: torchvision is imported
    assert torch.ops.torchvision.nms.default is not None


@pytest.mark.slow
def test_every_torchvision_classifier_matches_its_published_figures():
    """All of torchvision's classification models with weights (about 5 minutes)."""
    models = torchvision_models()
    for name in models.list_models(module=models):
        check_published(name)
