"""The shared decoded-image cache: filled by DataLoader workers, and skipped with one log line when too big."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from heldout.data.datamodule import ImageFolderDataModule
from heldout.data.dataset import DecodedImageCache, ImageFileDataset
from heldout.data.decode import decode_image
from heldout.data.transforms import build_eval_transform, resize_image

IMAGE_SIZE = 32


def _write_images(folder: Path, count: int = 24) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        class_folder = folder / f"class{index % 3}"
        class_folder.mkdir(parents=True, exist_ok=True)
        height, width = (37, 29) if index == 0 else (40, 40)
        path = class_folder / f"{index:02d}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_cache_shared_with_workers(tmp_path: Path) -> None:
    paths = _write_images(tmp_path)
    cache = DecodedImageCache(len(paths), IMAGE_SIZE)
    dataset = ImageFileDataset(paths, [0] * len(paths), build_eval_transform((0.5,) * 3, (0.5,) * 3),
                               IMAGE_SIZE, cache=cache)

    for _ in DataLoader(dataset, batch_size=5, num_workers=2):
        pass

    # Only the two worker processes decoded images, so every filled slot was written through shared memory.
    assert cache.images.is_shared()
    assert bool(cache.filled.all())
    for index in (0, len(paths) - 1):
        expected = resize_image(decode_image(paths[index], draft_size=IMAGE_SIZE), IMAGE_SIZE)
        np.testing.assert_array_equal(cache.get(index), expected)


def test_cache_over_budget_logs_one_line_per_split(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write_images(tmp_path / "images")
    datamodule = ImageFolderDataModule(str(tmp_path / "images"), image_size=IMAGE_SIZE, batch_size=4,
                                       num_workers=0, val_fraction=0.25, test_fraction=0.25,
                                       cache_memory_gb=1e-6, manifest_dir=str(tmp_path / "run"))

    with caplog.at_level(logging.INFO, logger="heldout.data.datamodule"):
        datamodule.setup("fit")

    messages = [record.getMessage() for record in caplog.records if "cache_memory_gb" in record.getMessage()]
    assert len(messages) == 2
    assert "The train split needs" in messages[0]
    assert "The val split needs" in messages[1]
    assert datamodule.datasets["train"].cache is None
    images, targets, indices = next(iter(datamodule.train_dataloader()))
    assert images.shape == (4, 3, IMAGE_SIZE, IMAGE_SIZE)


def test_cache_within_budget_logs_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write_images(tmp_path / "images")
    datamodule = ImageFolderDataModule(str(tmp_path / "images"), image_size=IMAGE_SIZE, batch_size=4,
                                       num_workers=0, val_fraction=0.25, test_fraction=0.25,
                                       cache_memory_gb=0.01, manifest_dir=str(tmp_path / "run"))

    with caplog.at_level(logging.INFO, logger="heldout.data.datamodule"):
        datamodule.setup("fit")

    assert not [record for record in caplog.records if "cache_memory_gb" in record.getMessage()]
    assert datamodule.datasets["train"].cache is not None


def test_rebuilt_split_keeps_cache_budget(tmp_path: Path) -> None:
    _write_images(tmp_path / "images")
    # Room for the 12 training and 6 validation images, not for the test split too.
    budget = DecodedImageCache.nbytes(18, IMAGE_SIZE) / 2**30
    datamodule = ImageFolderDataModule(str(tmp_path / "images"), image_size=IMAGE_SIZE, batch_size=4,
                                       num_workers=0, val_fraction=0.25, test_fraction=0.25,
                                       cache_memory_gb=budget, manifest_dir=str(tmp_path / "run"))
    datamodule.setup("fit")
    assert datamodule.datasets["val"].cache is not None
    dropped = datamodule.manifest.rows_for("val")[0]
    datamodule.manifest.rows.remove(dropped)

    datamodule.setup("validate")

    rebuilt = datamodule.datasets["val"]
    assert len(rebuilt) == 5
    assert rebuilt.cache is not None
    assert f"{dropped.source}:{dropped.path}" not in datamodule.split_paths("val")
    assert [str(path) for path in rebuilt.paths] == [
        str(datamodule.manifest.absolute_path(row)) for row in datamodule.manifest.rows_for("val")]
