"""The pre-flight check: every bad file found in one pass, the skip/fail policy, and reuse of its result."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from heldout.data import prepare
from heldout.data.manifest import SKIPPED_FILE
from heldout.data.preflight import find_bad_images
from heldout.data.prepare import load_or_create_manifest
from heldout.errors import DataError

SPLIT = {"val_fraction": 0.25, "test_fraction": 0.25, "seed": 3}


def _add_bad_files(root: Path) -> dict[str, str]:
    """Write one file of each broken kind into the class folders; return relative path -> reason."""
    (root / "cat" / "zero.jpg").write_bytes(b"")
    (root / "dog" / "text.jpg").write_text("<html>not an image</html>\n")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / "eel" / "cut.jpg")
    data = (root / "eel" / "cut.jpg").read_bytes()
    (root / "eel" / "cut.jpg").write_bytes(data[: len(data) // 2])
    return {"cat/zero.jpg": "empty file (0 bytes)", "dog/text.jpg": "not a recognised image format",
            "eel/cut.jpg": "image file is truncated"}


def _read_skipped(folder: Path) -> dict[str, str]:
    with (folder / SKIPPED_FILE).open(newline="") as handle:
        return {row["path"]: row["reason"] for row in csv.DictReader(handle)}


def test_find_bad_images_one_pass(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data")
    expected = _add_bad_files(root)
    paths = sorted(root.rglob("*.*"))

    bad = find_bad_images(paths, num_threads=2)

    found = {path.relative_to(root).as_posix(): reason for path, reason in bad.items()}
    assert sorted(found) == sorted(expected)
    for relative, reason in expected.items():
        assert reason in found[relative]


def test_preflight_skip_lists_files(tmp_path: Path, write_class_folders: Callable[..., Path],
                                    caplog: pytest.LogCaptureFixture) -> None:
    root = write_class_folders(tmp_path / "data")
    expected = _add_bad_files(root)
    run = tmp_path / "run"

    with caplog.at_level(logging.WARNING, logger="heldout.data.prepare"):
        manifest = load_or_create_manifest({"data_dir": root}, run, on_bad_file="skip", **SPLIT)

    skipped = _read_skipped(run)
    assert sorted(skipped) == sorted(expected)
    for relative, reason in expected.items():
        assert reason in skipped[relative]
    assert f"Skipping 3 unreadable image file(s) (full list in {run / SKIPPED_FILE})" in caplog.text
    assert len(manifest.rows) == 18
    assert all(row.path.split("/")[0] == row.label for row in manifest.rows)
    assert manifest.classes == ["cat", "dog", "eel"]


def test_preflight_fail_lists_every_file(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data")
    _add_bad_files(root)
    run = tmp_path / "run"

    with pytest.raises(DataError, match=r"3 unreadable image file\(s\) found \(data.on_bad_file=fail\)") as caught:
        load_or_create_manifest({"data_dir": root}, run, on_bad_file="fail", **SPLIT)

    message = str(caught.value)
    for relative in ("cat/zero.jpg", "dog/text.jpg", "eel/cut.jpg"):
        assert str(root / relative) in message
    assert "--data.on_bad_file skip" in message
    assert not (run / "manifest.csv").exists()


def test_preflight_reused_from_run_folder(tmp_path: Path, write_class_folders: Callable[..., Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_class_folders(tmp_path / "data")
    _add_bad_files(root)
    run = tmp_path / "run"
    first = load_or_create_manifest({"data_dir": root}, run, on_bad_file="skip", **SPLIT)

    def fail_if_called(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pre-flight check ran again on an unchanged folder")

    monkeypatch.setattr(prepare, "find_bad_images", fail_if_called)
    second = load_or_create_manifest({"data_dir": root}, run, on_bad_file="skip", **SPLIT)

    assert second.rows == first.rows
    assert second.skipped == first.skipped


def test_preflight_rechecks_changed_file(tmp_path: Path, write_class_folders: Callable[..., Path],
                                         caplog: pytest.LogCaptureFixture) -> None:
    root = write_class_folders(tmp_path / "data")
    run = tmp_path / "run"
    first = load_or_create_manifest({"data_dir": root}, run, on_bad_file="skip", **SPLIT)
    (root / "dog" / "2.png").write_bytes(b"")  # overwritten between two runs

    with pytest.raises(DataError, match=r"changed since the split .* now unreadable .*dog/2.png: empty file"):
        load_or_create_manifest({"data_dir": root}, run, on_bad_file="fail", **SPLIT)
    with caplog.at_level(logging.WARNING, logger="heldout.data.prepare"):
        second = load_or_create_manifest({"data_dir": root}, run, on_bad_file="skip", **SPLIT)
    third = load_or_create_manifest({"data_dir": root}, run, on_bad_file="skip", **SPLIT)

    expected_rows = [row for row in first.rows if row.path != "dog/2.png"]
    assert [row.path for row in second.rows] == [row.path for row in expected_rows]
    assert [row.split for row in second.rows] == [row.split for row in expected_rows]
    assert "Skipping 1 image file(s) that changed since the split was written" in caplog.text
    assert f"{root}/dog/2.png: empty file" in caplog.text
    assert _read_skipped(run) == {"dog/2.png": "empty file (0 bytes)"}
    assert third.skipped == second.skipped


def test_preflight_class_all_unreadable(tmp_path: Path, write_class_folders: Callable[..., Path],
                                        caplog: pytest.LogCaptureFixture) -> None:
    root = write_class_folders(tmp_path / "data")
    for path in (root / "eel").iterdir():
        path.write_bytes(b"")

    with caplog.at_level(logging.WARNING, logger="heldout.data.prepare"):
        manifest = load_or_create_manifest({"data_dir": root}, None, on_bad_file="skip", **SPLIT)

    assert manifest.classes == ["cat", "dog"]
    assert "Left out class(es) eel: every image in them is unreadable." in caplog.text


def test_preflight_one_class_left(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 4, "dog": 4})
    for path in (root / "dog").iterdir():
        path.write_text("not an image\n")

    with pytest.raises(DataError, match=r"has 1 class\(es\) with images; a classifier needs at least 2"):
        load_or_create_manifest({"data_dir": root}, None, on_bad_file="skip", **SPLIT)
