"""What the file formats' pydantic models share: one way to raise a problem and one way to read it back.

Each format (the GPU catalogue, budget files, the thresholds table) describes its keys with pydantic models and
phrases its own messages; this module validates, turns pydantic's list of errors into the first problem, with its
place, and raises it as the format tells it: one line naming the file, the entry and the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from .errors import FlopcalcError

SchemaT = TypeVar("SchemaT", bound=BaseModel)

_OWN_ERROR = "flopcalc"
# which problem is told first: a misspelt key explains a missing one, and both explain a value that looks wrong
_FIRST = {"extra_forbidden": 0, "missing": 1}


def refuse(message: str, hint: str | None = None) -> NoReturn:
    """Raise, inside a validator, a problem told in the format's own words. `{field}` in `message` becomes the
    dotted key the value sits at (`peak_tflops.bf16`), `{parent}` the key of the mapping that holds it."""
    raise PydanticCustomError(_OWN_ERROR, "{message}", {"message": message, "hint": hint})


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with a document: `kind` is `own` (raised with `refuse`), `missing`, `unknown`
    (keys not in the schema), `not_mapping`, `not_list`, `choice` (not one of `allowed`) or pydantic's own type.
    `loc` is where it sits, `keys` the keys concerned (all of one mapping's missing or unknown keys)."""

    kind: str
    loc: tuple[str | int, ...]
    message: str
    hint: str | None
    value: Any
    keys: tuple[str, ...] = ()
    allowed: str = ""


def dotted(loc: tuple[str | int, ...]) -> str:
    """`("core_groups", 0, "cores")` -> `core_groups #1.cores`: a key path as a message names it."""
    text = ""
    for part in loc:
        text += f" #{part + 1}" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def first_problem(error: ValidationError, *, skip: int = 0) -> Problem:
    """The first of `error`'s problems; `skip` leading parts of each location (the entry's place) are left out of
    `{field}` and `{parent}`. Unknown keys come first, then missing ones, each mapping's together."""
    errors = sorted(error.errors(include_url=False), key=lambda e: _FIRST.get(e["type"], len(_FIRST)))
    first = errors[0]
    loc = tuple(first["loc"])
    kind = first["type"]
    ctx = first.get("ctx") or {}
    field_loc = tuple(part for part in loc[skip:] if part != "[key]")
    if kind == _OWN_ERROR:
        parent = field_loc[:-1]
        message = ctx["message"].replace("{field}", dotted(field_loc)).replace("{parent}", dotted(parent))
        return Problem("own", loc, message, ctx.get("hint"), first["input"])
    if kind in ("missing", "extra_forbidden"):
        keys = tuple(str(e["loc"][-1]) for e in errors if e["type"] == kind and tuple(e["loc"][:-1]) == loc[:-1])
        return Problem("missing" if kind == "missing" else "unknown", loc[:-1], "", None, first["input"], keys)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return Problem("not_mapping", loc, "", None, first["input"])
    if kind == "list_type":
        return Problem("not_list", loc, "", None, first["input"])
    if kind == "literal_error":
        return Problem("choice", loc, "", None, first["input"], allowed=ctx.get("expected", ""))
    return Problem(kind, loc, first["msg"], None, first["input"])


def validated(
    schema: type[SchemaT],
    data: Any,
    say: Callable[[Problem], tuple[str, str | None]],
    error: type[FlopcalcError],
    *,
    context: Any = None,
) -> SchemaT:
    """`data` validated as `schema`, or its first problem raised as `error`, in the words `say` gives it (the
    format's one-line message and its hint)."""
    try:
        return schema.model_validate(data, context=context)
    except ValidationError as invalid:
        raise error(*say(first_problem(invalid))) from None
