import numpy as np

from heldout.audit.hashing import DEFAULT_THRESHOLD, hash_images, perceptual_hash, pixel_digest
from heldout.data.decode import decode_image

from .images import smooth_image, write_image


def _distance(first: int, second: int) -> int:
    return (first ^ second).bit_count()


def test_digest_same_pixels_png_and_bmp(tmp_path):
    pixels = smooth_image(0)
    png = write_image(tmp_path / "a.png", pixels)
    bmp = write_image(tmp_path / "b.bmp", pixels)
    assert png.read_bytes() != bmp.read_bytes()
    assert pixel_digest(decode_image(png)) == pixel_digest(decode_image(bmp))


def test_digest_differs_for_one_changed_pixel():
    pixels = smooth_image(0)
    changed = pixels.copy()
    changed[0, 0, 0] ^= 1
    assert pixel_digest(pixels) != pixel_digest(changed)


def _object_on_background(top: int, left: int) -> np.ndarray:
    canvas = np.full((48, 48, 3), 20, dtype=np.uint8)
    canvas[top:top + 24, left:left + 24] = smooth_image(1, size=24)
    return canvas


def test_phash_shift_brightness_jpeg_stay_close(tmp_path):
    source = _object_on_background(12, 12)
    variants = {
        "shift_1px": _object_on_background(13, 12),
        "shift_2px": _object_on_background(14, 13),
        "brighter": np.clip(source.astype(int) + 25, 0, 255).astype(np.uint8),
        "darker": np.clip(source.astype(int) - 25, 0, 255).astype(np.uint8),
    }
    source_hash = perceptual_hash(source)
    for name, pixels in variants.items():
        assert _distance(source_hash, perceptual_hash(pixels)) <= DEFAULT_THRESHOLD, name
    jpeg = write_image(tmp_path / "copy.jpg", source, quality=75)
    assert _distance(source_hash, perceptual_hash(decode_image(jpeg))) <= DEFAULT_THRESHOLD


def test_phash_distinct_images_far_apart():
    hashes = [perceptual_hash(smooth_image(seed)) for seed in range(10, 20)]
    distances = [_distance(a, b) for index, a in enumerate(hashes) for b in hashes[index + 1:]]
    assert min(distances) > 2 * DEFAULT_THRESHOLD


def test_phash_has_32_bits_set():
    assert perceptual_hash(smooth_image(3)).bit_count() == 32


def test_hash_images_records_unreadable(tmp_path):
    good = write_image(tmp_path / "good.png", smooth_image(4))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    result = hash_images([good, broken], num_workers=1, progress=False)
    assert list(result.failed) == [1]
    assert "not a recognised image format" in result.failed[1]
    assert result.digests[1] is None
    assert result.readable.tolist() == [0]


def test_hash_images_pool_matches_serial(tmp_path):
    paths = [write_image(tmp_path / f"{seed}.png", smooth_image(seed, size=28 + seed)) for seed in range(300)]
    serial = hash_images(paths, num_workers=1, progress=False)
    pooled = hash_images(paths, num_workers=2, progress=False)
    assert serial.digests == pooled.digests
    assert np.array_equal(serial.phashes, pooled.phashes)
