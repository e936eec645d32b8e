import logging
import shutil
from pathlib import Path

import pytest

from heldout.data.datamodule import ImageFolderDataModule
from heldout.errors import DataError


def _leaky_test_folder(image_folder: Path, tmp_path: Path) -> Path:
    """A separate test folder holding one copy of a data_dir image, under its own class."""
    test_dir = tmp_path / "test_images"
    for class_folder in sorted(image_folder.iterdir()):
        (test_dir / class_folder.name).mkdir(parents=True)
    shutil.copy(image_folder / "class_1" / "img_005.png", test_dir / "class_1" / "copy.png")
    shutil.copy(image_folder / "class_2" / "img_000.png", test_dir / "class_2" / "other.png")
    (image_folder / "class_2" / "img_000.png").unlink()
    return test_dir


def _datamodule(image_folder: Path, test_dir: Path, run_dir: Path, check: str) -> ImageFolderDataModule:
    return ImageFolderDataModule(str(image_folder), test_dir=str(test_dir), image_size=32, num_workers=0,
                                 manifest_dir=str(run_dir), leakage_check=check)


def test_leakage_check_fail_names_pair(image_folder: Path, tmp_path: Path) -> None:
    test_dir = _leaky_test_folder(image_folder, tmp_path)
    datamodule = _datamodule(image_folder, test_dir, tmp_path / "run", "fail")
    with pytest.raises(DataError, match=r"Leakage check found 1 exact or near-duplicate image pair") as caught:
        datamodule.prepare_data()
    assert "copy.png" in str(caught.value)
    assert (tmp_path / "run" / "audit" / "audit.json").is_file()


def test_leakage_check_warn_trains_anyway(image_folder: Path, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    test_dir = _leaky_test_folder(image_folder, tmp_path)
    with caplog.at_level(logging.WARNING):
        _datamodule(image_folder, test_dir, tmp_path / "run", "warn").prepare_data()
    assert "Leakage check found 1" in caplog.text
    assert (tmp_path / "run" / "manifest.csv").is_file()


def test_leakage_check_off_writes_no_audit(image_folder: Path, tmp_path: Path) -> None:
    test_dir = _leaky_test_folder(image_folder, tmp_path)
    _datamodule(image_folder, test_dir, tmp_path / "run", "off").prepare_data()
    assert not (tmp_path / "run" / "audit").exists()


def test_near_duplicates_stay_in_one_split(image_folder: Path, tmp_path: Path) -> None:
    for index in range(5):
        shutil.copy(image_folder / "class_0" / f"img_{index:03d}.png", image_folder / "class_0" / f"dup_{index}.png")
    datamodule = ImageFolderDataModule(str(image_folder), image_size=32, num_workers=0,
                                       manifest_dir=str(tmp_path / "run"), leakage_check="fail")
    datamodule.prepare_data()
    split_of = {row.path: row.split for row in datamodule.manifest.rows}
    for index in range(5):
        assert split_of[f"class_0/dup_{index}.png"] == split_of[f"class_0/img_{index:03d}.png"]
