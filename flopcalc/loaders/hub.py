"""Models named by Hugging Face Hub id (`org/name`, `org/name/subfolder`): their configs fetched into
huggingface_hub's own cache, never their weights.

The cache is the one every Hugging Face tool shares, so a config another tool fetched is reused and one fetched
here serves them. The environment (HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN, HF_ENDPOINT) is read when
a model is resolved, not when huggingface_hub was imported: the Hugging Face loader imports transformers with
the hub set offline (a count never downloads), and that must not stop the user's own fetches.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import MissingDependencyError, ModelLoadError, short_error
from .base import read_json

INSTALL_HINT = "pip install 'flopcalc[hf]'"
# `org/name` or `org/name/subfolder`: the Hub's own characters, no file suffix (a missing `models/net.py` is a
# missing file, not a repo)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/[\w.-]+)?$")
_FILE_SUFFIXES = (".json", ".py", ".pt", ".pth", ".ts", ".pt2", ".onnx", ".yaml", ".yml")
# a pipeline's components that hold no model to count (their configs have other names)
_NOT_MODELS = ("tokenizer", "scheduler", "feature_extractor", "image_processor", "processor")
_TRUE = {"1", "on", "yes", "true"}


def is_hub_id(source: str) -> bool:
    """Whether `source` names a Hub repo: `org/name` (or `org/name/subfolder`) that is no local path (a local
    path of the same spelling always wins)."""
    if not isinstance(source, str) or not _HUB_ID.match(source) or source.lower().endswith(_FILE_SUFFIXES):
        return False
    return not Path(source).exists()


def split_hub_id(source: str) -> tuple[str, str | None]:
    """`org/name/unet` -> ("org/name", "unet"); `org/name` -> ("org/name", None)."""
    parts = source.split("/")
    return "/".join(parts[:2]), (parts[2] if len(parts) > 2 else None)


def hub_cache() -> Path:
    """The folder huggingface_hub keeps repos in: HF_HUB_CACHE, else HF_HOME/hub, else the XDG cache's."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
    )
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as the user set it: only the cache is read."""
    return any(
        (os.environ.get(name) or "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def resolve_hub_id(source: str, revision: str | None = None) -> Path:
    """The local copy of what a Hub id names, fetched into the cache when it is not there: the repo's (or its
    subfolder's) config.json; for a pipeline repo (model_index.json, no config.json) the snapshot folder, with
    model_index.json and each component model's config.json in it. ModelLoadError, one line, when it cannot be
    had: a gated or private repo without a token, a missing repo or revision, no network and nothing cached."""
    repo_id, subfolder = split_hub_id(source)
    download, errors = _hub()
    fetch = _Fetcher(download, errors, source, repo_id, revision)
    try:
        return fetch("config.json", subfolder)
    except _Missing:
        if subfolder is not None:
            raise ModelLoadError(
                f"Hub repo {repo_id} has no {subfolder}/config.json",
                "name a subfolder that holds a model's config.json, e.g. unet or vae",
            ) from None
    try:
        index = fetch("model_index.json", None)
    except _Missing:
        raise ModelLoadError(
            f"Hub repo {repo_id} has no config.json (nor model_index.json)",
            "flopcalc counts models from their Hugging Face config; name a repo that has one",
        ) from None
    for component in pipeline_components(index):
        try:
            fetch("config.json", component)
        except _Missing:  # a component without a model config (a safety checker left out, a custom one)
            continue
    return index.parent


def pipeline_components(model_index: Path) -> list[str]:
    """The components of a diffusers pipeline (model_index.json) that are models: each key naming a
    [library, class] pair, less tokenizers, schedulers and processors."""
    entries = read_json(model_index, "delete it from the cache to fetch it again")
    if not isinstance(entries, dict):
        return []
    return [
        name
        for name, value in entries.items()
        if not name.startswith("_")
        and isinstance(value, list)
        and len(value) == 2
        and value[0] is not None
        and not any(word in name for word in _NOT_MODELS)
    ]


class _Missing(Exception):
    """The repo exists and the revision too, but not this file."""


class _Fetcher:
    """One file of one repo at one revision, from the cache or the Hub; every failure but a missing file is a
    ModelLoadError saying what to do."""

    def __init__(self, download, errors, source: str, repo_id: str, revision: str | None):
        self.download, self.errors, self.source = download, errors, source
        self.repo_id, self.revision = repo_id, revision
        self.offline, self.cache = hub_offline(), hub_cache()
        self.endpoint = os.environ.get("HF_ENDPOINT") or None
        self.token = os.environ.get("HF_TOKEN") or None  # None: huggingface_hub's stored login, if any

    def __call__(self, filename: str, subfolder: str | None) -> Path:
        errors = self.errors
        at = f" at revision {self.revision}" if self.revision else ""
        try:
            with _offline_as(self.offline):
                return Path(
                    self.download(
                        self.repo_id,
                        filename,
                        subfolder=subfolder,
                        revision=self.revision,
                        cache_dir=self.cache,
                        token=self.token,
                        local_files_only=self.offline,
                        endpoint=self.endpoint,
                    )
                )
        except errors.GatedRepoError:
            raise ModelLoadError(
                f"Hub repo {self.repo_id} is gated" + (": your token has no access" if self.token else ""),
                "accept its terms on its Hub page, then set HF_TOKEN (or run `hf auth login`)",
            ) from None
        except errors.RepositoryNotFoundError:
            raise ModelLoadError(
                f"Hub repo {self.repo_id} not found (or it is private)",
                "check the id; for a private repo set HF_TOKEN; a local file's path is relative to the current folder",
            ) from None
        except errors.RevisionNotFoundError:
            raise ModelLoadError(
                f"Hub repo {self.repo_id} has no revision {self.revision!r}",
                "give a branch, tag or commit of the repo to --revision",
            ) from None
        except errors.RemoteEntryNotFoundError:
            raise _Missing(filename) from None
        except errors.LocalEntryNotFoundError:
            name = f"{subfolder}/{filename}" if subfolder else filename
            if self._known_missing(name):  # the Hub said so when the repo was fetched: the cache remembers
                raise _Missing(filename) from None
            if self.offline:
                raise ModelLoadError(
                    f"{self.source}: {name}{at} is not in the Hugging Face cache {self.cache} and HF_HUB_OFFLINE is set",
                    "unset HF_HUB_OFFLINE to fetch it once, or point HF_HUB_CACHE at a cache that has it",
                ) from None
            raise ModelLoadError(
                f"{self.source}: cannot reach the Hugging Face Hub and {name}{at} is not in the cache {self.cache}",
                "connect to the network once (it is then cached), or give the path of a local copy of the config.json "
                "(a local path is relative to the current folder)",
            ) from None
        except errors.HFValidationError as error:
            raise ModelLoadError(
                f"{self.source} is not a valid Hub id: {short_error(error)}",
                "write org/name, or give a local file's path",
            ) from None
        except (errors.HfHubHTTPError, OSError, ValueError) as error:
            raise ModelLoadError(
                f"{self.source}: fetching {filename} from the Hub failed: {short_error(error)}",
                "try again, or give the path of a local copy of the config.json",
            ) from None

    def _known_missing(self, name: str) -> bool:
        import huggingface_hub

        found = huggingface_hub.try_to_load_from_cache(self.repo_id, name, cache_dir=self.cache, revision=self.revision)
        return found is huggingface_hub._CACHED_NO_EXIST


@contextlib.contextmanager
def _offline_as(offline: bool) -> Iterator[None]:
    """While one file is fetched: huggingface_hub's offline switch as the user's environment has it (it reads
    HF_HUB_OFFLINE once, at import, and the Hugging Face loader imports it offline), and its logging and progress
    bars quiet (the library prints nothing; what fails comes back as one error)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars, logging

    before, verbosity, bars_off = constants.HF_HUB_OFFLINE, logging.get_verbosity(), are_progress_bars_disabled()
    constants.HF_HUB_OFFLINE = offline
    logging.set_verbosity_error()
    disable_progress_bars()
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before
        logging.set_verbosity(verbosity)
        if not bars_off:
            enable_progress_bars()


def _hub():
    try:
        import huggingface_hub
        from huggingface_hub import errors
    except ImportError:
        raise MissingDependencyError("reading a Hugging Face Hub id needs huggingface_hub", INSTALL_HINT) from None
    return huggingface_hub.hf_hub_download, errors
