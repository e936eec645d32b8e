import numpy as np
import pytest

from heldout.audit.index import brute_force_close_pairs, choose_substring_count, find_close_pairs


def _planted_hashes(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64 - 1, 400, dtype=np.uint64, endpoint=True)
    flips = (np.uint64(1) << rng.integers(0, 64, (400, 6)).astype(np.uint64))
    one_bit = base ^ flips[:, 0]
    several = base ^ flips[:, 1] ^ flips[:, 2] ^ flips[:, 3] ^ flips[:, 4] ^ flips[:, 5]
    return np.concatenate([base, one_bit, several, base[:30]])


@pytest.mark.parametrize("threshold", [0, 1, 2, 4, 5, 8, 12, 20])
def test_find_close_pairs_equals_brute_force(threshold):
    hashes = _planted_hashes(threshold)
    found = find_close_pairs(hashes, threshold)
    expected = brute_force_close_pairs(hashes, threshold)
    assert len(found) == len(expected)
    assert np.array_equal(found.first, expected.first)
    assert np.array_equal(found.second, expected.second)
    assert np.array_equal(found.distance, expected.distance)


def test_find_close_pairs_exact_copies_all_listed():
    hashes = np.array([7, 7, 7, 2**63], dtype=np.uint64)
    found = find_close_pairs(hashes, 0)
    assert list(zip(found.first.tolist(), found.second.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 2)]
    assert found.distance.tolist() == [0, 0, 0]


def test_find_close_pairs_small_inputs():
    assert len(find_close_pairs(np.zeros(0, dtype=np.uint64), 4)) == 0
    assert len(find_close_pairs(np.ones(1, dtype=np.uint64), 4)) == 0


@pytest.mark.parametrize("threshold", [-1, 64])
def test_find_close_pairs_rejects_threshold(threshold):
    with pytest.raises(ValueError, match="Expected threshold to be between 0 and 63"):
        find_close_pairs(np.zeros(3, dtype=np.uint64), threshold)


def test_substring_count_keeps_pigeonhole_valid():
    for threshold in range(0, 30):
        count = choose_substring_count(100_000, threshold)
        assert 3 <= count <= 64
