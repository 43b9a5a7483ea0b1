"""Budget renderers on hand-built results: names printed as typed, failures marked in every format."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from flopcalc.budget import Check, CheckResult, compare_with_baseline
from flopcalc.render.budget import format_metric, render_json, render_junit, render_markdown, render_table, verdict

RESULT = CheckResult(
    checks=(
        Check("net[bold]", "net.py", "forward_flops", 9_500_000_000, 9e9, False, -5.555555),
        Check("a|b", "ab.py", "training_pf_days", 4.2, 5.0, True, 16.0),
    ),
    regressions=(compare_with_baseline("net[bold]", "params", 100, 110, 0.05),),
    notes=("net[bold]: unsupported ops (no formula, not counted): aten.fft_r2c x1",),
)


def test_format_metric():
    assert format_metric("forward_flops", 9.5e9) == "9.5 GFLOP"
    assert format_metric("params", 26e6) == "26 M"
    assert format_metric("training_pf_days", 5.689e-9) == "5.69e-9 PF-days"


def test_verdict_counts_checks_and_regressions():
    assert verdict(RESULT) == "FAILED: 1 of 2 checks over budget; 1 of 1 baseline comparisons grew past the tolerance"


def test_table_prints_names_as_typed_failures_first_and_red_on_a_terminal():
    plain = render_table(RESULT)
    rows = [line for line in plain.splitlines() if line.startswith(("PASS ", "FAIL "))]
    assert rows[0].startswith("FAIL") and "net[bold]" in rows[0]  # not swallowed as rich markup
    assert "9.5 GFLOP" in rows[0] and "-5.56%" in rows[0]
    assert "note: net[bold]: unsupported ops (no formula, not counted)" in plain
    assert "\x1b[" not in plain
    assert "\x1b[1;31m" in render_table(RESULT, color=True)


def test_markdown_escapes_pipes_in_names():
    text = render_markdown(RESULT)
    assert "| ✅ | a\\|b | training PF-days | 4.2 PF-days | 5 PF-days | 16.00% |" in text
    assert "| ❌ | net[bold] | params | 100 | 110 | +10.00% | 5.00% |" in text


def test_json_rounds_headroom_and_keeps_integral_limits_integers():
    data = json.loads(render_json(RESULT))
    assert data["checks"][0]["limit"] == 9_000_000_000 and isinstance(data["checks"][0]["limit"], int)
    assert data["checks"][0]["headroom"] == -5.5556
    assert data["regressions"][0]["growth_pct"] == 10.0


def test_junit_marks_budget_and_baseline_failures_apart():
    root = ET.fromstring(render_junit(RESULT))
    assert (root.get("tests"), root.get("failures")) == ("3", "2")
    kinds = [failure.get("type") for failure in root.iter("failure")]
    assert kinds == ["BudgetExceeded", "BaselineRegression"]
