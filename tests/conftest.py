"""Shared fixtures: tiny generated image folders and isolation of global state."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

CLASS_TINTS = ((200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (40, 200, 200))


def write_image_folder(root: Path, *, classes: int = 3, per_class: int = 20, size: int = 32,
                       seed: int = 0) -> Path:
    """Write ``classes`` folders of smooth random images, each class tinted by its own colour.

    Distinct smooth patterns keep perceptual hashes apart, so near-duplicate grouping leaves each image in
    its own group; the tint makes the classes learnable in a few steps. One image per class is 37x29 so a
    swapped height and width would show.
    """
    rng = np.random.default_rng(seed)
    for class_index in range(classes):
        folder = root / f"class_{class_index}"
        folder.mkdir(parents=True, exist_ok=True)
        tint = np.array(CLASS_TINTS[class_index % len(CLASS_TINTS)], dtype=np.float64)
        for image_index in range(per_class):
            coarse = Image.fromarray(rng.integers(0, 256, (5, 5), dtype=np.uint8))
            width, height = (37, 29) if image_index == 0 else (size, size)
            pattern = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float64)
            pixels = np.clip(0.5 * tint[None, None, :] + 0.5 * pattern[:, :, None], 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"img_{image_index:03d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three classes of 20 tiny PNG images each."""
    return write_image_folder(tmp_path / "images")


@pytest.fixture
def make_image_folder(tmp_path: Path) -> Callable[..., Path]:
    """Factory for image folders with other class counts, sizes or seeds."""
    counter = iter(range(1000))

    def make(**options: int) -> Path:
        return write_image_folder(tmp_path / f"images_{next(counter)}", **options)

    return make


@pytest.fixture(autouse=True)
def restore_random_state() -> Iterator[None]:
    """Restore the torch, numpy and random states after each test, so tests do not depend on order."""
    torch_state, numpy_state, python_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    yield
    torch.set_rng_state(torch_state)
    np.random.set_state(numpy_state)
    random.setstate(python_state)


DEFAULT_CLASS_COUNTS = {"cat": 6, "dog": 6, "eel": 6}


@pytest.fixture(scope="session")
def write_class_folders() -> Callable[..., Path]:
    """Return a function that writes ``root/<class>/<index>.png`` with small random RGB images.

    Each image is 12 px high and 10 px wide, and a class with ``n`` images gets ``0.png`` … ``<n-1>.png``.
    """

    def write(root: Path, counts: Mapping[str, int] = DEFAULT_CLASS_COUNTS, seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        for name, count in counts.items():
            folder = root / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{index}.png")
        return root

    return write
