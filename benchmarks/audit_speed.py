"""Measure hashing throughput on small images and near-duplicate search time on random hashes.

Run: python benchmarks/audit_speed.py [--workers N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from heldout.audit.hashing import DEFAULT_THRESHOLD, hash_images
from heldout.audit.index import find_close_pairs


def measure_hashing(count: int, workers: int) -> float:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index in range(count):
            size = int(rng.integers(28, 65))
            path = Path(folder) / f"{index}.png"
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
            paths.append(path)
        start = time.perf_counter()
        hash_images(paths, num_workers=workers, progress=False)
        return count / (time.perf_counter() - start)


def measure_search(count: int, threshold: int) -> float:
    hashes = np.random.default_rng(count).integers(0, 2**64 - 1, count, dtype=np.uint64, endpoint=True)
    start = time.perf_counter()
    find_close_pairs(hashes, threshold)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="hashing processes")
    parser.add_argument("--images", type=int, default=6000, help="generated 28-64 px PNG files to hash")
    parser.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD, help="Hamming threshold in bits")
    arguments = parser.parse_args()

    rate = measure_hashing(arguments.images, arguments.workers)
    print(f"hashing: {rate:.0f} images/s ({arguments.images} PNG files of 28-64 px, decode included, "
          f"{arguments.workers} processes)")
    times = {}
    for count in (10_000, 40_000, 100_000, 160_000):
        times[count] = measure_search(count, arguments.threshold)
        print(f"search: {count} random hashes, threshold {arguments.threshold}: {times[count]:.2f} s")
    growth = times[160_000] / times[10_000]
    print(f"hashing {rate:.0f} img/s; search 100k {times[100_000]:.2f} s; 10k->160k time x{growth:.1f} "
          f"(n^2 would be x256, n x16)")


if __name__ == "__main__":
    main()
