"""errors.short_error: the one line an exception becomes in a message."""

from flopcalc.errors import short_error


def test_the_first_line_and_the_type():
    assert short_error(ValueError("bad shape\nmore detail")) == "ValueError: bad shape"
    assert short_error(KeyError()) == "KeyError"


def test_a_first_line_that_announces_the_next_keeps_the_reason():
    """pydantic / huggingface_hub validators write "Class validation error for ...:" and the reason below."""
    error = ValueError("Class validation error for validator 'check':\n    ValueError: 64 is not a multiple of 5.\n")
    assert (
        short_error(error)
        == "ValueError: Class validation error for validator 'check': ValueError: 64 is not a multiple of 5."
    )


def test_long_text_is_shortened():
    text = short_error(RuntimeError("x" * 500))
    assert len(text) == 240 and text.endswith("...")


import math  # noqa: E402

import pytest  # noqa: E402

from flopcalc.errors import (  # noqa: E402
    ArgumentTypeError,
    ArgumentValueError,
    FlopcalcError,
    UsageError,
    check_number,
    one_of,
)


@pytest.mark.parametrize(
    "value, kind, text",
    [
        (-1, ArgumentValueError, "batch_size must be above 0, got -1"),
        (0, ArgumentValueError, "batch_size must be above 0, got 0"),
        (math.nan, ArgumentValueError, "batch_size must be finite, got nan"),
        (math.inf, ArgumentValueError, "batch_size must be finite, got inf"),
        ("8", ArgumentTypeError, "batch_size must be a number, got str '8'"),
        (True, ArgumentTypeError, "batch_size must be a number, got bool True"),
    ],
)
def test_check_number_names_the_argument(value, kind, text):
    with pytest.raises(kind, match=text) as caught:
        check_number(value, "batch_size")
    assert caught.value.field == "batch_size" and isinstance(caught.value, FlopcalcError)
    assert isinstance(caught.value, ValueError if kind is ArgumentValueError else TypeError)


def test_check_number_bounds_and_whole_numbers():
    assert check_number(0, "tokens", minimum=0, above=False) == 0
    assert check_number(None, "tokens", optional=True) is None
    assert check_number(2.5, "epochs") == 2.5
    with pytest.raises(ArgumentTypeError, match="window must be a whole number, got float 2.5"):
        check_number(2.5, "window", whole=True)


def test_one_of_gives_the_entry_or_the_message_and_hint():
    table = {"bf16": 2, "fp32": 4}
    assert one_of(table, "fp32", "unused") == 4
    with pytest.raises(UsageError) as caught:
        one_of(table, "fp64", "precision must be bf16 or fp32, got 'fp64'", "pass bf16")
    assert caught.value.message == "precision must be bf16 or fp32, got 'fp64'"
    assert caught.value.hint == "pass bf16"
