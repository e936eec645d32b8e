"""Decode image files to 8-bit RGB arrays."""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from heldout.errors import DataError

# Pillow modes that store more than 8 bits per pixel. Pillow clips them to 255 when converting to "RGB",
# which turns a 16-bit image all white, so they are rescaled here first.
_WIDE_INTEGER_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


class ImageDecodeError(DataError):
    """An image file that cannot be read or decoded."""

    def __init__(self, path: str | os.PathLike[str], reason: str | None = None) -> None:
        if reason is None:
            # A DataLoader worker's error is raised again in the main process as ``type(error)(message)``,
            # so a single argument is the whole message and the path is unknown.
            self.path, self.reason = "", os.fspath(path)
            super().__init__(self.reason)
            return
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"Cannot decode image {self.path}: {reason}")


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode in _WIDE_INTEGER_MODES:
        values = np.asarray(image, dtype=np.float64)
        # 16-bit samples map 0..65535 onto 0..255; values of a 32-bit "I" image above that range are clipped.
        gray = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "F":
        gray = np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode != "RGB":
        # Alpha is dropped and the stored colour kept, as torchvision's ImageFolder loader does.
        image = image.convert("RGBA").convert("RGB") if "transparency" in image.info else image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def decode_image(path: str | os.PathLike[str], *, draft_size: int | None = None) -> np.ndarray:
    """Decode an image file to an ``(H, W, 3)`` uint8 array in RGB order.

    EXIF orientation is applied. Grayscale, palette, RGBA and CMYK images become RGB, and 16-bit images
    are rescaled to 8 bits. With ``draft_size``, JPEG files may be decoded at a reduced scale that stays
    at least that many pixels on each side, which is much faster for large photos.

    Raises:
        ImageDecodeError: the file is missing, empty, truncated or not an image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if draft_size is not None and image.format == "JPEG":
                    image.draft("RGB", (draft_size, draft_size))
                image.load()
                oriented = ImageOps.exif_transpose(image)
                array = _to_rgb_array(oriented)
    except FileNotFoundError:
        raise ImageDecodeError(path, "file not found") from None
    except UnidentifiedImageError:
        size = _file_size(path)
        reason = "empty file (0 bytes)" if size == 0 else "not a recognised image format"
        raise ImageDecodeError(path, reason) from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ImageDecodeError(path, f"{type(error).__name__}: {error}") from None
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageDecodeError(path, f"decoded to an unusable shape {array.shape}")
    return np.ascontiguousarray(array)


def _file_size(path: str | os.PathLike[str]) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None
