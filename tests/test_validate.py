"""The validation table holds: the model's error against the published measured runs stays within the goal."""

import re

import pytest
import yaml

from flopcalc.validate import ValidationFileError, default_runs_text, load_runs, validate


@pytest.fixture(scope="module")
def report():
    return validate()


def test_time_per_step_is_within_5_percent_on_average_and_10_at_worst(report):
    summary = report.summary("time")
    assert summary.rows == 8
    assert summary.mean_abs_error <= 0.05 and summary.max_abs_error <= 0.10


def test_the_held_out_rows_are_predictions_within_the_goal_too(report):
    held_out = report.summary("time", "held-out")
    assert held_out.rows == 6
    assert held_out.mean_abs_error <= 0.05 and held_out.max_abs_error <= 0.10
    assert set(report.fit.tuning_rows) == {"korthikanti-22b-full-time", "korthikanti-22b-selective-time"}


def test_memory_per_gpu_is_within_3_percent_on_average(report):
    summary = report.summary("memory")
    assert summary.rows == 8 and summary.mean_abs_error <= 0.03


def test_memory_by_hand_for_the_22b_row(report):
    row = next(result for result in report.results if result.row.id == "korthikanti-22b-none-memory")
    s, b, h, a, t, layers = 2048, 4, 6144, 64, 8, 48
    states = 18 * 12 * layers * h * h / t  # 2 + 4 + 12 bytes per parameter of the blocks, over tp
    activations = layers * s * b * h * (10 + 24 / t + 5 * a * s / (h * t))  # Korthikanti et al., Table 2
    assert row.predicted == pytest.approx((states + activations) / 2**30, rel=1e-12)
    interleaved = next(result for result in report.results if result.row.id == "korthikanti-175b-none-memory")
    s, b, h, a, layers, p, v = 2048, 1, 12288, 96, 96, 8, 3
    expected = layers * s * b * h * (10 + 24 / t + 5 * a * s / (h * t)) * (1 + (p - 1) / (p * v))
    assert interleaved.predicted_activations == pytest.approx(expected / 2**30, rel=1e-12)


def test_without_fitting_every_row_is_a_prediction():
    unfitted = validate(fit=False)
    assert unfitted.fit is None
    assert unfitted.summary("time").max_abs_error > 0  # the shipped profile as published: a different error
    assert unfitted.summary("time").max_abs_error != validate().summary("time").max_abs_error


def _table(tmp_path, change):
    data = yaml.safe_load(default_runs_text())
    change(data)
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["runs"][3].pop("source"), r"runs\[3\].source: missing"),
        (lambda d: d["runs"][0].update(source="  "), "must say where the measurement was published"),
        (lambda d: d["runs"][1]["measured"].pop("step_s"), "step_s: missing"),
        (lambda d: d["runs"][2]["measured"].pop("activations_gib"), "activations_gib: missing"),
        (lambda d: d["runs"][0]["layout"].pop("tp"), "layout.tp: missing"),
        (lambda d: d["runs"][0].update(role="maybe"), "tuning or held-out"),
        (lambda d: d["runs"][0].update(device="V100-SXM2-32GB"), "no device profile"),
        (lambda d: d["runs"][0]["model"].update(heads=7), "not divisible"),
        (lambda d: d.update(runs=[]), "non-empty"),
    ],
)
def test_a_bad_row_is_one_line(tmp_path, change, message):
    with pytest.raises(ValidationFileError, match=message) as caught:
        validate(_table(tmp_path, change))
    assert "\n" not in str(caught.value)


def test_a_corrupt_table_is_one_line(tmp_path):
    path = tmp_path / "runs.yaml"
    path.write_text("runs: [\n", encoding="utf-8")
    with pytest.raises(ValidationFileError, match="not valid YAML"):
        load_runs(path)


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "hidden: 6144",
            "hidden: 1000000000000000000000",
            "runs[0].model.hidden: must be a whole number from 1 to 9,007,199,254,740,991",
        ),
        ("step_s: 1.42", "step_s: 1.0e-300", "runs[0].measured.step_s: must be between 1e-09 and 1e+40"),
        ("step_s: 1.42", "step_s: 1.0e+300", "runs[0].measured.step_s: must be between 1e-09 and 1e+40"),
    ],
)
def test_a_figure_out_of_range_in_a_runs_file_is_refused_naming_it(old, new, message, tmp_path):
    text = default_runs_text()
    assert old in text
    runs = tmp_path / "runs.yaml"
    runs.write_text(text.replace(old, new, 1))
    with pytest.raises(ValidationFileError, match=re.escape(message)):
        load_runs(runs)
