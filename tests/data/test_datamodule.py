import logging
from collections import Counter
from pathlib import Path

import pytest
import torch

from heldout.data.datamodule import ImageFolderDataModule
from heldout.data.manifest import read_manifest
from heldout.errors import ConfigError


def _datamodule(folder: Path, run_dir: Path, **options: object) -> ImageFolderDataModule:
    settings = {"image_size": 32, "batch_size": 8, "num_workers": 0, "manifest_dir": str(run_dir),
                "leakage_check": "off", **options}
    return ImageFolderDataModule(str(folder), **settings)


def test_datamodule_writes_manifest_with_every_file(image_folder: Path, tmp_path: Path) -> None:
    datamodule = _datamodule(image_folder, tmp_path / "run")
    datamodule.prepare_data()
    manifest = read_manifest(tmp_path / "run")
    assert len(manifest.rows) == 60
    assert Counter(row.split for row in manifest.rows) == {"train": 42, "val": 9, "test": 9}
    assert {row.path for row in manifest.rows} == {p.relative_to(image_folder).as_posix()
                                                    for p in image_folder.rglob("*.png")}
    for row in manifest.rows:
        assert row.path.startswith(row.label + "/")


def test_datamodule_reuses_manifest_across_seeds(image_folder: Path, tmp_path: Path) -> None:
    first = _datamodule(image_folder, tmp_path / "run", seed=1)
    first.prepare_data()
    second = _datamodule(image_folder, tmp_path / "run", seed=2)
    second.prepare_data()
    assert [r.split for r in first.manifest.rows] == [r.split for r in second.manifest.rows]
    fresh = _datamodule(image_folder, tmp_path / "other", seed=2)
    fresh.prepare_data()
    assert [r.split for r in fresh.manifest.rows] != [r.split for r in first.manifest.rows]


def test_datamodule_reports_changed_folder(image_folder: Path, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    _datamodule(image_folder, tmp_path / "run").prepare_data()
    removed = sorted(image_folder.rglob("*.png"))[5]
    removed.unlink()
    (image_folder / "class_0" / "new.png").write_bytes((image_folder / "class_1" / "img_001.png").read_bytes())
    with caplog.at_level(logging.WARNING):
        datamodule = _datamodule(image_folder, tmp_path / "run")
        datamodule.prepare_data()
    assert "changed since the split" in caplog.text
    assert "1 added" in caplog.text
    assert "1 removed" in caplog.text
    paths = {row.path for row in datamodule.manifest.rows}
    assert removed.relative_to(image_folder).as_posix() not in paths
    assert "class_0/new.png" not in paths


def test_datamodule_augments_training_only(image_folder: Path, tmp_path: Path) -> None:
    datamodule = _datamodule(image_folder, tmp_path / "run", augment=[{"name": "HorizontalFlip", "p": 1.0}])
    datamodule.setup("fit")
    train, val = datamodule.datasets["train"], datamodule.datasets["val"]
    assert torch.equal(val[0][0], val[0][0])
    raw = train.load_image(0)
    flipped = train[0][0]
    evaluated = datamodule.eval_transform(image=raw)["image"]
    assert torch.allclose(flipped, evaluated.flip(-1))
    assert not torch.allclose(flipped, evaluated)


def test_datamodule_batches_have_expected_shape(image_folder: Path, tmp_path: Path) -> None:
    datamodule = _datamodule(image_folder, tmp_path / "run", augment=[])
    datamodule.setup("fit")
    images, targets, indices = next(iter(datamodule.train_dataloader()))
    assert images.shape == (8, 3, 32, 32)
    assert images.dtype == torch.float32
    assert targets.dtype == torch.int64
    assert indices.max() < len(datamodule.datasets["train"])


def test_datamodule_drops_last_batch_of_one(make_image_folder, tmp_path: Path) -> None:
    folder = make_image_folder(classes=3, per_class=21)  # 63 images -> 45 train -> 45 % 4 == 1
    datamodule = _datamodule(folder, tmp_path / "run", batch_size=4)
    datamodule.setup("fit")
    assert len(datamodule.datasets["train"]) % 4 == 1
    sizes = [len(batch[0]) for batch in datamodule.train_dataloader()]
    assert min(sizes) > 1


def test_datamodule_cache_serves_decoded_images(image_folder: Path, tmp_path: Path) -> None:
    datamodule = _datamodule(image_folder, tmp_path / "run", augment=[])
    datamodule.setup("fit")
    dataset = datamodule.datasets["train"]
    first = dataset[3][0]
    assert bool(dataset.cache.filled[3])
    dataset.paths[3] = tmp_path / "gone.png"  # a cached image no longer needs its file
    assert torch.equal(dataset[3][0], first)


def test_datamodule_without_cache_over_budget(image_folder: Path, tmp_path: Path) -> None:
    datamodule = _datamodule(image_folder, tmp_path / "run", cache_memory_gb=0)
    datamodule.setup("fit")
    assert datamodule.datasets["train"].cache is None


def test_datamodule_warns_reused_split_settings(image_folder: Path, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    _datamodule(image_folder, tmp_path / "run").prepare_data()
    again = _datamodule(image_folder, tmp_path / "run", val_fraction=0.3, seed=7)

    with caplog.at_level(logging.WARNING, logger="heldout.data.prepare"):
        again.prepare_data()

    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "data.seed is 7 but the split was drawn with 42" in warnings[0]
    assert "data.val_fraction is 0.3 but the split was drawn with 0.15" in warnings[0]
    assert "delete manifest.csv and manifest.json" in warnings[0]
    assert Counter(row.split for row in again.manifest.rows)["val"] == 9


def test_datamodule_empty_split_names_manifest(image_folder: Path, tmp_path: Path) -> None:
    datamodule = _datamodule(image_folder, tmp_path / "run", group_regex=r"(?P<group>img)")
    with pytest.warns(UserWarning, match="Groups are too large"):
        datamodule.prepare_data()

    with pytest.raises(ConfigError, match="The val split is empty") as caught:
        datamodule.setup("fit")

    assert f"The split comes from {tmp_path / 'run' / 'manifest.csv'}, which later runs reuse" in str(caught.value)


def test_datamodule_training_needs_two_images_per_batch(image_folder: Path, tmp_path: Path) -> None:
    datamodule = _datamodule(image_folder, tmp_path / "run", batch_size=1)
    datamodule.setup("fit")

    with pytest.raises(ConfigError, match="Expected data.batch_size to be at least 2 for training, but got 1"):
        datamodule.train_dataloader()
    assert len(next(iter(datamodule.val_dataloader()))[0]) == 1
