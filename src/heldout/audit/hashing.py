"""Exact-duplicate digests and DCT perceptual hashes (pHash) of decoded images."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.fft import dctn
from tqdm.auto import tqdm

from heldout.data.decode import ImageDecodeError, decode_image

log = logging.getLogger(__name__)

# pHash resizes to 32x32 and keeps the 8x8 lowest DCT frequencies, as in C. Zauner (2010),
# "Implementation and Benchmarking of Perceptual Image Hash Functions".
_RESIZE = 32
_LOW_FREQUENCIES = 8
# ITU-R BT.601 luma weights, the ones Pillow uses for RGB -> "L".
_LUMA = np.array([0.299, 0.587, 0.114])

# Default maximum Hamming distance between near-duplicate hashes. Chosen on benchmarks/planted_duplicates.py
# (5,000 MNIST digits): at 4 bits about 98% of shifted, re-brightened and JPEG re-saved copies are found,
# and the largest chain of distinct digits joined by false pairs holds under 10% of the images. At 6 bits
# false pairs chain about half of the digits into one cluster.
DEFAULT_THRESHOLD = 4

# Below this many images hashing takes well under a second, so no progress bar and no worker processes.
PROGRESS_BAR_MIN_FILES = 2000
_IN_PROCESS_MAX_FILES = 256
_CHUNK_SIZE = 256


def pixel_digest(pixels: np.ndarray) -> str:
    """Return a BLAKE2b digest of the decoded pixels and their shape.

    Two files get the same digest exactly when they decode to the same pixels, so a PNG and a BMP of one
    image count as identical while their file bytes differ.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.asarray(pixels.shape, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def _centred_thumbnail(gray: np.ndarray) -> np.ndarray:
    """Resize ``gray`` to 32x32, then shift it (bilinear, sub-pixel) so its intensity centroid is central.

    Resizing first lets Pillow's filter low-pass the image, so that sampling at a sub-pixel offset
    afterwards does not alias. The centroid is taken over ``values - values.min()``, so a uniform
    brightness change does not move it. Samples shifted in from outside take the median border value,
    an estimate of the background.
    """
    image = Image.fromarray(gray.astype(np.float32), mode="F").resize((_RESIZE, _RESIZE), Image.Resampling.BILINEAR)
    values = np.asarray(image, dtype=np.float64)
    weights = values - values.min()
    total = weights.sum()
    if total <= 0:
        return values
    positions = np.arange(_RESIZE) + 0.5
    offset_y = weights.sum(axis=1) @ positions / total - _RESIZE / 2
    offset_x = weights.sum(axis=0) @ positions / total - _RESIZE / 2
    border = np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])
    # The affine map takes each output pixel (x, y) to the input point (a x + b y + c, d x + e y + f).
    shifted = image.transform((_RESIZE, _RESIZE), Image.Transform.AFFINE, (1.0, 0.0, offset_x, 0.0, 1.0, offset_y),
                              resample=Image.Resampling.BILINEAR, fillcolor=float(np.median(border)))
    return np.asarray(shifted, dtype=np.float64)


def perceptual_hash(pixels: np.ndarray) -> int:
    """Return the 64-bit DCT perceptual hash (pHash) of an ``(H, W, 3)`` uint8 RGB image.

    The image is converted to grayscale and resampled to 32x32 centred on its intensity centroid, then
    transformed with a 2-D type-II DCT. Each of the 8x8 lowest frequencies (DC included) gives one bit,
    1 when the coefficient is above the median of those 64, so every hash has 32 bits set and distances
    are even. The first coefficient in row-major order is the highest bit.

    Centring differs from the plain pHash of Zauner (2010): it makes a shift by a few pixels change
    almost no bit, where the plain hash of a 28 px digit shifted by 2 px changes about 18 of 64 bits.
    A uniform brightness change moves only the DC coefficient, which stays the largest, so it changes
    no bit unless pixels clip at 0 or 255.

    NOTE: centring undoes shifts of an object on a plain background exactly. Shifting a full-frame picture
    (content leaving one edge) still moves its centroid by a different amount; for smooth 48 px pictures a
    crop shifted by 1 px changes about 6 bits and by 2 px about 12, beyond the default threshold.
    """
    gray = np.asarray(pixels, dtype=np.float64) @ _LUMA
    low = dctn(_centred_thumbnail(gray), type=2, norm="ortho")[:_LOW_FREQUENCIES, :_LOW_FREQUENCIES].ravel()
    ordered = np.sort(low)
    median = 0.5 * (ordered[31] + ordered[32])
    return int.from_bytes(np.packbits(low > median).tobytes(), "big")


@dataclass
class HashResult:
    """Hashes of a list of image files, in the order of the paths given.

    Attributes:
        digests: pixel digest per file, ``None`` for a file that failed to decode.
        phashes: 64-bit perceptual hash per file as uint64, 0 for a file that failed to decode.
        failed: index into the paths mapped to the decode error's reason.
    """

    digests: list[str | None]
    phashes: np.ndarray
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def readable(self) -> np.ndarray:
        """Indices of the files that decoded."""
        mask = np.ones(len(self.digests), dtype=bool)
        mask[list(self.failed)] = False
        return np.flatnonzero(mask)


def _hash_one(path: str) -> tuple[str, int] | str:
    """Return ``(digest, phash)``, or the decode error's reason."""
    try:
        pixels = decode_image(path)
    except ImageDecodeError as error:
        return error.reason
    return pixel_digest(pixels), perceptual_hash(pixels)


def _hash_chunk(paths: Sequence[str]) -> list[tuple[str, int] | str]:
    return [_hash_one(path) for path in paths]


def hash_images(paths: Sequence[str | os.PathLike[str]], *, num_workers: int | None = None,
                progress: bool = True) -> HashResult:
    """Decode each file and compute its pixel digest and perceptual hash.

    Work is spread over ``num_workers`` processes (default: the CPU count), because for small images the
    Python-level work per file dominates and threads would serialise on the GIL. Files that fail to decode
    are recorded in ``HashResult.failed`` and never raise.
    """
    names = [os.fspath(path) for path in paths]
    workers = num_workers if num_workers is not None else (os.cpu_count() or 1)
    chunks = [names[start:start + _CHUNK_SIZE] for start in range(0, len(names), _CHUNK_SIZE)]
    bar = tqdm(total=len(names), desc="Hashing images", unit="img",
               disable=not progress or len(names) < PROGRESS_BAR_MIN_FILES)
    results: list[tuple[str, int] | str] = []
    if workers <= 1 or len(names) <= _IN_PROCESS_MAX_FILES:
        for chunk in chunks:
            results.extend(_hash_chunk(chunk))
            bar.update(len(chunk))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for chunk_result in pool.map(_hash_chunk, chunks):
                results.extend(chunk_result)
                bar.update(len(chunk_result))
    bar.close()

    digests: list[str | None] = []
    phashes = np.zeros(len(names), dtype=np.uint64)
    failed: dict[int, str] = {}
    for index, result in enumerate(results):
        if isinstance(result, str):
            digests.append(None)
            failed[index] = result
            log.warning("Left out unreadable image %s: %s", Path(names[index]), result)
            continue
        digests.append(result[0])
        phashes[index] = np.uint64(result[1])
    return HashResult(digests, phashes, failed)
