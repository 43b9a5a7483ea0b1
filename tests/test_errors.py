"""errors.short_error: the one line an exception becomes in a message."""

from flopcalc.errors import short_error


def test_the_first_line_and_the_type():
    assert short_error(ValueError("bad shape\nmore detail")) == "ValueError: bad shape"
    assert short_error(KeyError()) == "KeyError"


def test_a_first_line_that_announces_the_next_keeps_the_reason():
    """pydantic / huggingface_hub validators write "Class validation error for ...:" and the reason below."""
    error = ValueError("Class validation error for validator 'check':\n    ValueError: 64 is not a multiple of 5.\n")
    assert short_error(error) == "ValueError: Class validation error for validator 'check': ValueError: 64 is not a multiple of 5."


def test_long_text_is_shortened():
    text = short_error(RuntimeError("x" * 500))
    assert len(text) == 240 and text.endswith("...")
