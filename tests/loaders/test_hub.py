"""Hub ids (`org/name`): read from huggingface_hub's cache, laid out here as huggingface_hub lays it out, and
fetched from a Hub served on this machine (the tests never reach the network)."""

import hashlib
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flopcalc.errors import ModelLoadError
from flopcalc.loaders.hub import hub_cache, is_hub_id, resolve_hub_id
from flopcalc.spec import ModelSpec
from tests._cli import invoke
from tests._hf_configs import gpt2

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40
TINY = gpt2(32, 1, 2, 100, 64, architectures=["GPT2LMHeadModel"])


def cache_repo(cache, repo_id, files, *, commit=COMMIT_A, refs=("main",)):
    """A repo in huggingface_hub's cache layout: blobs named by their hash, snapshot files linking to them,
    refs naming the commit."""
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    for name, text in files.items():
        data = text.encode() if isinstance(text, str) else json.dumps(text).encode()
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = folder / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / ref).write_text(commit)
    return folder


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """An empty cache in HF_HUB_CACHE, offline, no token, and an endpoint nothing listens on."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    for name in ("HF_HOME", "HF_TOKEN", "TRANSFORMERS_OFFLINE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    constants = pytest.importorskip("huggingface_hub.constants")
    # its user agent would otherwise ask the real Hub, once a process, which coding agents exist
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    return cache


class FakeHub:
    """The Hub's file-resolving routes, served on 127.0.0.1: `repos` maps an id to its commit, its files and
    whether it is gated; every request is recorded."""

    def __init__(self, repos):
        self.repos, self.requests = repos, []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.answer(body=False)

            def do_GET(self):
                self.answer(body=True)

            def answer(self, body):
                hub.requests.append((self.command, self.path, self.headers.get("authorization")))
                match = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", self.path)
                repo = hub.repos.get(match.group(1)) if match else None
                if repo is None:
                    return self.fail(401, "RepoNotFound")
                if repo.get("gated") and self.headers.get("authorization") != "Bearer hf_test":
                    return self.fail(401, "GatedRepo")
                if match.group(2) not in ("main", repo["commit"]):
                    return self.fail(404, "RevisionNotFound")
                data = repo["files"].get(match.group(3))
                if data is None:
                    return self.fail(404, "EntryNotFound", repo["commit"])
                data = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("X-Repo-Commit", repo["commit"])
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def fail(self, status, code, commit=None):
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                if commit:
                    self.send_header("X-Repo-Commit", commit)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def files_read(self):
        return sorted({path for method, path, _ in self.requests if method == "GET" and "/resolve/" in path})

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_hub(hub_env, monkeypatch):
    """Online, against a FakeHub; the caller fills in `repos`."""
    hub = FakeHub({})
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    yield hub
    hub.close()


# --- what is a Hub id -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, expected",
    [
        ("meta-llama/Llama-3.1-8B", True),
        ("org/name", True),
        ("org/sd-1.5/unet", True),
        ("models/net.py", False),
        ("org/config.json", False),
        ("net.onnx", False),
        ("llama", False),
        ("/abs/path", False),
        ("./org/name", False),
        ("timm:resnet50", False),
        ("a/b/c/d", False),
    ],
)
def test_hub_id_spelling(source, expected):
    assert is_hub_id(source) is expected


def test_a_local_path_of_the_same_spelling_is_no_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert not is_hub_id("org/name")


def test_cache_folder_follows_hf_hub_cache_then_hf_home(tmp_path, monkeypatch):
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache() == tmp_path / "c"
    monkeypatch.delenv("HF_HUB_CACHE")
    assert hub_cache() == tmp_path / "home" / "hub"


def test_revision_is_part_of_the_key_and_checked():
    assert ModelSpec("org/name", revision="v2").key() == "org/name --revision v2"
    assert ModelSpec("org/name").key() == "org/name"
    with pytest.raises(Exception, match="revision"):
        ModelSpec("org/name", revision="two words")


# --- from the cache, offline ------------------------------------------------------------------------------


def same_report_by_id_and_by_path(cache, repo_id, config, *options):
    """The JSON reports of a count by Hub id (from the cache) and of the same config.json by path, less the
    model's name, which is what each was given."""
    cache_repo(cache, repo_id, {"config.json": config.read_text()})
    by_id = invoke("count", repo_id, *options, "--format", "json")
    by_path = invoke("count", config, *options, "--format", "json")
    assert by_id.exit_code == 0, by_id.output
    assert by_path.exit_code == 0, by_path.output
    from_id, from_path = json.loads(by_id.stdout), json.loads(by_path.stdout)
    assert from_id.pop("model") == repo_id
    assert from_path.pop("model") == str(config)
    assert from_id == from_path
    return from_id


def test_a_cached_repo_counts_as_its_config_on_disk(hub_env, tmp_path):
    pytest.importorskip("transformers")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(TINY))
    report = same_report_by_id_and_by_path(hub_env, "org/tiny", config, "--seq-len", 16)
    assert report["inputs"] == [{"name": "input_ids", "shape": [1, 16], "dtype": "int64"}]


@pytest.mark.slow
def test_llama_from_the_cache_counts_as_its_config_on_disk(hub_env, examples):
    """The issue's example, full size (about 25 s): Llama-3.1-8B at 2,048 tokens."""
    pytest.importorskip("transformers")
    config = examples / "hf" / "llama-3.1-8b" / "config.json"
    report = same_report_by_id_and_by_path(hub_env, "meta-llama/Llama-3.1-8B", config, "--seq-len", 2048)
    assert report["totals"]["params"] == 8_030_261_248


def test_revision_reads_that_revision(hub_env):
    pytest.importorskip("transformers")
    cache_repo(hub_env, "org/tiny", {"config.json": TINY})
    cache_repo(hub_env, "org/tiny", {"config.json": {**TINY, "n_layer": 2}}, commit=COMMIT_B, refs=("v2",))
    counts = {}
    for revision in (None, "v2", COMMIT_B, COMMIT_A):
        extra = () if revision is None else ("--revision", revision)
        result = invoke("count", "org/tiny", "--seq-len", 8, "--format", "json", *extra)
        assert result.exit_code == 0, result.output
        counts[revision] = json.loads(result.stdout)["totals"]["params"]
    assert counts[None] == counts[COMMIT_A] < counts["v2"] == counts[COMMIT_B]


def test_a_local_folder_wins_over_the_cached_repo(hub_env, tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    cache_repo(hub_env, "org/tiny", {"config.json": TINY})
    local = tmp_path / "work" / "org" / "tiny"
    local.mkdir(parents=True)
    (local / "config.json").write_text(json.dumps({**TINY, "n_layer": 3}))
    monkeypatch.chdir(tmp_path / "work")
    by_name = json.loads(invoke("count", "org/tiny", "--seq-len", 8, "--format", "json").stdout)
    by_path = json.loads(invoke("count", local / "config.json", "--seq-len", 8, "--format", "json").stdout)
    assert by_name["totals"] == by_path["totals"]


def test_offline_without_the_config_cached_is_one_line(hub_env):
    result = invoke("count", "meta-llama/Llama-3.1-8B", "--seq-len", 2048)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert "HF_HUB_OFFLINE" in result.output and "not in the Hugging Face cache" in result.output


def test_revision_of_a_local_file_is_refused(examples):
    result = invoke("count", examples / "hf" / "llama-2-7b" / "config.json", "--revision", "main")
    assert result.exit_code == 2
    assert "--revision applies to Hugging Face Hub ids" in result.output


def test_budget_entry_takes_a_revision(hub_env, tmp_path):
    pytest.importorskip("transformers")
    cache_repo(hub_env, "org/tiny", {"config.json": {**TINY, "n_layer": 2}}, commit=COMMIT_B, refs=("v2",))
    budget = tmp_path / "flopcalc.yaml"
    budget.write_text("budgets:\n  - model: org/tiny\n    revision: v2\n    seq_len: 8\n    max_params: 1\n")
    result = invoke("check", "--budget", budget)
    assert result.exit_code == 1, result.output  # counted (the revision resolved) and over its limit


def test_the_meter_counts_a_hub_id(hub_env):
    pytest.importorskip("transformers")
    from flopcalc.api import count_spec
    from flopcalc.meter import ThroughputMeter

    cache_repo(hub_env, "org/tiny", {"config.json": TINY})
    spec = ModelSpec("org/tiny", seq_len=8)
    meter = ThroughputMeter.from_spec(spec, peak_flops=1e12)
    assert meter.flops_per_step == count_spec(spec).total


# --- from a Hub served here -------------------------------------------------------------------------------


def test_fetches_the_config_only_into_the_cache_then_reads_it_offline(fake_hub, hub_env, monkeypatch):
    fake_hub.repos["org/tiny"] = {"commit": COMMIT_A, "files": {"config.json": TINY, "model.safetensors": "weights"}}
    path = resolve_hub_id("org/tiny")
    assert path == hub_env / "models--org--tiny" / "snapshots" / COMMIT_A / "config.json"
    assert json.loads(path.read_text()) == TINY
    assert fake_hub.files_read() == ["/org/tiny/resolve/main/config.json"]  # never the weights
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert resolve_hub_id("org/tiny") == path


def test_pipeline_repo_fetches_its_model_configs_and_names_them(fake_hub, hub_env, monkeypatch):
    index = {
        "_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "safety_checker": [None, None],
    }
    fake_hub.repos["org/sd"] = {
        "commit": COMMIT_A,
        "files": {
            "model_index.json": index,
            "unet/config.json": {"sample_size": 64},
            "vae/config.json": {"latent_channels": 4},
            "text_encoder/config.json": TINY,
            "unet/diffusion_pytorch_model.safetensors": "weights",
        },
    }
    folder = resolve_hub_id("org/sd")
    assert folder == hub_env / "models--org--sd" / "snapshots" / COMMIT_A
    assert sorted(fake_hub.files_read()) == [
        f"/org/sd/resolve/main/{name}"
        for name in ("model_index.json", "text_encoder/config.json", "unet/config.json", "vae/config.json")
    ]
    result = invoke("count", "org/sd")
    assert result.exit_code == 2
    assert "org/sd is a pipeline" in result.output and "org/sd/unet, org/sd/vae, org/sd/text_encoder" in result.output
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the cache remembers that the repo has no config.json
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert resolve_hub_id("org/sd") == folder


def test_a_pipeline_component_by_its_folder(fake_hub):
    pytest.importorskip("transformers")
    fake_hub.repos["org/sd"] = {"commit": COMMIT_A, "files": {"text_encoder/config.json": TINY}}
    result = invoke("count", "org/sd/text_encoder", "--seq-len", 8, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == "org/sd/text_encoder"
    missing = invoke("count", "org/sd/vae")
    assert missing.exit_code == 2 and "Hub repo org/sd has no vae/config.json" in missing.output


def test_gated_repo_needs_a_token(fake_hub, monkeypatch):
    pytest.importorskip("transformers")
    fake_hub.repos["org/gated"] = {"commit": COMMIT_A, "gated": True, "files": {"config.json": TINY}}
    refused = invoke("count", "org/gated", "--seq-len", 8)
    assert refused.exit_code == 2 and refused.output.count("\n") == 1
    assert "Hub repo org/gated is gated" in refused.output and "HF_TOKEN" in refused.output
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    assert invoke("count", "org/gated", "--seq-len", 8).exit_code == 0


def test_missing_repo_and_revision_are_one_line(fake_hub):
    fake_hub.repos["org/tiny"] = {"commit": COMMIT_A, "files": {"config.json": TINY}}
    missing = invoke("count", "org/nothing")
    assert missing.exit_code == 2 and missing.output.count("\n") == 1
    assert "Hub repo org/nothing not found (or it is private)" in missing.output
    revision = invoke("count", "org/tiny", "--revision", "v9")
    assert revision.exit_code == 2 and "has no revision 'v9'" in revision.output
    no_config = invoke("count", "org/tiny/unet")
    assert no_config.exit_code == 2 and "has no unet/config.json" in no_config.output


def test_no_network_and_nothing_cached_is_one_line(hub_env, monkeypatch):
    """Online, but nothing answers: huggingface_hub retries (its waits are skipped here), then one line."""
    import huggingface_hub.utils._http as http

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(http.time, "sleep", lambda seconds: None)
    with pytest.raises(ModelLoadError, match="cannot reach the Hugging Face Hub and config.json is not in the cache"):
        resolve_hub_id("org/tiny")
    result = invoke("count", "org/tiny")
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "cannot reach" in result.output


def test_no_network_reads_what_is_cached(hub_env, monkeypatch):
    import huggingface_hub.utils._http as http

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(http.time, "sleep", lambda seconds: None)
    cache_repo(hub_env, "org/tiny", {"config.json": TINY})
    assert json.loads(resolve_hub_id("org/tiny").read_text()) == TINY


@pytest.mark.parametrize(
    "command",
    [
        ("train", "--examples", 1000, "--gpu", "H100-SXM"),
        ("infer", "--gpu", "H100-SXM"),
        ("plan", "--gpu", "H100-SXM", "--num-gpus", 8, "--tokens", "1e9"),
    ],
)
def test_every_command_taking_a_model_takes_a_hub_id_and_revision(hub_env, command):
    pytest.importorskip("transformers")
    cache_repo(hub_env, "org/tiny", {"config.json": TINY})
    cache_repo(hub_env, "org/tiny", {"config.json": {**TINY, "n_layer": 2}}, commit=COMMIT_B, refs=("v2",))
    name, *options = command
    outputs = []
    for revision in ("main", "v2"):
        result = invoke(name, "org/tiny", "--revision", revision, "--seq-len", 8, *options, "--format", "json")
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.stdout))
    assert outputs[0] != outputs[1]  # the two revisions are two models


def test_revision_without_a_model_is_refused():
    for command in (("bench",), ("train", "--params", "7e9", "--tokens", "1e12", "--gpu", "H100-SXM")):
        result = invoke(*command, "--revision", "v2")
        assert result.exit_code == 2 and "--revision" in result.output
