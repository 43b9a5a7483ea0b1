"""Regulatory compute thresholds (flopcalc/thresholds.py over flopcalc/data/thresholds.yaml)."""

from flopcalc.thresholds import crossed, load_thresholds


def test_the_table_holds_the_three_thresholds_with_sources_and_dates():
    by_id = {t.id: t for t in load_thresholds()}
    assert by_id["eu-ai-act"].flop == 1e25 and "2024/1689" in by_id["eu-ai-act"].law
    assert by_id["california-sb-53"].flop == 1e26
    assert by_id["us-eo-14110"].flop == 1e26 and by_id["us-eo-14110"].status == "revoked"
    assert all(t.source.startswith("https://") and t.dates for t in by_id.values())


def test_a_total_crosses_a_threshold_only_when_greater():
    assert crossed(1e25) == ()
    assert [t.id for t in crossed(2e25)] == ["eu-ai-act"]
    assert [t.id for t in crossed(1.5e26)] == ["eu-ai-act", "california-sb-53", "us-eo-14110"]
    assert "(revoked)" in crossed(1.5e26)[2].note(1.5e26)


import pytest

import flopcalc.thresholds as thresholds
from flopcalc.errors import CatalogError

ROW = "{id: a, flop: 1.0e+25, what: w, law: l, status: s, dates: d, counts: c, source: https://x}"


@pytest.mark.parametrize(
    "text, message",
    [
        (ROW.replace("1.0e+25", "-1"), r"t.yaml: a: flop must be a positive number, got -1"),
        (ROW.replace("1.0e+25", "'1e25'"), r"t.yaml: a: flop must be a positive number, got '1e25'"),
        (
            ROW.replace(", source: https://x", ""),
            r"a: each threshold needs exactly the keys id, flop.* \(missing: source\)",
        ),
        (ROW.replace("}", ", extra: 1}"), r"\(unknown: extra\)"),
        (ROW.replace("what: w", "what: [1]"), r"a: key 'what': .*string, got \[1\]"),
    ],
)
def test_a_bad_table_is_one_line_naming_the_file_the_threshold_and_the_key(tmp_path, monkeypatch, text, message):
    path = tmp_path / "t.yaml"
    path.write_text(f"thresholds:\n  - {text}\n")
    monkeypatch.setattr(thresholds, "table_path", lambda: path)
    thresholds.load_thresholds.cache_clear()
    try:
        with pytest.raises(CatalogError, match=message) as caught:
            thresholds.load_thresholds()
        assert "\n" not in str(caught.value)
    finally:
        thresholds.load_thresholds.cache_clear()
