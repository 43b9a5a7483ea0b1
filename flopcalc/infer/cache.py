"""How a causal language model is called to generate (the Hugging Face convention: input_ids, a KV cache by
keyword, use_cache=True), and refusing, before any counting, a model that cannot generate token by token."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import UsageError

NOT_CAUSAL_HINT = (
    "--prompt/--generate need a causal language model called as model(input_ids=..., "
    "past_key_values=..., use_cache=True); drop them to bound one forward pass"
)
# The keywords a forward takes to compute the logits of the last positions only (transformers, new and old).
_LOGITS_KEYWORDS = ("logits_to_keep", "num_logits_to_keep")


def cache_keyword(model: Any, source: str) -> str:
    """The keyword the model takes its KV cache by (`cache` in recent transformers, `past_key_values` before);
    UsageError when the model does not follow the convention or cannot generate."""
    can_generate = getattr(model, "can_generate", None)
    if callable(can_generate) and not can_generate():
        raise UsageError(f"{source} ({type(model).__name__}) is not a causal language model", NOT_CAUSAL_HINT)
    if not _attends_causally(model):
        raise UsageError(
            f"{source} ({type(model).__name__}) is not a causal language model: its attention sees "
            "every position both ways (an encoder; a BERT generates only with is_decoder: true)",
            NOT_CAUSAL_HINT,
        )
    parameters = _parameters(model)
    keyword = next((k for k in ("cache", "past_key_values") if k in parameters), None)
    if keyword is None or "input_ids" not in parameters or "use_cache" not in parameters:
        raise UsageError(
            f"{source} ({type(model).__name__}) does not take input_ids, past_key_values and use_cache", NOT_CAUSAL_HINT
        )
    return keyword


def last_logits_only(model: Any) -> dict[str, int]:
    """The keyword argument that keeps the logits of the last position only, as generate() passes it; empty
    when the model takes none (it then computes logits at every position)."""
    parameters = _parameters(model)
    keyword = next((k for k in _LOGITS_KEYWORDS if k in parameters), None)
    return {} if keyword is None else {keyword: 1}


def _parameters(model: Any) -> Mapping[str, Any]:
    try:
        return inspect.signature(model.forward).parameters
    except (TypeError, ValueError, AttributeError):
        return {}


def _attends_causally(model: Any) -> bool:
    """False for a model whose attention modules all declare themselves non-causal (transformers' `is_causal`);
    a model that declares nothing is taken at its word that it follows the convention."""
    modules = getattr(model, "modules", None)
    flags = {m.is_causal for m in modules() if isinstance(getattr(m, "is_causal", None), bool)} if modules else set()
    return not flags or True in flags


def new_cache(model: Any) -> Any:
    """An empty transformers DynamicCache for a transformers model (the forward fills it in place), else None:
    the model makes its own and returns it."""
    config = getattr(model, "config", None)
    if config is None or not type(model).__module__.startswith("transformers"):
        return None
    from transformers import DynamicCache

    return DynamicCache(config=config)


def returned_cache(output: Any, keyword: str) -> Any:
    """The cache a model returned (by name on a ModelOutput or dict, else the second item of a tuple)."""
    for name in (keyword, "past_key_values", "cache"):
        value = output.get(name) if isinstance(output, Mapping) else getattr(output, name, None)
        if value is not None:
            return value
    if isinstance(output, (tuple, list)) and len(output) > 1:
        return output[1]
    return None


def token_ids(batch: int, tokens: int, device: str) -> Any:
    import torch

    return torch.zeros(batch, tokens, dtype=torch.int64, device=device)


def elements(tensors: Iterable[Any]) -> int:
    return sum(t.numel() for t in tensors)
