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
