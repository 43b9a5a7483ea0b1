"""files.write_atomic: the whole text or nothing, and a path it cannot write is one UsageError line."""

import pytest

from flopcalc.errors import UsageError
from flopcalc.files import write_atomic


def test_writes_the_whole_text_and_leaves_no_temporary_file(tmp_path):
    target = write_atomic(tmp_path / "out.json", "{}\n")
    assert target.read_text() == "{}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="folder .* does not exist"):
        write_atomic(tmp_path / "nope" / "out.json", "x")


def test_a_folder_given_as_the_file_is_a_usage_error_and_is_left_alone(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "keep.txt").write_text("kept")
    with pytest.raises(UsageError, match=r"cannot write .*reports: it is a folder") as caught:
        write_atomic(folder, "x")
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]  # no temporary file left beside it
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


# ---------------------------------------------------------------- writes that fail, are interrupted, keep modes

import errno
import os
import signal

from flopcalc.errors import BudgetFileError, CatalogError
from flopcalc.files import MAX_TEXT_FILE_BYTES, parse_yaml, read_json, read_yaml
from tests._killed import killed_while_writing


@pytest.fixture
def full_disk(monkeypatch):
    """Every os.fsync from here on fails as on a full disk (ENOSPC)."""

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)


def test_a_full_disk_is_one_line_naming_the_path_and_the_previous_file_is_intact(tmp_path, full_disk):
    target = tmp_path / "baseline.json"
    target.write_text("old\n")
    with pytest.raises(UsageError, match=r"cannot write .*baseline.json: No space left on device") as caught:
        write_atomic(target, "new\n" * 1000)
    assert "\n" not in str(caught.value)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]


def test_a_new_file_follows_the_umask_and_an_overwritten_one_keeps_its_mode(tmp_path):
    old_umask = os.umask(0o027)
    try:
        created = write_atomic(tmp_path / "new.json", "{}\n")
        assert created.stat().st_mode & 0o777 == 0o640  # 0666 under umask 027; mkstemp alone gives 0600
    finally:
        os.umask(old_umask)
    kept = tmp_path / "kept.json"
    kept.write_text("x")
    kept.chmod(0o604)
    write_atomic(kept, "y")
    assert (kept.read_text(), kept.stat().st_mode & 0o777) == ("y", 0o604)


def test_a_sigterm_during_a_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "calibration.yaml"
    target.write_text("old\n")
    command = f"""
        import flopcalc.files as files
        files.write_atomic({str(target)!r}, "new\\n" * 100)
    """
    result = killed_while_writing(command, timeout=60)
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.yaml"]


# ---------------------------------------------------------------- reading: sizes, keys given twice, alias bombs


def _billion_laughs(levels: int = 9) -> str:
    text = 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for level in range(1, levels + 1):
        text += f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]\n"
    return text


def test_an_alias_bomb_is_refused_in_one_line_fast(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_billion_laughs())
    with pytest.raises(
        CatalogError,
        match=r"bomb.yaml: not valid YAML: its aliases expand to more than 100,000 "
        r"nodes .* at line \d+",
    ) as caught:
        read_yaml(path, CatalogError, "GPU catalogue")
    assert "\n" not in str(caught.value)


def test_a_few_aliases_and_merge_keys_are_fine_but_a_self_containing_alias_is_not():
    text = "base: &base {x: 1, y: 2}\none:\n  <<: *base\n  x: 3\ntwo: *base\n"
    assert parse_yaml(text, CatalogError, "t.yaml") == {
        "base": {"x": 1, "y": 2},
        "one": {"x": 3, "y": 2},
        "two": {"x": 1, "y": 2},
    }
    with pytest.raises(CatalogError, match="alias refers to a node that contains it"):
        parse_yaml("a: &loop [*loop]\n", CatalogError, "t.yaml")


@pytest.mark.parametrize(
    "text, line", [("a: 1\nb: 2\na: 3\n", 3), ("gpus:\n  - {id: X, memory_gb: 1, memory_gb: 2}\n", 2)]
)
def test_a_key_given_twice_is_refused_naming_the_key_and_line(text, line):
    with pytest.raises(CatalogError, match=rf"t.yaml: not valid YAML: key '\w+' is given twice at line {line}"):
        parse_yaml(text, CatalogError, "t.yaml")


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "flopcalc.yaml"
    with open(path, "wb") as handle:  # sparse: no 16 MiB written
        handle.truncate(MAX_TEXT_FILE_BYTES + 1)
    with pytest.raises(BudgetFileError, match=r"budget file .*flopcalc.yaml is 16,777,217 bytes, more than the 16 MiB"):
        read_yaml(path, BudgetFileError, "budget file")
    with pytest.raises(BudgetFileError, match=r"baseline file .* more than the 16 MiB"):
        read_json(path, BudgetFileError, "baseline file")


def test_json_that_does_not_parse_names_the_file(tmp_path):
    path = tmp_path / "base.json"
    path.write_text("{")
    with pytest.raises(BudgetFileError, match=r"baseline file .*base.json is not valid JSON"):
        read_json(path, BudgetFileError, "baseline file")


def test_a_report_that_cannot_be_written_exits_2_naming_the_path(tmp_path, full_disk):
    from typer.testing import CliRunner

    from flopcalc.cli import app

    report = tmp_path / "report.json"
    report.write_text("previous\n")
    result = CliRunner().invoke(
        app, ["convert", "2500 gpu-days", "--gpu", "V100-SXM2", "-f", "json", "-o", str(report)]
    )
    assert result.exit_code == 2, result.output
    assert f"cannot write {report}: No space left on device" in result.output
    assert len(result.output.strip().splitlines()) == 1 and report.read_text() == "previous\n"


# ---------------------------------------------------------------- strict JSON


def test_json_output_says_unbounded_and_never_writes_infinity_or_nan():
    import json
    import math

    from flopcalc.files import UNBOUNDED, to_json

    text = to_json({"fits": True, "max_batch": math.inf, "rows": [1.5, (2, math.inf)]})
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in strict JSON")) == {
        "fits": True,
        "max_batch": UNBOUNDED,
        "rows": [1.5, [2, UNBOUNDED]],
    }
    for bad in (math.nan, -math.inf):
        with pytest.raises(ValueError, match=r"rows\[1\]\.x is"):
            to_json({"rows": [0, {"x": bad}]})


def test_every_json_a_user_reads_is_written_through_to_json():
    """The commands' output, reports, baselines: one strict writer (the ranks' messages to each other are not
    user output and are read back by Python's own json)."""
    from pathlib import Path

    import flopcalc

    package = Path(flopcalc.__file__).parent
    writers = [
        str(path.relative_to(package))
        for folder in ("render", "cli", "budget", "calibration")
        for path in (package / folder).rglob("*.py")
        if "json.dump" in path.read_text()
    ]
    assert writers == []


def test_read_yaml_or_shipped_reads_the_shipped_table_when_no_path_is_given():
    from flopcalc.files import read_yaml_or_shipped, shipped_text

    where, data = read_yaml_or_shipped(None, "device_profiles.yaml", CatalogError, "device profile file")
    assert where == "device_profiles.yaml (shipped)"
    assert data == parse_yaml(shipped_text("device_profiles.yaml"), CatalogError, where)


def test_read_yaml_or_shipped_reads_the_given_file_and_names_it_in_errors(tmp_path):
    from flopcalc.files import read_yaml_or_shipped

    path = tmp_path / "mine.yaml"
    path.write_text("schema_version: 1\n")
    assert read_yaml_or_shipped(path, "device_profiles.yaml", CatalogError, "device profile file") == (
        str(path),
        {"schema_version": 1},
    )
    path.write_text("a: [1\n")
    with pytest.raises(CatalogError, match="mine.yaml: not valid YAML"):
        read_yaml_or_shipped(path, "device_profiles.yaml", CatalogError, "device profile file")
