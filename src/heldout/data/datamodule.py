"""The LightningDataModule over an image folder laid out as ``root/<class>/<image>``."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader

from heldout.data.dataset import DecodedImageCache, ImageFileDataset, collate_skipping_none
from heldout.data.manifest import (
    MANIFEST_FILE,
    MANIFEST_META_FILE,
    Manifest,
    ManifestRow,
    read_manifest,
    write_skipped,
)
from heldout.data.preflight import find_bad_images
from heldout.data.prepare import (
    DATA_DIR,
    TEST_DIR,
    VAL_DIR,
    GroupFunction,
    load_or_create_manifest,
    scan_sources,
)
from heldout.data.sampler import EpochShuffleSampler
from heldout.data.scan import list_images
from heldout.data.split import TEST, TRAIN, VAL, validate_fractions
from heldout.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_eval_transform,
    build_train_transform,
    check_augmentation,
)
from heldout.errors import ConfigError

log = logging.getLogger(__name__)

# The dataset of data.predict_dir, and the source name its paths carry in prediction files.
PREDICT, PREDICT_DIR = "predict", "predict_dir"


class ImageFolderDataModule(L.LightningDataModule):
    """Stratified, reproducible train/val/test splits of an image folder, with augmentation on train only.

    The split is drawn once, after a pre-flight check that reads every image, and written as
    ``manifest.csv`` into the run folder (``manifest_dir``, or the Trainer's ``default_root_dir``). Later
    ``fit``, ``validate`` and ``test`` runs on that folder reuse it, so the split never changes silently.

    Args:
        data_dir: folder with one subfolder of images per class.
        val_dir: optional folder of validation images with the same class subfolders; when given, no
            validation split is drawn from ``data_dir``.
        test_dir: optional folder of test images, used the same way as ``val_dir``.
        image_size: side of the square images fed to the model, in pixels.
        batch_size: images per batch and per process.
        num_workers: DataLoader worker processes per DataLoader.
        val_fraction: share of ``data_dir`` that goes to validation.
        test_fraction: share of ``data_dir`` that goes to test.
        seed: seed of the split and of the augmentation.
        augment: training augmentation as a list of Albumentations transforms, each a mapping with a
            ``name`` and its arguments. ``None`` uses flip, rotation, scale and contrast jitter; ``[]``
            turns augmentation off.
        mean: per-channel normalization mean, for pixel values scaled to 0..1.
        std: per-channel normalization standard deviation.
        on_bad_file: ``skip`` leaves unreadable images out and lists them in ``skipped.csv``; ``fail`` stops
            before training with the full list.
        cache_memory_gb: memory budget for keeping decoded, resized images in RAM, in GiB; 0 reads every
            image from disk each epoch.
        manifest_dir: folder for the split manifest; ``None`` uses the Trainer's ``default_root_dir``, or
            keeps the split in memory without a Trainer.
        pin_memory: pin batches for faster host-to-GPU copies; ``None`` pins when a GPU is used.
        near_duplicate_threshold: images whose 64-bit perceptual hashes differ in at most this many bits
            are kept in one split; ``None`` turns near-duplicate grouping off.
        group_regex: regular expression with a ``(?P<group>...)`` capture, searched in each relative path;
            images with the same captured text are kept in one split (for example one patient or video).
        group_csv: CSV file with a ``path`` column (relative to ``data_dir``) and ``group_column``, used
            like ``group_regex``.
        group_column: the group column of ``group_csv``.
        leakage_check: after drawing the split, look for duplicate images across splits and ``warn``,
            ``fail`` before training, or ``off``. Findings go to ``audit/`` in the run folder.
        predict_dir: folder of images to predict, at any depth and without classes. ``heldout predict``
            uses it, or the test split when it is not given.

    Example::

        dm = ImageFolderDataModule("photos", image_size=128, batch_size=32)
        dm.prepare_data()
        dm.setup("fit")
        images, targets, indices = next(iter(dm.train_dataloader()))
    """

    def __init__(self, data_dir: str, val_dir: str | None = None, test_dir: str | None = None,
                 image_size: int = 224, batch_size: int = 64, num_workers: int = 2, val_fraction: float = 0.15,
                 test_fraction: float = 0.15, seed: int = 42, augment: list[dict[str, Any]] | None = None,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 on_bad_file: Literal["skip", "fail"] = "skip", cache_memory_gb: float = 2.0,
                 manifest_dir: str | None = None, pin_memory: bool | None = None,
                 near_duplicate_threshold: int | None = 4, group_regex: str | None = None,
                 group_csv: str | None = None, group_column: str = "group",
                 leakage_check: Literal["warn", "fail", "off"] = "warn",
                 predict_dir: str | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.prepare_data_per_node = False  # One process draws and writes the split, the others read it.
        self._validate_arguments()
        self.data_dir, self.val_dir, self.test_dir = data_dir, val_dir, test_dir
        self.predict_dir = predict_dir
        self.image_size, self.batch_size, self.num_workers = image_size, batch_size, num_workers
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.mean, self.std = tuple(mean), tuple(std)
        self.on_bad_file, self.cache_memory_gb = on_bad_file, cache_memory_gb
        self.manifest_dir, self.pin_memory = manifest_dir, pin_memory
        self.leakage_check, self.near_duplicate_threshold = leakage_check, near_duplicate_threshold
        self.group_samples = self._make_group_function(near_duplicate_threshold, group_regex, group_csv, group_column)
        # Built here so that a bad augmentation config fails before any data is read.
        self.train_transform = build_train_transform(augment, self.mean, self.std, seed=seed)
        check_augmentation(augment, image_size)
        self.eval_transform = build_eval_transform(self.mean, self.std)
        self.manifest: Manifest | None = None
        self.datasets: dict[str, ImageFileDataset] = {}
        self._dataset_rows: dict[str, list[ManifestRow]] = {}  # the manifest rows each dataset was built from
        self._cache_bytes: dict[str, int] = {}  # bytes of decoded-image cache held by each split
        self._predict_paths: list[str] = []
        self._class_names: list[str] | None = None

    def _validate_arguments(self) -> None:
        hp = self.hparams
        positive = {"data.image_size": hp.image_size, "data.batch_size": hp.batch_size}
        for key, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"Expected {key} to be a positive integer, but got {value!r}.")
        if hp.image_size < 32:
            raise ConfigError(f"Expected data.image_size to be at least 32 pixels, but got {hp.image_size}: "
                              "MobileNetV3 downsamples by 32, so its last feature map would be under one pixel. "
                              "Use --data.image_size 32 or more.")
        if hp.num_workers < 0:
            raise ConfigError(f"Expected data.num_workers to be 0 or more, but got {hp.num_workers}.")
        cores = os.cpu_count() or 1
        if hp.num_workers > cores:
            rank_zero_warn(f"data.num_workers={hp.num_workers} is above the {cores} CPU cores of this machine; "
                           f"the workers will compete for cores. Use --data.num_workers {cores} or fewer.")
        if hp.cache_memory_gb < 0:
            raise ConfigError(f"Expected data.cache_memory_gb to be 0 or more, but got {hp.cache_memory_gb}.")
        if len(hp.mean) != 3 or len(hp.std) != 3 or min(hp.std) <= 0:
            raise ConfigError(f"Expected data.mean and data.std to hold 3 values each with std > 0, but got "
                              f"mean={list(hp.mean)}, std={list(hp.std)}.")
        validate_fractions(hp.val_fraction, hp.test_fraction, split_val=hp.val_dir is None,
                           split_test=hp.test_dir is None)

    @staticmethod
    def _make_group_function(threshold: int | None, regex: str | None, csv: str | None,
                             column: str) -> GroupFunction | None:
        if threshold is None and regex is None and csv is None:
            return None
        from heldout.audit import make_group_function
        from heldout.audit.groups import DATA_KEYS

        return make_group_function(threshold=threshold, group_regex=regex, group_csv=csv, group_column=column,
                                   names=DATA_KEYS)

    # Folders and classes -------------------------------------------------------------------------------

    @property
    def roots(self) -> dict[str, str | None]:
        return {DATA_DIR: self.data_dir, VAL_DIR: self.val_dir, TEST_DIR: self.test_dir}

    def run_folder(self) -> Path | None:
        if self.manifest_dir is not None:
            return Path(self.manifest_dir)
        if self.trainer is not None:
            return Path(self.trainer.default_root_dir)
        return None

    @property
    def class_names(self) -> list[str]:
        """Class names in index order: from the run folder's manifest when there is one, else from a scan."""
        if self.manifest is not None:
            return list(self.manifest.classes)
        if self._class_names is None:
            folder = self.run_folder()
            if folder is not None and (folder / MANIFEST_META_FILE).is_file():
                self._class_names = list(read_manifest(folder).classes)
            else:
                self._class_names = list(scan_sources(self.roots)[DATA_DIR].classes)
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    # Lightning hooks -----------------------------------------------------------------------------------

    def prepare_data(self) -> None:
        self.manifest = load_or_create_manifest(self.roots, self.run_folder(), val_fraction=self.val_fraction,
                                                test_fraction=self.test_fraction, seed=self.seed,
                                                on_bad_file=self.on_bad_file, group_samples=self.group_samples,
                                                leakage_check=self.leakage_check,
                                                duplicate_threshold=4 if self.near_duplicate_threshold is None
                                                else self.near_duplicate_threshold)

    def setup(self, stage: str | None = None) -> None:
        folder = self.run_folder()
        if self.manifest is None:
            if folder is not None and (folder / MANIFEST_META_FILE).is_file():
                self.manifest = read_manifest(folder)
            else:
                self.prepare_data()
        if self._distributed():
            # Global rank 0 drew or checked the split in prepare_data. The other processes take its copy, so a
            # file removed since the split was written is left out on every process alike.
            self.manifest = self.trainer.strategy.broadcast(self.manifest, src=0)
        assert self.manifest is not None
        self._class_names = list(self.manifest.classes)
        for split in self._splits_for(stage):
            if split == PREDICT:
                if split not in self.datasets:
                    self.datasets[split] = self._build_predict_dataset()
            # Validate or test after fit reads the manifest again without the files found unreadable since.
            # The dataset is then built anew, so that its indices and the split's paths agree.
            elif self._dataset_rows.get(split) != self.manifest.rows_for(split):
                self.datasets[split] = self._build_dataset(split)

    def _splits_for(self, stage: str | None) -> tuple[str, ...]:
        predict = PREDICT if self.predict_dir is not None else TEST
        return {"fit": (TRAIN, VAL), "validate": (VAL,), "test": (TEST,), "predict": (predict,)}.get(
            stage or "", (TRAIN, VAL, TEST))

    def _build_predict_dataset(self) -> ImageFileDataset:
        """Return the images of ``predict_dir``, with target -1 because they have no class."""
        assert self.predict_dir is not None
        root, images = list_images(self.predict_dir, "data.predict_dir")
        self._predict_paths = [f"{PREDICT_DIR}:{path}" for path in images]
        log.info("Predicting %d image(s) from %s", len(images), root)
        return ImageFileDataset([root / path for path in images], [-1] * len(images), self.eval_transform,
                                self.image_size, on_bad_file=self.on_bad_file, seed=self.seed)

    def _build_dataset(self, split: str) -> ImageFileDataset:
        manifest = self.manifest
        assert manifest is not None
        index = {name: position for position, name in enumerate(manifest.classes)}
        rows = manifest.rows_for(split)
        self._dataset_rows[split] = rows
        if not rows:
            folder = self.run_folder()
            reused = "" if folder is None else (
                f" The split comes from {folder / MANIFEST_FILE}, which later runs reuse as it is: delete "
                f"{MANIFEST_FILE} and {MANIFEST_META_FILE} there, or use another --trainer.default_root_dir.")
            raise ConfigError(f"The {split} split is empty. Give images for it (data.{split}_dir or "
                              f"data.{split}_fraction) before running the {split} stage.{reused}")
        paths = [manifest.absolute_path(row) for row in rows]
        targets = [index[row.label] for row in rows]
        transform = self.train_transform if split == TRAIN else self.eval_transform
        return ImageFileDataset(paths, targets, transform, self.image_size, on_bad_file=self.on_bad_file,
                                cache=self._make_cache(split, len(paths)), seed=self.seed,
                                substitute_unreadable=split == TRAIN)

    def _make_cache(self, split: str, num_images: int) -> DecodedImageCache | None:
        needed = DecodedImageCache.nbytes(num_images, self.image_size)
        # The splits share the budget: what the other splits' caches hold is taken off it.
        self._cache_bytes.pop(split, None)
        budget = int(self.cache_memory_gb * 2**30) - sum(self._cache_bytes.values())
        if needed > budget:
            if self.cache_memory_gb > 0:
                log.info("The %s split needs %.2f GiB for decoded images, above what is left of "
                         "data.cache_memory_gb=%g; it is read from disk every epoch.", split, needed / 2**30,
                         self.cache_memory_gb)
            return None
        self._cache_bytes[split] = needed
        return DecodedImageCache(num_images, self.image_size)

    def record_unreadable(self, split: str, indices: Sequence[int]) -> int:
        """Add the files at ``indices`` of ``split`` that became unreadable while loading to ``skipped.csv``.

        Files already listed are left alone. Returns the number of files added.
        """
        assert self.manifest is not None
        if split not in self._dataset_rows:
            return 0  # images to predict are not in the manifest, so the prediction file lists them instead
        rows = self._dataset_rows[split]
        listed = {(source, path) for source, path, _ in self.manifest.skipped}
        found = [rows[index] for index in indices if (rows[index].source, rows[index].path) not in listed]
        if not found:
            return 0
        # Decoded again for the reason, which the worker process that met the file could not pass on.
        reasons = find_bad_images([self.manifest.absolute_path(row) for row in found])
        entries = [(row.source, row.path, f"unreadable while loading the {split} split: " + reasons.get(
            self.manifest.absolute_path(row), "failed once, readable again later")) for row in found]
        self.manifest.skipped = [*self.manifest.skipped, *entries]
        folder = self.run_folder()
        where = "the log"
        if folder is not None:
            where = str(write_skipped(self.manifest, folder))
        log.warning("%d file(s) of the %s split were unreadable while loading and were left out; listed in %s.",
                    len(entries), split, where)
        return len(entries)

    def has_split(self, split: str) -> bool:
        """Return whether ``split`` contains any image (for example, no test split without a test fraction)."""
        return self.manifest is not None and bool(self.manifest.rows_for(split))

    def split_paths(self, split: str) -> list[str]:
        """Return each sample's path in ``split`` as the manifest records it (``source:relative/path``).

        The order is that of the split's dataset, so a dataset index gives its file.
        """
        if split == PREDICT:
            return list(self._predict_paths)
        assert self.manifest is not None
        rows = self._dataset_rows.get(split, self.manifest.rows_for(split))
        return [f"{row.source}:{row.path}" for row in rows]

    # DataLoaders ---------------------------------------------------------------------------------------

    def _loader_arguments(self) -> dict[str, Any]:
        pin = self.pin_memory
        if pin is None:
            pin = self.trainer is not None and self.trainer.accelerator.__class__.__name__ == "CUDAAccelerator"
        return {"batch_size": self.batch_size, "num_workers": self.num_workers, "pin_memory": pin,
                "persistent_workers": self.num_workers > 0, "collate_fn": collate_skipping_none}

    def _distributed(self) -> bool:
        return self.trainer is not None and self.trainer.world_size > 1

    def train_dataloader(self) -> DataLoader:
        if self.batch_size < 2:
            raise ConfigError(f"Expected data.batch_size to be at least 2 for training, but got {self.batch_size}: "
                              "BatchNorm needs two images per batch in training mode. Use --data.batch_size 2 "
                              "or more (1 is fine for validate, test and predict).")
        dataset = self.datasets[TRAIN]
        # The sampler pads the dataset to a multiple of the world size by repeating samples, so every process
        # gets ceil(len / world_size) of them.
        world_size = self.trainer.world_size if self._distributed() else 1
        per_process = -(-len(dataset) // world_size)
        # A last batch of one image breaks BatchNorm in training mode, so such a batch is dropped.
        drop_last = per_process % self.batch_size == 1
        rank = self.trainer.global_rank if self._distributed() else 0
        sampler = EpochShuffleSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=self.seed)
        return DataLoader(dataset, sampler=sampler, drop_last=drop_last, **self._loader_arguments())

    def _eval_loader(self, split: str) -> DataLoader:
        dataset = self.datasets[split]
        sampler = None
        if self._distributed():
            # Lightning's default DistributedSampler pads the last batch with repeated samples, so the metrics
            # would count them twice. This sampler gives every sample to exactly one process.
            sampler = UnrepeatedDistributedSampler(dataset, num_replicas=self.trainer.world_size,
                                                   rank=self.trainer.global_rank, shuffle=False)
        return DataLoader(dataset, shuffle=False, sampler=sampler, **self._loader_arguments())

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(VAL)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(TEST)

    def predict_split(self) -> str:
        """Return the dataset that ``predict`` runs on: ``predict`` for ``predict_dir``, else ``test``."""
        return self._splits_for("predict")[0]

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader(self.predict_split())

    def state_dict(self) -> dict[str, Any]:
        return {"class_names": self.class_names}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self._class_names = list(state_dict.get("class_names", self._class_names or []))
