"""Fixtures shared by the data, model and command-line tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
