"""The shared validation step of the file formats: a valid document comes back as its model; the first problem is
raised as the format's error, in the words the format gives it."""

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from flopcalc.errors import BudgetFileError, CatalogError
from flopcalc.schemas import Problem, refuse, validated


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    size: int = 1

    @field_validator("size")
    @classmethod
    def _at_most(cls, value: int, info: ValidationInfo) -> int:
        limit = (info.context or {}).get("limit")
        if limit is not None and value > limit:
            refuse(f"{{field}} {value} is over {limit}", "make it smaller")
        return value


def _say(problem: Problem) -> tuple[str, str | None]:
    keys = ", ".join(problem.keys)
    return f"rows.yaml: {problem.kind} {keys or problem.message}", problem.hint


def test_a_valid_document_comes_back_as_its_model():
    row = validated(_Row, {"name": "a", "size": 3}, _say, CatalogError)
    assert row == _Row(name="a", size=3)


def test_the_first_problem_is_raised_as_the_formats_error_in_its_words():
    with pytest.raises(BudgetFileError) as raised:
        validated(_Row, {"name": "a", "sise": 3}, _say, BudgetFileError)
    assert (raised.value.message, raised.value.hint) == ("rows.yaml: unknown sise", None)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    with pytest.raises(CatalogError) as raised:
        validated(_Row, {"size": 3}, _say, CatalogError)
    assert raised.value.message == "rows.yaml: missing name"


def test_the_context_reaches_the_validators():
    data: dict[str, Any] = {"name": "a", "size": 3}
    assert validated(_Row, data, _say, CatalogError, context={"limit": 5}).size == 3
    with pytest.raises(CatalogError) as raised:
        validated(_Row, data, _say, CatalogError, context={"limit": 2})
    assert (raised.value.message, raised.value.hint) == ("rows.yaml: own size 3 is over 2", "make it smaller")
