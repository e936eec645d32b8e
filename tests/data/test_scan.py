from pathlib import Path

import pytest
from PIL import Image

from heldout.data.scan import scan_image_folder
from heldout.errors import DataError


def _touch_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(path, format="PNG")


def test_scan_sorts_classes_and_samples(tmp_path: Path) -> None:
    for name in ("b/2.png", "b/1.png", "a/x.png", "c/y.png"):
        _touch_image(tmp_path / name)
    scan = scan_image_folder(tmp_path)
    assert scan.classes == ["a", "b", "c"]
    assert [s.path for s in scan.samples] == ["a/x.png", "b/1.png", "b/2.png", "c/y.png"]
    assert scan.targets() == [0, 1, 1, 2]


def test_scan_matches_extensions_case_insensitively(tmp_path: Path) -> None:
    _touch_image(tmp_path / "a" / "one.PNG")
    _touch_image(tmp_path / "b" / "two.JpG")
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    scan = scan_image_folder(tmp_path)
    assert [s.path for s in scan.samples] == ["a/one.PNG", "b/two.JpG"]
    assert scan.ignored == ["b/notes.txt"]


def test_scan_ignores_hidden_files_and_folders(tmp_path: Path) -> None:
    _touch_image(tmp_path / "a" / "1.png")
    _touch_image(tmp_path / "b" / "1.png")
    _touch_image(tmp_path / ".ipynb_checkpoints" / "1.png")
    _touch_image(tmp_path / "a" / ".hidden.png")
    (tmp_path / "a" / ".DS_Store").write_bytes(b"\x00\x01")
    scan = scan_image_folder(tmp_path)
    assert scan.classes == ["a", "b"]
    assert len(scan.samples) == 2


def test_scan_leaves_out_empty_class(tmp_path: Path) -> None:
    _touch_image(tmp_path / "a" / "1.png")
    _touch_image(tmp_path / "b" / "1.png")
    (tmp_path / "empty").mkdir()
    scan = scan_image_folder(tmp_path)
    assert scan.classes == ["a", "b"]
    assert scan.empty_classes == ["empty"]


def test_scan_includes_class_subfolders(tmp_path: Path) -> None:
    _touch_image(tmp_path / "a" / "session1" / "1.png")
    _touch_image(tmp_path / "b" / "1.png")
    scan = scan_image_folder(tmp_path)
    assert [s.label for s in scan.samples] == ["a", "b"]
    assert scan.samples[0].path == "a/session1/1.png"


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ([], "not found"),  # the folder itself is missing
        (["loose.png"], "no class subfolders"),  # images but no class folders
        (["only/1.png"], "expected at least 2"),  # a single class
    ],
)
def test_scan_rejects_unusable_folders(tmp_path: Path, layout: list[str], message: str) -> None:
    root = tmp_path / "data"
    for name in layout:
        _touch_image(root / name)
    with pytest.raises(DataError, match=message):
        scan_image_folder(root)
