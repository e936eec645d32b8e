"""Image-folder scanning, decoding, splitting and the LightningDataModule.

Names are imported on first use, so that ``heldout.data.decode`` and the other light modules load without
importing Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FolderScan": "heldout.data.scan",
    "scan_image_folder": "heldout.data.scan",
    "ImageDecodeError": "heldout.data.decode",
    "decode_image": "heldout.data.decode",
    "ImageFolderDataModule": "heldout.data.datamodule",
    "MnistDemoDataModule": "heldout.data.demo",
    "write_demo_images": "heldout.data.demo",
    "Manifest": "heldout.data.manifest",
    "read_manifest": "heldout.data.manifest",
    "stratified_split": "heldout.data.split",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'heldout.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
