"""A map-style dataset over image files, with an optional shared in-memory cache of decoded images."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info
from torch.utils.data._utils.collate import default_collate

from heldout.data.decode import ImageDecodeError, decode_image
from heldout.data.transforms import resize_image

log = logging.getLogger(__name__)

BadFilePolicy = Literal["skip", "fail"]
# How many following files a training item tries in place of an unreadable one before it is dropped.
MAX_SUBSTITUTE_TRIES = 16


class DecodedImageCache:
    """Decoded, resized uint8 images in one shared-memory tensor, filled on first read.

    The tensor lives in shared memory, so DataLoader worker processes read and fill the same copy: an
    image decoded by one worker in the first epoch is served from memory to every worker afterwards.
    """

    def __init__(self, num_images: int, image_size: int) -> None:
        self.images = torch.zeros((num_images, image_size, image_size, 3), dtype=torch.uint8).share_memory_()
        self.filled = torch.zeros(num_images, dtype=torch.bool).share_memory_()

    @staticmethod
    def nbytes(num_images: int, image_size: int) -> int:
        return num_images * image_size * image_size * 3

    def get(self, index: int) -> np.ndarray | None:
        if not bool(self.filled[index]):
            return None
        # A copy, because some Albumentations transforms write into their input.
        return self.images[index].numpy().copy()

    def put(self, index: int, image: np.ndarray) -> None:
        self.images[index].numpy()[...] = image
        self.filled[index] = True


class ImageFileDataset(Dataset):
    """Images read from files, resized to a square, passed through an Albumentations pipeline.

    Each item is ``(image, target, index)``, where ``index`` is the position in ``paths`` so predictions can
    be traced back to files. Under the ``fail`` policy an unreadable file raises. Under ``skip`` it is marked
    in :attr:`unreadable`, a flag per file in shared memory that every worker process writes to, and then:

    - with ``substitute_unreadable`` (the training split), the item is the next readable file after it, with
      that file's own target, so every batch keeps its size and distributed processes stay in step;
    - otherwise the item is ``None``, which :func:`collate_skipping_none` drops from the batch, so no
      evaluation image is counted in place of another.
    """

    def __init__(self, paths: Sequence[Path], targets: Sequence[int], transform: A.Compose, image_size: int,
                 *, on_bad_file: BadFilePolicy = "skip", cache: DecodedImageCache | None = None,
                 seed: int = 0, substitute_unreadable: bool = False) -> None:
        if len(paths) != len(targets):
            raise ValueError(f"Expected as many targets as paths, but got {len(targets)} and {len(paths)}.")
        self.paths = [Path(p) for p in paths]
        self.targets = [int(t) for t in targets]
        self.transform = transform
        self.image_size = image_size
        self.on_bad_file = on_bad_file
        self.cache = cache
        self.seed = seed
        self.substitute_unreadable = substitute_unreadable
        self.unreadable = torch.zeros(len(self.paths), dtype=torch.bool).share_memory_()
        # The training epoch, in shared memory so that persistent DataLoader workers see each change.
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._seeded_for: tuple[int, int] | None = None  # (process id, epoch) of the last reseed

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch from which the augmentation seeds of all processes are derived."""
        self._epoch[0] = epoch

    def _seed_transform_once(self) -> None:
        """Seed the augmentation of this process from the dataset seed, the epoch and the worker id.

        Albumentations 2.0 keeps its own generator, and copies of one seeded Compose in several workers
        would otherwise draw the same augmentations. The seed depends on nothing else, so a run resumed
        from a checkpoint at an epoch boundary draws the same augmentations as an uninterrupted run.
        """
        epoch = int(self._epoch[0])
        if self._seeded_for == (os.getpid(), epoch):
            return
        worker = get_worker_info()
        worker_id = -1 if worker is None else worker.id
        if worker is not None:
            # OpenCV starts a thread per core in every worker, which oversubscribes the cores.
            cv2.setNumThreads(1)
        seed = np.random.SeedSequence([self.seed, epoch, worker_id + 1]).generate_state(1)[0]
        self.transform.set_random_seed(int(seed))
        self._seeded_for = (os.getpid(), epoch)

    def load_image(self, index: int) -> np.ndarray:
        """Return the resized uint8 RGB image at ``index``, from the cache when it is there."""
        if self.cache is not None:
            cached = self.cache.get(index)
            if cached is not None:
                return cached
        image = resize_image(decode_image(self.paths[index], draft_size=self.image_size), self.image_size)
        if self.cache is not None:
            self.cache.put(index, image)
        return image

    def _load_or_mark(self, index: int) -> np.ndarray | None:
        """Return the image at ``index``, or mark the file unreadable and return None (``skip`` policy)."""
        try:
            return self.load_image(index)
        except ImageDecodeError as error:
            if self.on_bad_file == "fail":
                raise
            self.unreadable[index] = True
            log.warning("Skipped unreadable image during loading (on_bad_file=skip): %s", error)
            return None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int] | None:
        self._seed_transform_once()
        image = self._load_or_mark(index)
        if image is None and self.substitute_unreadable:
            start = index
            for offset in range(1, min(len(self), MAX_SUBSTITUTE_TRIES + 1)):
                index = (start + offset) % len(self)
                if not bool(self.unreadable[index]):
                    image = self._load_or_mark(index)
                    if image is not None:
                        break
        if image is None:
            return None
        tensor = self.transform(image=image)["image"]
        return tensor, self.targets[index], index


def collate_skipping_none(batch: list[Any]) -> Any:
    """Collate a batch after dropping the items of skipped files; an all-skipped batch becomes ``None``."""
    kept = [item for item in batch if item is not None]
    if not kept:
        return None
    return default_collate(kept)
