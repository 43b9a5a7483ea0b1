"""`validate --format html`: one point per row at (measured, predicted), the band of the max |error|, the page's
data against `--format json`, and the page in headless Chromium."""

from __future__ import annotations

import json

import pytest

from flopcalc.cli import app
from flopcalc.render.validate_html import error_band, validation_points
from flopcalc.validate import validate
from tests._cli import runner
from tests.test_render_html import open_in_chromium, page_data

pytest.importorskip("bokeh", reason="the html extra (Bokeh) is not installed")


def test_one_point_per_row_inside_the_band_of_the_largest_error():
    report = validate()
    for kind in ("time", "memory"):
        points = validation_points(report, kind)
        rows = report.of(kind)
        assert points["id"] == [r.row.id for r in rows] and len(rows) == 8
        assert points["measured"] == [r.row.measured for r in rows]
        assert points["predicted"] == [r.predicted for r in rows]
        worst = report.summary(kind).max_abs_error
        band = error_band(report, kind, 1.0, 100.0)
        assert band["x"] == [1.0, 100.0, 100.0, 1.0]
        assert band["y"] == [1 - worst, 100 * (1 - worst), 100 * (1 + worst), 1 + worst]
        for measured, predicted in zip(points["measured"], points["predicted"]):
            assert measured * (1 - worst) - 1e-12 <= predicted <= measured * (1 + worst) + 1e-12
        # the worst row sits on the band's edge: |predicted / measured - 1| == max |error|
        assert max(abs(p / m - 1) for m, p in zip(points["measured"], points["predicted"])) == worst
    assert {role for role in validation_points(report, "time")["role"]} == {"tuning", "held-out"}


def test_the_page_carries_the_json_figures(tmp_path):
    out = tmp_path / "validate.html"
    result = runner.invoke(app, ["validate", "--format", "html", "--output", str(out)])
    assert result.exit_code == 0, result.output
    as_json = runner.invoke(app, ["validate", "--format", "json"])
    assert as_json.exit_code == 0
    assert page_data(out.read_text()) == json.loads(as_json.stdout)


def test_the_validate_report_opens_offline_in_chromium_with_a_point_per_row(tmp_path):
    out = tmp_path / "validate.html"
    assert runner.invoke(app, ["validate", "--format", "html", "--output", str(out)]).exit_code == 0
    data = page_data(out.read_text())
    errors, rows = open_in_chromium(out, tmp_path / "validate.png")
    assert errors == []
    assert rows["time_rows"] == [len(data["time"]["rows"])]
    assert rows["memory_rows"] == [len(data["memory"]["rows"])]
    from PIL import Image

    image = Image.open(tmp_path / "validate.png").convert("RGB")
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 20  # drawn, not blank
