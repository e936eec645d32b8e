"""Read every image once before training, so all bad files are found in one pass."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm.auto import tqdm

from heldout.data.decode import ImageDecodeError, decode_image

log = logging.getLogger(__name__)

# Below this many files the check takes well under a second, so it shows no progress bar.
PROGRESS_BAR_MIN_FILES = 2000


def _check_one(path: Path) -> str | None:
    try:
        decode_image(path, draft_size=64)
    except ImageDecodeError as error:
        return error.reason
    return None


def find_bad_images(paths: Sequence[Path], *, num_threads: int | None = None) -> dict[Path, str]:
    """Decode each file and return the ones that fail, mapped to the reason.

    Decoding runs in a thread pool, because Pillow releases the GIL while it decodes.
    """
    threads = num_threads or min(8, os.cpu_count() or 1)
    bad: dict[Path, str] = {}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = pool.map(_check_one, paths, chunksize=64)
        progress = tqdm(results, total=len(paths), desc="Checking images", unit="img",
                        disable=len(paths) < PROGRESS_BAR_MIN_FILES)
        for path, reason in zip(paths, progress, strict=True):
            if reason is not None:
                bad[path] = reason
    return bad
