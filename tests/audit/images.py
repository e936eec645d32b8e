"""Small generated images for the audit tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def smooth_image(seed: int, size: int = 52) -> np.ndarray:
    """Return a smooth random RGB image, so that distinct seeds give clearly different pictures."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    return np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC))


def write_image(path: Path, pixels: np.ndarray, **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)
    return path
