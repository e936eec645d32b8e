"""Scanning of messy image folders: hidden entries, empty and nested class folders, too few classes."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from heldout.data.scan import scan_image_folder
from heldout.errors import DataError


def test_scan_ignores_hidden_files_and_folders(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 2, "dog": 2})
    write_class_folders(root / ".ipynb_checkpoints", {"cat-checkpoint": 2})
    write_class_folders(root, {".hidden_class": 2, "__MACOSX": 2})
    (root / "cat" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "cat" / "._0.png").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork next to an image
    write_class_folders(root / "dog" / ".thumbnails", {"small": 1})

    scan = scan_image_folder(root)

    assert scan.classes == ["cat", "dog"]
    assert [s.path for s in scan.samples] == ["cat/0.png", "cat/1.png", "dog/0.png", "dog/1.png"]
    assert scan.ignored == []


def test_scan_leaves_out_empty_class(tmp_path: Path, write_class_folders: Callable[..., Path],
                                     caplog: pytest.LogCaptureFixture) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 2, "dog": 2})
    (root / "empty").mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("no images here\n")

    with caplog.at_level(logging.WARNING, logger="heldout.data.scan"):
        scan = scan_image_folder(root)

    assert scan.classes == ["cat", "dog"]
    assert scan.empty_classes == ["empty", "notes"]
    assert scan.ignored == ["notes/readme.txt"]
    assert "Left out 2 class folder(s) without image files: empty, notes" in caplog.text
    assert scan.targets() == [0, 0, 1, 1]


def test_scan_empty_classes_leave_one_class(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 2})
    (root / "dog").mkdir()

    with pytest.raises(DataError, match=r"has 1 class\(es\) with images \('cat'\), expected at least 2"):
        scan_image_folder(root)


def test_scan_single_class_folder(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data", {"only": 3})

    with pytest.raises(DataError, match="A classifier needs one subfolder of images per class"):
        scan_image_folder(root)


def test_scan_includes_nested_subfolders(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    """Images in a subfolder of a class folder belong to that class, at any depth."""
    root = write_class_folders(tmp_path / "data", {"cat": 1, "dog": 1})
    write_class_folders(root / "cat", {"camera2": 1})
    write_class_folders(root / "cat" / "camera2", {"night": 1})

    scan = scan_image_folder(root)

    assert scan.classes == ["cat", "dog"]
    labels = {s.path: s.label for s in scan.samples}
    assert labels == {"cat/0.png": "cat", "cat/camera2/0.png": "cat", "cat/camera2/night/0.png": "cat",
                      "dog/0.png": "dog"}


def test_scan_images_in_root_only(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 2})
    for path in (root / "cat").iterdir():
        path.rename(root / path.name)
    (root / "cat").rmdir()

    with pytest.raises(DataError, match="holds 2 image files directly; move them into one subfolder per class"):
        scan_image_folder(root)


def test_scan_extension_case_insensitive(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 1, "dog": 1})
    (root / "cat" / "0.png").rename(root / "cat" / "0.PNG")

    scan = scan_image_folder(root)

    assert [s.path for s in scan.samples] == ["cat/0.PNG", "dog/0.png"]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def test_scan_symlink_loop_not_followed(tmp_path: Path, write_class_folders: Callable[..., Path],
                                        caplog: pytest.LogCaptureFixture) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 2, "dog": 2})
    (root / "cat" / "sub").mkdir()
    (root / "cat" / "sub" / "up").symlink_to("..", target_is_directory=True)
    # A link to a folder outside the data folder is followed as usual.
    write_class_folders(tmp_path / "elsewhere", {"more": 1})
    (root / "dog" / "extra").symlink_to(tmp_path / "elsewhere" / "more", target_is_directory=True)

    with caplog.at_level(logging.WARNING, logger="heldout.data.scan"):
        scan = scan_image_folder(root)

    assert [s.path for s in scan.samples] == ["cat/0.png", "cat/1.png", "dog/0.png", "dog/1.png", "dog/extra/0.png"]
    assert any("cat/sub/up (a link to a folder already scanned" in message for message in _warnings(caplog))


def test_scan_passes_over_non_utf8_name(tmp_path: Path, write_class_folders: Callable[..., Path],
                                        caplog: pytest.LogCaptureFixture) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 2, "dog": 2})
    latin1 = os.fsencode(root / "cat") + b"/caf\xe9.png"
    with open(latin1, "wb") as handle:
        handle.write((root / "cat" / "0.png").read_bytes())
    os.mkdir(os.fsencode(root) + b"/\xe9t\xe9")
    with open(os.fsencode(root) + b"/\xe9t\xe9/0.png", "wb") as handle:
        handle.write((root / "cat" / "0.png").read_bytes())

    with caplog.at_level(logging.WARNING, logger="heldout.data.scan"):
        scan = scan_image_folder(root)

    assert [s.path for s in scan.samples] == ["cat/0.png", "cat/1.png", "dog/0.png", "dog/1.png"]
    assert scan.classes == ["cat", "dog"]
    warnings = " ".join(_warnings(caplog))
    assert "b'cat/caf\\xe9.png' (a name that is not valid UTF-8" in warnings
    assert "b'\\xe9t\\xe9' (a class folder name that is not valid UTF-8" in warnings


def test_scan_warns_images_beside_classes(tmp_path: Path, write_class_folders: Callable[..., Path],
                                          caplog: pytest.LogCaptureFixture) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 2, "dog": 2})
    (root / "stray.png").write_bytes((root / "cat" / "0.png").read_bytes())

    with caplog.at_level(logging.WARNING, logger="heldout.data.scan"):
        scan = scan_image_folder(root)

    assert len(scan.samples) == 4
    [warning] = _warnings(caplog)
    assert "Left out 1 image file(s) directly in" in warning
    assert "for example stray.png" in warning


def test_scan_rejects_split_folders_as_classes(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    root = tmp_path / "data"
    write_class_folders(root / "train", {"cat": 2, "dog": 2})
    write_class_folders(root / "val", {"cat": 2, "dog": 2})

    with pytest.raises(DataError, match="has the class folders train, val, which look like split folders") as caught:
        scan_image_folder(root)

    assert str(caught.value).endswith(f"Pass --data.data_dir {root / 'train'}, --data.val_dir {root / 'val'}.")


def test_scan_split_folders_advice_skips_test(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    root = tmp_path / "data"
    write_class_folders(root / "testing", {"cat": 2, "dog": 2})
    write_class_folders(root / "Validation", {"cat": 2, "dog": 2})

    with pytest.raises(DataError) as caught:
        scan_image_folder(root)

    assert str(caught.value).endswith(f"Pass --data.data_dir with a folder of training images, --data.val_dir "
                                      f"{root / 'Validation'}, --data.test_dir {root / 'testing'}.")


def test_scan_warns_once_per_process(tmp_path: Path, write_class_folders: Callable[..., Path],
                                     caplog: pytest.LogCaptureFixture) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 2, "dog": 2})
    (root / "cat" / "notes.txt").write_text("not an image\n")

    with caplog.at_level(logging.WARNING, logger="heldout.data.scan"):
        scan_image_folder(root)
        scan_image_folder(root)

    assert len(_warnings(caplog)) == 1


def test_scan_passes_over_pipes_and_dangling_links(tmp_path: Path, write_class_folders: Callable[..., Path],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 2, "dog": 2})
    os.mkfifo(root / "cat" / "pipe.png")
    (root / "dog" / "gone.png").symlink_to(tmp_path / "missing.png")

    with caplog.at_level(logging.WARNING, logger="heldout.data.scan"):
        scan = scan_image_folder(root)

    assert [s.path for s in scan.samples] == ["cat/0.png", "cat/1.png", "dog/0.png", "dog/1.png"]
    [warning] = _warnings(caplog)
    assert "cat/pipe.png (not a regular file)" in warning
    assert "dog/gone.png (not a regular file)" in warning
