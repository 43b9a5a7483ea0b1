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
