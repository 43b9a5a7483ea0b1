from collections import Counter

from flopcalc.counting.report import formula_flops


def _raise():
    raise ValueError("shape mismatch")


def test_formula_flops_passes_a_priced_op_through_untouched():
    unsupported, errors = Counter(), {}
    assert formula_flops(lambda: {"matmul": 12}, "aten.mm", unsupported, errors) == {"matmul": 12}
    assert unsupported == Counter() and errors == {}


def test_formula_flops_counts_an_op_without_formula_as_unsupported():
    unsupported, errors = Counter(), {}
    assert formula_flops(lambda: None, "aten.foo", unsupported, errors) is None
    assert formula_flops(lambda: None, "aten.foo", unsupported, errors) is None
    assert unsupported == Counter({"aten.foo": 2}) and errors == {}


def test_formula_flops_keeps_the_first_message_of_a_formula_that_fails():
    unsupported, errors = Counter(), {}
    assert formula_flops(_raise, "aten.bar", unsupported, errors) is None
    assert formula_flops(lambda: 1 / 0, "aten.bar", unsupported, errors) is None
    assert unsupported == Counter({"aten.bar": 2})
    assert list(errors) == ["aten.bar"] and "shape mismatch" in errors["aten.bar"]
