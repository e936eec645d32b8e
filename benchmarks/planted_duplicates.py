"""Plant near-duplicates of MNIST digits in a folder and measure how many the audit finds.

Each of ``--sources`` digits gets one variant of each kind: shifted by 1-2 px, brightened or darkened by
up to 30 levels, and re-saved as JPEG at quality 70-95. Files get random names, so a name reveals no
source. Recall is the share of (source, variant) pairs found; false pairs join two distinct digits.

Run: python benchmarks/planted_duplicates.py [--threshold N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from heldout.audit.hashing import DEFAULT_THRESHOLD, hash_images
from heldout.audit.index import find_close_pairs
from heldout.data.demo import load_mnist_sample


def shifted(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dy, dx = 0, 0
    while dy == 0 and dx == 0:
        dy, dx = (int(value) for value in rng.integers(-2, 3, 2))
    out = np.zeros_like(image)
    height, width = image.shape
    source = image[max(0, -dy):height - max(0, dy), max(0, -dx):width - max(0, dx)]
    out[max(0, dy):max(0, dy) + source.shape[0], max(0, dx):max(0, dx) + source.shape[1]] = source
    return out


def rebrightened(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    change = 0
    while change == 0:
        change = int(rng.integers(-30, 31))
    return np.clip(image.astype(np.int64) + change, 0, 255).astype(np.uint8)


def build_folder(folder: Path, images: np.ndarray, sources: int, seed: int) -> tuple[list[Path], np.ndarray]:
    """Write all digits plus variants of the first ``sources``; return paths and each file's digit index."""
    rng = np.random.default_rng(seed)
    names = rng.permutation(len(images) + 3 * sources)
    paths: list[Path] = []
    origin: list[int] = []

    def save(pixels: np.ndarray, index: int, suffix: str, **options: object) -> None:
        path = folder / f"{names[len(paths)]:06d}{suffix}"
        Image.fromarray(pixels, mode="L").save(path, **options)
        paths.append(path)
        origin.append(index)

    for index, image in enumerate(images):
        save(image, index, ".png")
    for index in range(sources):
        save(shifted(images[index], rng), index, ".png")
        save(rebrightened(images[index], rng), index, ".png")
        save(images[index], index, ".jpg", quality=int(rng.integers(70, 96)))
    return paths, np.asarray(origin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD, help="Hamming threshold in bits")
    parser.add_argument("--sources", type=int, default=1000, help="digits that get planted variants")
    parser.add_argument("--workers", type=int, default=2, help="hashing processes")
    arguments = parser.parse_args()

    images, _ = load_mnist_sample()
    with tempfile.TemporaryDirectory() as folder:
        paths, origin = build_folder(Path(folder), images, arguments.sources, seed=0)
        hashes = hash_images(paths, num_workers=arguments.workers, progress=False)
    pairs = find_close_pairs(hashes.phashes, arguments.threshold)
    same = origin[pairs.first] == origin[pairs.second]
    found = {(int(origin[a]), int(b)) for a, b in zip(pairs.first[same], pairs.second[same], strict=True)}
    planted = len(images) + np.arange(3 * arguments.sources)
    recall = sum((int(origin[index]), int(index)) in found for index in planted) / len(planted)
    false_pairs = int((~same).sum())
    wrongly_paired = len(np.unique(origin[np.concatenate([pairs.first[~same], pairs.second[~same]])]))
    print(f"{len(paths)} files: {len(images)} digits and {len(planted)} planted variants of {arguments.sources}")
    print(f"threshold {arguments.threshold}: recall {recall:.1%} on planted pairs; {false_pairs} pairs of distinct "
          f"digits, involving {wrongly_paired} of {len(images)} digits")


if __name__ == "__main__":
    main()
