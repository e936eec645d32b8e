"""Image-folder scanning, decoding, splitting and the LightningDataModule."""

from heldout.data.datamodule import ImageFolderDataModule
from heldout.data.decode import ImageDecodeError, decode_image
from heldout.data.demo import MnistDemoDataModule, write_demo_images
from heldout.data.manifest import Manifest, read_manifest
from heldout.data.scan import FolderScan, scan_image_folder
from heldout.data.split import stratified_split

__all__ = [
    "FolderScan",
    "ImageDecodeError",
    "ImageFolderDataModule",
    "Manifest",
    "MnistDemoDataModule",
    "decode_image",
    "read_manifest",
    "scan_image_folder",
    "stratified_split",
    "write_demo_images",
]
