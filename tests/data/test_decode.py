"""Decoding of the image files that real folders contain: odd modes, EXIF rotation, broken files."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from heldout.data.decode import ImageDecodeError, decode_image


def _write_png_rgb16(path: Path, pixels: np.ndarray) -> None:
    """Write a 16-bit-per-channel RGB PNG by hand, because Pillow cannot save that mode."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width, _ = pixels.shape
    rows = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def test_decode_rgba_keeps_colour(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 4), dtype=np.uint8)
    pixels[...] = (200, 10, 30, 0)  # fully transparent
    pixels[0, 0] = (5, 250, 5, 255)
    Image.fromarray(pixels).save(tmp_path / "a.png")

    image = decode_image(tmp_path / "a.png")

    assert image.shape == (4, 4, 3)
    assert image.dtype == np.uint8
    assert image[1, 1].tolist() == [200, 10, 30]
    assert image[0, 0].tolist() == [5, 250, 5]


def test_decode_grayscale_to_three_channels(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 77, 255]], dtype=np.uint8)).save(tmp_path / "g.png")
    Image.fromarray(np.full((2, 2), 90, dtype=np.uint8)).convert("LA").save(tmp_path / "la.png")

    gray = decode_image(tmp_path / "g.png")
    gray_alpha = decode_image(tmp_path / "la.png")

    assert gray.shape == (1, 3, 3)
    assert gray[0, :, 0].tolist() == [0, 77, 255]
    assert (gray[..., 0] == gray[..., 2]).all()
    assert gray_alpha[0, 0].tolist() == [90, 90, 90]


def test_decode_16bit_gray_rescaled(tmp_path: Path) -> None:
    """A 16-bit PNG clipped to 8 bits instead of rescaled turns almost all white."""
    Image.fromarray(np.array([[0, 256, 32768, 65535]], dtype=np.uint16)).save(tmp_path / "g16.png")

    image = decode_image(tmp_path / "g16.png")

    assert image[0, :, 0].tolist() == [0, 1, 128, 255]


def test_decode_16bit_rgb_rescaled(tmp_path: Path) -> None:
    _write_png_rgb16(tmp_path / "rgb16.png", np.array([[[65535, 0, 32768], [4096, 8192, 16384]]], dtype=np.uint16))

    image = decode_image(tmp_path / "rgb16.png")

    assert image[0, 0].tolist() == [255, 0, 128]
    assert image[0, 1].tolist() == [16, 32, 64]


@pytest.mark.parametrize("draft_size", [None, 4])
def test_decode_applies_exif_rotation(tmp_path: Path, draft_size: int | None) -> None:
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)
    pixels[:, :10] = (255, 0, 0)  # left half red
    pixels[:, 10:] = (0, 0, 255)  # right half blue
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)

    decoded = decode_image(tmp_path / "rotated.jpg", draft_size=draft_size)

    height, width, _ = decoded.shape
    assert height > width
    top, bottom = decoded[1, width // 2].astype(int), decoded[-2, width // 2].astype(int)
    # The red left half is on top after a clockwise rotation, and the blue right half below.
    assert top[0] > 200
    assert top[2] < 50
    assert bottom[2] > 200
    assert bottom[0] < 50


@pytest.mark.parametrize(("height", "width"), [
    (1, 1),
    (2, 3000),  # a thin strip
    (3000, 2),
    (3000, 4000),  # a 12-megapixel photo
])
def test_decode_extreme_sizes(tmp_path: Path, height: int, width: int) -> None:
    Image.new("RGB", (width, height), (10, 120, 240)).save(tmp_path / "x.jpg", quality=95)

    image = decode_image(tmp_path / "x.jpg", draft_size=32)

    assert image.ndim == 3
    assert image.shape[2] == 3
    assert min(image.shape[:2]) >= min(height, width, 32)
    assert np.abs(image.reshape(-1, 3).mean(axis=0) - (10, 120, 240)).max() < 6


def _truncated_jpeg(path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(("name", "write", "reason"), [
    ("zero.jpg", lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    ("text.jpg", lambda p: p.write_text("not an image\n"), "not a recognised image format"),
    ("cut.jpg", _truncated_jpeg, "image file is truncated"),
    ("gone.png", lambda p: None, "file not found"),
])
def test_decode_bad_file_names_reason(tmp_path: Path, name: str, write, reason: str) -> None:  # noqa: ANN001
    path = tmp_path / name
    write(path)

    with pytest.raises(ImageDecodeError, match=re.escape(reason)) as caught:
        decode_image(path)

    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)


def test_decode_error_rebuilt_from_message() -> None:
    """DataLoader workers re-raise an error in the main process as ``type(error)(message)``."""
    error = ImageDecodeError("Caught ImageDecodeError in DataLoader worker process 0.")

    assert str(error) == "Caught ImageDecodeError in DataLoader worker process 0."
