"""Budget files, checks and baselines, against CountReports built by hand (exact numbers, no torch needed)."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from flopcalc.budget import (
    baseline_data,
    compare_with_baseline,
    count_budgets,
    evaluate,
    load_baseline,
    load_budget_file,
    run_checks,
    write_baseline,
)
from flopcalc.counting.report import CountReport, InputInfo, LayerCount
from flopcalc.errors import BudgetFileError, ModelLoadError, ModelRunError, UsageError
from flopcalc.units import PF_DAY_FLOP


def make_report(forward: int, backward: int, params: int, batch: int = 1, unsupported=None) -> CountReport:
    """A one-layer report whose totals are exactly the given numbers."""
    root = LayerCount(
        name="",
        type="Net",
        depth=0,
        params=params,
        forward_by_category={"matmul": forward},
        backward_by_category={"matmul": backward},
    )
    return CountReport(
        model="net",
        inputs=(InputInfo(shape=(batch, 16), dtype="float32"),),
        device="meta",
        layers=(root,),
        params=params,
        param_bytes=4 * params,
        unsupported_ops=unsupported or {},
    )


class RecordingCounter:
    """Stands in for flopcalc.api.count_spec: returns preset reports per model source and records every call."""

    def __init__(self, reports: dict[str, CountReport]):
        self.reports = reports
        self.calls: list[tuple] = []

    def __call__(self, spec):
        self.calls.append((spec.source, list(spec.inputs) or None, dict(spec.kwargs) or None))
        return self.reports[spec.source]


def write_budget(tmp_path: Path, text: str, name: str = "flopcalc.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------------
# loading


def test_load_parses_limits_with_si_suffixes_and_defaults(tmp_path):
    path = write_budget(
        tmp_path,
        """
        budgets:
          - name: resnet-inference
            model: models/resnet.py:build
            inputs: ["1x3x224x224"]
            kwargs: {depth: 50}
            max_forward_flops: 9G
            max_backward_flops: 18G
            max_params: 26M
            max_training_flops: 1e18
            max_training_pf_days: 5
            examples: 1281167
            epochs: 90
          - model: other.py
            inputs: "8x16"
            max_params: 1000
        """,
    )
    budget_file = load_budget_file(path)
    first, second = budget_file.budgets
    assert first.name == "resnet-inference"
    assert first.spec.inputs == ("1x3x224x224",)
    assert first.spec.kwargs == {"depth": 50}
    assert dict(first.limits) == {
        "forward_flops": 9e9,
        "backward_flops": 18e9,
        "params": 26e6,
        "training_flops": 1e18,
        "training_pf_days": 5.0,
    }
    assert (first.examples, first.epochs, first.tokens) == (1281167, 90, None)
    assert second.name == "other.py"  # the name defaults to the model spec
    assert second.spec.inputs == ("8x16",)
    assert second.spec.kwargs == {}


def test_default_budget_file_is_flopcalc_yaml_in_cwd(tmp_path, monkeypatch):
    write_budget(tmp_path, "budgets: [{model: a.py, max_params: 1}]")
    monkeypatch.chdir(tmp_path)
    assert load_budget_file().budgets[0].model == "a.py"


def test_missing_default_budget_file_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BudgetFileError, match=r"no flopcalc.yaml in .*--budget FILE"):
        load_budget_file()


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("budgets: [{model: a.py, max_parms: 1}]", ["budgets[0] (a.py)", "unknown key 'max_parms'", "max_params"]),
        ("budgets: [{name: big, model: a.py, max_params: 26Q}]", ["budgets[0] (big)", "'max_params'", "'26Q'"]),
        ("budgets: [{name: big, max_params: 1}]", ["budgets[0] (big)", "missing key 'model'"]),
        ("budgets: {model: a.py}", ["`budgets` must be a list", "dict"]),
        ("models: []", ["unknown top-level key 'models'"]),
        ("{}", ["no `budgets:` list"]),
        ("budgets: []", ["`budgets` is empty"]),
        ("- model: a.py", ["expected a mapping with a `budgets:` list", "list"]),
        ("budgets: [a.py]", ["budgets[0]", "expected a mapping with a `model:` key"]),
        (
            "budgets: [{model: a.py, max_params: 1}, {model: b.py, max_params: -5}]",
            ["budgets[1] (b.py)", "greater than 0"],
        ),
        ("budgets: [{model: a.py, max_params: 0}]", ["budgets[0] (a.py)", "'max_params'", "greater than 0"]),
        ("budgets: [{model: a.py, max_params: yes}]", ["'max_params'", "must be a number"]),
        ("budgets: [{model: 5, max_params: 1}]", ["key 'model'", "model spec string"]),
        ("budgets: [{name: '', model: a.py}]", ["key 'name'", "non-empty string"]),
        ("budgets: [{model: a.py, inputs: [1, 2]}]", ["key 'inputs'", "list of input specs"]),
        ("budgets: [{model: a.py, kwargs: [1]}]", ["key 'kwargs'", "mapping"]),
        (
            "budgets: [{name: x, model: a.py, max_params: 1}, {name: x, model: b.py, max_params: 1}]",
            ["budgets[1] (x)", "already used by budgets[0]"],
        ),
        ("budgets: [{model: a.py, max_params: 1, max_params: 2}]", ["key 'max_params' is given twice", "line 1"]),
        ("budgets: [{model: a.py, max_params: 1}", ["not valid YAML", "line"]),
        ("budgets: [{model: a.py, max_training_flops: 1e18}]", ["'max_training_flops' needs the training size"]),
        ("budgets: [{model: a.py, epochs: 3, max_params: 1}]", ["'epochs' needs 'examples'"]),
        (
            "budgets: [{model: a.py, examples: 10, tokens: 1T, max_params: 1}]",
            ["'examples' and 'tokens' are both given"],
        ),
        ("budgets: [{model: a.py, tokens: lots, max_params: 1}]", ["key 'tokens'", "'lots'"]),
    ],
)
def test_malformed_budget_file_names_file_entry_and_key(tmp_path, text, fragments):
    path = write_budget(tmp_path, text, name="budget-under-test.yaml")
    with pytest.raises(BudgetFileError) as caught:
        load_budget_file(path)
    message = str(caught.value)
    assert "budget-under-test.yaml" in message
    for fragment in fragments:
        assert fragment in message
    assert "\n" not in message
    assert message.count("budget-under-test.yaml") == 1  # the file and entry are named once, not once per layer


def test_missing_explicit_budget_file(tmp_path):
    with pytest.raises(BudgetFileError, match="not found"):
        load_budget_file(tmp_path / "nope.yaml")


# ---------------------------------------------------------------------------------------------------------------
# counting and checking


def test_models_counted_once_per_distinct_model_inputs_kwargs(tmp_path):
    path = write_budget(
        tmp_path,
        """
        budgets:
          - {name: fwd, model: a.py, inputs: ["4x16"], kwargs: {width: 8}, max_forward_flops: 1G}
          - {name: params, model: a.py, inputs: ["4x16"], kwargs: {width: 8}, max_params: 1M}
          - {name: wider, model: a.py, inputs: ["4x16"], kwargs: {width: 16}, max_params: 1M}
          - {name: bigger-batch, model: a.py, inputs: ["8x16"], kwargs: {width: 8}, max_params: 1M}
          - {name: other, model: b.py, max_params: 1M}
        """,
    )
    counter = RecordingCounter({"a.py": make_report(10, 20, 5), "b.py": make_report(1, 2, 3)})
    reports = count_budgets(load_budget_file(path), counter)
    assert counter.calls == [
        ("a.py", ["4x16"], {"width": 8}),
        ("a.py", ["4x16"], {"width": 16}),
        ("a.py", ["8x16"], {"width": 8}),
        ("b.py", None, None),
    ]
    assert reports["fwd"] is reports["params"]
    assert set(reports) == {"fwd", "params", "wider", "bigger-batch", "other"}


def test_within_budget_every_check_passes_with_exact_headroom(tmp_path):
    path = write_budget(
        tmp_path, "budgets: [{name: net, model: a.py, max_forward_flops: 1k, max_backward_flops: 800, max_params: 50}]"
    )
    result = run_checks(load_budget_file(path), counter=RecordingCounter({"a.py": make_report(750, 800, 40)}))
    assert result.passed
    assert [(c.metric, c.value, c.limit, c.passed, c.headroom) for c in result.checks] == [
        ("forward_flops", 750, 1000.0, True, 25.0),
        ("backward_flops", 800, 800.0, True, 0.0),  # exactly at the limit passes
        ("params", 40, 50.0, True, 20.0),
    ]


def test_over_budget_reports_exactly_the_failed_check(tmp_path):
    path = write_budget(tmp_path, "budgets: [{name: net, model: a.py, max_forward_flops: 1k, max_params: 50}]")
    result = run_checks(load_budget_file(path), counter=RecordingCounter({"a.py": make_report(1001, 0, 40)}))
    assert not result.passed
    (failed,) = result.failed_checks
    assert (failed.name, failed.metric, failed.value, failed.limit) == ("net", "forward_flops", 1001, 1000.0)
    assert failed.headroom == pytest.approx(-0.1, abs=1e-12)


def test_training_limits_from_examples_and_epochs(tmp_path):
    """(forward + backward) / batch x examples x epochs: 300 FLOP per batch of 4 = 75 per example."""
    path = write_budget(
        tmp_path,
        "budgets: [{model: a.py, examples: 1000, epochs: 3, max_training_flops: 225000, max_training_pf_days: 1}]",
    )
    result = run_checks(load_budget_file(path), counter=RecordingCounter({"a.py": make_report(100, 200, 7, batch=4)}))
    training, pf_days = result.checks
    assert training.value == 75 * 1000 * 3
    assert training.passed and training.headroom == 0.0
    assert pf_days.value == 225000 / 8.64e19


def test_training_epochs_default_to_one(tmp_path):
    path = write_budget(tmp_path, "budgets: [{model: a.py, examples: 10, max_training_flops: 1M}]")
    result = run_checks(load_budget_file(path), counter=RecordingCounter({"a.py": make_report(3, 6, 1)}))
    assert result.checks[0].value == 90


def test_training_limits_from_tokens_use_six_params_per_token(tmp_path):
    path = write_budget(tmp_path, "budgets: [{model: lm.py, tokens: 2T, max_training_pf_days: 10}]")
    result = run_checks(load_budget_file(path), counter=RecordingCounter({"lm.py": make_report(1, 2, 7_000_000_000)}))
    (check,) = result.checks
    assert check.value == pytest.approx(6 * 7e9 * 2e12 / PF_DAY_FLOP, rel=1e-15)
    assert check.value == pytest.approx(972.222222, rel=1e-6)
    assert not check.passed


def test_six_params_tokens_of_a_mixture_of_experts_takes_its_active_parameters(tmp_path):
    path = write_budget(tmp_path, "budgets: [{model: moe.json, tokens: 1T, max_training_flops: 1e30}]")
    moe = replace(make_report(1, 2, 46_700_000_000), active_params=12_900_000_000)
    result = run_checks(load_budget_file(path), counter=RecordingCounter({"moe.json": moe}))
    assert result.checks[0].value == 6 * 12.9e9 * 1e12


def test_named_inputs_and_decoder_seq_len_reach_the_spec_and_its_key(tmp_path):
    path = write_budget(
        tmp_path,
        """
        budgets:
          - {name: listed, model: t5.json, inputs: ["input_ids=1x512:int64", "decoder_input_ids=1x128:int64"], max_params: 1}
          - {name: mapped, model: t5.json, inputs: {input_ids: "1x512:int64", decoder_input_ids: "1x128:int64"}, max_params: 1}
          - {name: decoder, model: t5.json, seq_len: 512, decoder_seq_len: 128, max_params: 1}
          - {name: positional, model: t5.json, inputs: ["1x512:int64"], max_params: 1}
    """,
    )
    listed, mapped, decoder, positional = load_budget_file(path).budgets
    assert listed.spec.inputs == mapped.spec.inputs == ("input_ids=1x512:int64", "decoder_input_ids=1x128:int64")
    assert decoder.spec.decoder_seq_len == 128
    assert len({b.spec.key() for b in (listed, decoder, positional)}) == 3
    assert listed.spec.key() == mapped.spec.key()


def test_training_limit_on_a_model_without_forward_flops_names_the_entry(tmp_path):
    path = write_budget(tmp_path, "budgets: [{name: idle, model: a.py, examples: 10, max_training_flops: 1M}]")
    with pytest.raises(UsageError, match=r"budgets\[0\] \(idle\): training compute: forward FLOPs per example"):
        run_checks(load_budget_file(path), counter=RecordingCounter({"a.py": make_report(0, 0, 5)}))


def test_public_api_exports_the_budget_functions():
    import flopcalc

    assert flopcalc.run_checks is run_checks and flopcalc.load_budget_file is load_budget_file


def test_model_that_fails_to_count_raises_with_the_entry_named(tmp_path):
    path = write_budget(tmp_path, "budgets: [{name: broken, model: missing.py, max_params: 1}]")

    def failing_counter(spec):
        raise ModelLoadError(f"{spec.source} does not exist", "check the path")

    with pytest.raises(ModelLoadError, match=r"budgets\[0\] \(broken\): missing.py does not exist") as caught:
        run_checks(load_budget_file(path), counter=failing_counter)
    assert caught.value.hint == "check the path"


def test_model_raising_an_unexpected_error_still_fails_as_model_run_error(tmp_path):
    path = write_budget(tmp_path, "budgets: [{name: odd, model: odd.py, max_params: 1}]")

    def crashing_counter(spec):
        raise RuntimeError("shape mismatch")

    with pytest.raises(ModelRunError, match=r"budgets\[0\] \(odd\).*RuntimeError: shape mismatch"):
        run_checks(load_budget_file(path), counter=crashing_counter)


def test_nothing_to_check_is_an_error_not_a_pass(tmp_path):
    path = write_budget(tmp_path, "budgets: [{model: a.py}]")
    with pytest.raises(UsageError, match="nothing to check"):
        run_checks(load_budget_file(path), counter=RecordingCounter({"a.py": make_report(1, 1, 1)}))


def test_uncounted_ops_become_a_note(tmp_path):
    path = write_budget(tmp_path, "budgets: [{name: n, model: a.py, max_params: 10}]")
    report = make_report(1, 1, 1, unsupported={"aten.fft_r2c": 2})
    result = run_checks(load_budget_file(path), counter=RecordingCounter({"a.py": report}))
    assert result.notes == ("n: unsupported ops (no formula, not counted): aten.fft_r2c x2",)


# ---------------------------------------------------------------------------------------------------------------
# baselines


@pytest.fixture
def baseline_setup(tmp_path):
    path = write_budget(tmp_path, "budgets: [{name: net, model: a.py, max_params: 1G}]")
    budget_file = load_budget_file(path)
    baseline_path = tmp_path / "baseline.json"
    write_baseline(baseline_path, budget_file, {"net": make_report(1000, 2000, 100)})
    return budget_file, baseline_path


def test_baseline_file_round_trips(baseline_setup):
    budget_file, baseline_path = baseline_setup
    assert json.loads(baseline_path.read_text()) == {
        "schema_version": 1,
        "budgets": {"net": {"model": "a.py", "forward_flops": 1000, "backward_flops": 2000, "params": 100}},
    }
    assert load_baseline(baseline_path) == {"net": {"forward_flops": 1000, "backward_flops": 2000, "params": 100}}


def test_baseline_unchanged_passes(baseline_setup):
    budget_file, baseline_path = baseline_setup
    result = evaluate(budget_file, {"net": make_report(1000, 2000, 100)}, load_baseline(baseline_path))
    assert result.passed
    assert [(r.metric, r.growth_pct, r.passed) for r in result.regressions] == [
        ("forward_flops", 0.0, True),
        ("backward_flops", 0.0, True),
        ("params", 0.0, True),
    ]


def test_baseline_growth_beyond_tolerance_fails(baseline_setup):
    budget_file, baseline_path = baseline_setup
    result = evaluate(budget_file, {"net": make_report(1060, 2000, 100)}, load_baseline(baseline_path), 0.05)
    assert not result.passed
    assert not result.failed_checks  # the limit itself still holds
    (regression,) = result.failed_regressions
    assert (regression.metric, regression.baseline, regression.value) == ("forward_flops", 1000, 1060)
    assert regression.growth_pct == pytest.approx(6.0)
    assert regression.tolerance_pct == pytest.approx(5.0)


def test_baseline_growth_within_and_at_tolerance_passes(baseline_setup):
    budget_file, baseline_path = baseline_setup
    baseline = load_baseline(baseline_path)
    assert evaluate(budget_file, {"net": make_report(1040, 2100, 105)}, baseline, 0.05).passed
    assert not evaluate(budget_file, {"net": make_report(1000, 2001, 100)}, baseline, 0.0).passed


def test_baseline_shrinking_always_passes():
    assert compare_with_baseline("n", "params", 100, 10, 0.0).passed


def test_baseline_of_zero():
    assert compare_with_baseline("n", "backward_flops", 0, 0, 0.0).passed
    grown = compare_with_baseline("n", "backward_flops", 0, 5, 1.0)
    assert not grown.passed and grown.growth_pct is None


def test_entry_missing_from_baseline_is_a_note_not_a_failure(tmp_path, baseline_setup):
    _, baseline_path = baseline_setup
    path = write_budget(tmp_path, "budgets: [{name: new, model: b.py, max_params: 1G}]", name="other.yaml")
    result = evaluate(load_budget_file(path), {"new": make_report(1, 1, 1)}, load_baseline(baseline_path))
    assert result.passed and not result.regressions
    assert "new: not in the baseline yet" in result.notes[0]


def test_negative_tolerance_is_rejected(baseline_setup):
    budget_file, baseline_path = baseline_setup
    with pytest.raises(UsageError, match="tolerance"):
        evaluate(budget_file, {"net": make_report(1, 1, 1)}, load_baseline(baseline_path), -0.01)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("not json", "not valid JSON"),
        ('{"budgets": {}}', "schema_version"),
        ('{"schema_version": 1, "budgets": []}', "`budgets` object"),
        ('{"schema_version": 1, "budgets": {"n": 3}}', "'n' is not an object"),
        (
            '{"schema_version": 1, "budgets": {"n": {"forward_flops": 1, "backward_flops": 1.5, "params": 1}}}',
            "'backward_flops' must be a count",
        ),
        ('{"schema_version": 1, "budgets": {"n": {"forward_flops": 1, "backward_flops": 1}}}', "'params'"),
    ],
)
def test_malformed_baseline(tmp_path, text, fragment):
    path = tmp_path / "baseline.json"
    path.write_text(text)
    with pytest.raises(BudgetFileError, match="baseline file") as caught:
        load_baseline(path)
    assert fragment in str(caught.value)


def test_missing_baseline_says_how_to_record_one(tmp_path):
    with pytest.raises(BudgetFileError, match="--update-baseline"):
        load_baseline(tmp_path / "nope.json")


def test_baseline_data_covers_every_entry(tmp_path):
    path = write_budget(
        tmp_path, "budgets: [{name: a, model: a.py, max_params: 1}, {name: b, model: a.py, max_params: 1}]"
    )
    report = make_report(1, 2, 3)
    data = baseline_data(load_budget_file(path), {"a": report, "b": report})
    assert list(data["budgets"]) == ["a", "b"]


# ---------------------------------------------------------------------------------------------------------------
# hostile files and failed writes


def test_an_alias_bomb_budget_is_one_line(tmp_path):
    bomb = 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for level in range(1, 10):
        bomb += f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]\n"
    path = write_budget(tmp_path, bomb + "budgets: [{model: a.py, inputs: *a9}]\n")
    with pytest.raises(
        BudgetFileError, match=r"flopcalc.yaml: not valid YAML: its aliases expand to more than"
    ) as caught:
        load_budget_file(path)
    assert "\n" not in str(caught.value)


def test_a_50_mb_budget_file_is_refused_before_it_is_read(tmp_path):
    path = write_budget(tmp_path, "budgets:\n" + "  - {model: a.py, max_params: 1}\n" * 1_600_000)
    assert path.stat().st_size > 50e6
    with pytest.raises(BudgetFileError, match=r"budget file .*flopcalc.yaml is [\d,]+ bytes, more than the 16 MiB"):
        load_budget_file(path)


def test_a_baseline_that_cannot_be_written_names_the_path_and_keeps_the_old_one(tmp_path, monkeypatch):
    import errno
    import os

    budgets = write_budget(tmp_path, "budgets: [{name: a, model: a.py, max_params: 1}]")
    target = tmp_path / "baseline.json"
    target.write_text("previous\n")

    def quota(fd):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(os, "fsync", quota)
    with pytest.raises(UsageError, match=rf"cannot write {target}: Disk quota exceeded"):
        write_baseline(target, load_budget_file(budgets), {"a": make_report(1, 2, 3)})
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json", "flopcalc.yaml"]


@pytest.mark.parametrize(
    "key, value",
    [
        ("epochs", "1.0e+300"),
        ("examples", "1.0e+300"),
        ("max_training_flops", "1.0e+300"),
        ("max_params", ".inf"),
        ("max_forward_flops", ".nan"),
    ],
)
def test_a_number_out_of_range_in_a_budget_file_is_refused_naming_the_key(key, value, tmp_path):
    """Read from a file, as from an option: no 1e300 epochs reaches the arithmetic (it overflowed to a traceback)."""
    entry = {
        "epochs": "1",
        "examples": "60000",
        "max_training_flops": "600G",
        "max_params": "250k",
        "max_forward_flops": "30M",
        key: value,
    }
    path = tmp_path / "flopcalc.yaml"
    path.write_text(
        "budgets:\n  - name: m\n    model: net.py:build\n    inputs: ['4x784']\n"
        + "".join(f"    {k}: {v}\n" for k, v in entry.items())
    )
    with pytest.raises(BudgetFileError) as caught:
        load_budget_file(path)
    assert f"key '{key}'" in str(caught.value)
    assert "1e+40" in str(caught.value) or "finite" in str(caught.value)


def test_max_effective_flops_counts_the_entry_with_sparsity_and_checks_it(tmp_path):
    """examples/pruned.py: effective forward 19,072 + backward 43,648 FLOPs (tests/counting/test_sparsity.py)."""
    pruned = Path(__file__).resolve().parents[1] / "examples" / "pruned.py"
    path = write_budget(
        tmp_path,
        f"""\
        budgets:
          - {{name: pruned, model: "{pruned}:build", max_effective_flops: 62720}}
          - {{name: tight, model: "{pruned}:build", max_effective_flops: 62719}}
        """,
    )
    budget_file = load_budget_file(path)
    assert budget_file.budgets[0].spec.sparsity
    result = run_checks(budget_file)
    assert [(c.name, c.metric, c.value, c.passed) for c in result.checks] == [
        ("pruned", "effective_flops", 62_720, True),
        ("tight", "effective_flops", 62_720, False),
    ]


def test_a_budget_entry_takes_weights(tmp_path):
    path = write_budget(tmp_path, "budgets: [{model: a.py, weights: w.safetensors, max_forward_flops: 1G}]")
    spec = load_budget_file(path).budgets[0].spec
    assert spec.weights == "w.safetensors" and not spec.sparsity
    bad = write_budget(tmp_path, "budgets: [{model: a.py, weights: 3, max_forward_flops: 1G}]", "bad.yaml")
    with pytest.raises(BudgetFileError, match="weights"):
        load_budget_file(bad)


def test_a_budget_entry_takes_the_attention_window_options(tmp_path):
    path = write_budget(
        tmp_path,
        """\
        budgets:
          - {name: window, model: a.py, attention_window: 4096, max_forward_flops: 1G}
          - {name: square, model: a.py, attention_as_math: true, max_forward_flops: 1G}
          - {name: default, model: a.py, max_forward_flops: 1G}
        """,
    )
    window, square, default = (budget.spec for budget in load_budget_file(path).budgets)
    assert (window.attention_window, window.attention_as_math) == (4096, False)
    assert (square.attention_window, square.attention_as_math) == (None, True)
    assert (default.attention_window, default.attention_as_math) == (None, False)
    assert len({window.key(), square.key(), default.key()}) == 3  # three different counts, none merged
    for text, fragment in (
        ("{model: a.py, attention_window: 16, attention_as_math: true, max_params: 1}", "contradict each other"),
        ("{model: a.py, attention_window: 0, max_params: 1}", "key 'attention_window'"),
        ("{model: a.py, attention_as_math: yes please, max_params: 1}", "key 'attention_as_math'"),
    ):
        bad = write_budget(tmp_path, f"budgets: [{text}]", "bad.yaml")
        with pytest.raises(BudgetFileError, match=fragment):
            load_budget_file(bad)
