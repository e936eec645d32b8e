"""Find all pairs of 64-bit hashes within a Hamming distance, without comparing all pairs.

The search is multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in Hamming Space with
Multi-Index Hashing", CVPR 2012). Each hash is cut into ``m`` substrings. By the pigeonhole principle, two
hashes within distance ``t`` differ in at most ``t // m`` bits on at least one substring, so for every
substring the search probes the buckets within that radius and verifies the candidates with a popcount.
With substrings of about ``log2(n)`` bits a bucket holds O(1) random hashes, so the cost grows roughly
linearly in ``n`` for well-spread hashes. Many near-identical hashes still give many candidates, because
every true pair is a candidate.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from math import comb

import numpy as np

HASH_BITS = 64
# Substrings are looked up in a dense table of 2**bits bucket offsets, so the width is capped to keep
# the table small (2**24 offsets take 128 MiB).
_MAX_SUBSTRING_BITS = 24
# Candidate pairs generated per step, which bounds the memory of the search to a few hundred MiB.
_MAX_CANDIDATES_PER_STEP = 4_000_000
# Relative cost of one bucket probe compared with verifying one candidate pair; a rough estimate of
# the numpy work per element for each.
_PROBE_COST = 1.0

if hasattr(np, "bitwise_count"):
    def popcount(values: np.ndarray) -> np.ndarray:
        """Return the number of set bits of each uint64 value."""
        return np.bitwise_count(values).astype(np.int64)
else:  # NumPy < 2.0
    _BYTE_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.int64)

    def popcount(values: np.ndarray) -> np.ndarray:
        """Return the number of set bits of each uint64 value."""
        as_bytes = np.ascontiguousarray(values, dtype=np.uint64).view(np.uint8).reshape(-1, 8)
        return _BYTE_POPCOUNT[as_bytes].sum(axis=1)


@dataclass
class HashPairs:
    """Pairs of positions ``first < second`` in the searched array, with their Hamming distance."""

    first: np.ndarray
    second: np.ndarray
    distance: np.ndarray

    def __len__(self) -> int:
        return len(self.first)


def _empty_pairs() -> HashPairs:
    empty = np.zeros(0, dtype=np.int64)
    return HashPairs(empty, empty.copy(), empty.copy())


def _substring_widths(count: int) -> list[int]:
    base, extra = divmod(HASH_BITS, count)
    return [base + 1] * extra + [base] * (count - extra)


def _ball_size(bits: int, radius: int) -> int:
    return sum(comb(bits, flipped) for flipped in range(radius + 1))


def choose_substring_count(num_hashes: int, threshold: int) -> int:
    """Return the number of substrings with the lowest estimated cost for well-spread hashes.

    The estimate counts bucket probes (``n`` times the Hamming-ball size per substring) and expected
    candidates (probes times the mean bucket size ``n / 2**bits``).
    """
    best_count, best_cost = 0, float("inf")
    for count in range(1, HASH_BITS + 1):
        widths = _substring_widths(count)
        if max(widths) > _MAX_SUBSTRING_BITS:
            continue
        radius = threshold // count
        cost = 0.0
        for bits in widths:
            probes = num_hashes * _ball_size(bits, radius)
            cost += _PROBE_COST * probes + probes * num_hashes / 2.0**bits
        if cost < best_cost:
            best_count, best_cost = count, cost
    return best_count


def _flip_masks(bits: int, radius: int) -> list[int]:
    masks = []
    for flipped in range(radius + 1):
        for positions in itertools.combinations(range(bits), flipped):
            masks.append(sum(1 << position for position in positions))
    return masks


def _candidates(keys: np.ndarray, order: np.ndarray, starts: np.ndarray, mask: int,
                queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (query, other) position pairs whose substring keys differ by exactly ``mask``.

    For ``mask`` 0 the queries are positions in ``order`` and each is paired only with the bucket members
    after it, so that every pair inside a bucket comes once. For other masks each pair of buckets is
    visited once by the caller, so all members of the probed bucket are paired.
    """
    if mask == 0:
        query = order[queries]
        low = queries + 1
        counts = starts[keys[query] + 1] - low
    else:
        query = queries
        probed = keys[queries] ^ mask
        low = starts[probed]
        counts = starts[probed + 1] - low
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    other = order[np.repeat(low, counts) + offsets]
    return np.repeat(query, counts), other


def _query_batches(keys: np.ndarray, order: np.ndarray, starts: np.ndarray, mask: int) -> list[np.ndarray]:
    """Return the queries for one flip mask, split so each batch yields about the step's candidate budget.

    With a non-zero mask, bucket pairs ``(k, k ^ mask)`` are visited from the lower key only: that is the
    key whose bit at the mask's highest set bit is 0.
    """
    if mask == 0:
        queries = np.arange(len(keys))
        counts = starts[keys[order] + 1] - queries - 1
    else:
        queries = np.flatnonzero((keys & (1 << (mask.bit_length() - 1))) == 0)
        probed = keys[queries] ^ mask
        counts = starts[probed + 1] - starts[probed]
    total = int(counts.sum())
    if total <= _MAX_CANDIDATES_PER_STEP:
        return [queries]
    cuts = np.searchsorted(np.cumsum(counts), np.arange(1, total // _MAX_CANDIDATES_PER_STEP + 1)
                           * _MAX_CANDIDATES_PER_STEP)
    return [batch for batch in np.split(queries, cuts) if len(batch)]


def _search_distinct(values: np.ndarray, threshold: int) -> HashPairs:
    """Find pairs among distinct hash values (so no pair has distance 0)."""
    count = choose_substring_count(len(values), threshold)
    radius = threshold // count
    found_first: list[np.ndarray] = []
    found_second: list[np.ndarray] = []
    shift = HASH_BITS
    for bits in _substring_widths(count):
        shift -= bits
        keys = ((values >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        starts = np.zeros((1 << bits) + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys, minlength=1 << bits), out=starts[1:])
        for mask in _flip_masks(bits, radius):
            for queries in _query_batches(keys, order, starts, mask):
                query, other = _candidates(keys, order, starts, mask, queries)
                close = popcount(values[query] ^ values[other]) <= threshold
                found_first.append(query[close])
                found_second.append(other[close])

    if not found_first:
        return _empty_pairs()
    # A pair close on several substrings is found once per substring, so duplicates are removed here.
    first = np.concatenate(found_first)
    second = np.concatenate(found_second)
    codes = np.unique(np.minimum(first, second) * len(values) + np.maximum(first, second))
    first, second = np.divmod(codes, len(values))
    return HashPairs(first, second, popcount(values[first] ^ values[second]))


def _expand_to_positions(pairs: HashPairs, inverse: np.ndarray, num_distinct: int) -> HashPairs:
    """Turn pairs of distinct values into pairs of positions, adding the pairs of equal values."""
    by_value = np.argsort(inverse, kind="stable")
    value_starts = np.zeros(num_distinct + 1, dtype=np.int64)
    np.cumsum(np.bincount(inverse, minlength=num_distinct), out=value_starts[1:])
    members = [by_value[value_starts[value]:value_starts[value + 1]] for value in range(num_distinct)]

    first_parts: list[np.ndarray] = []
    second_parts: list[np.ndarray] = []
    distance_parts: list[np.ndarray] = []
    for group in members:
        if len(group) > 1:
            left, right = np.triu_indices(len(group), k=1)
            first_parts.append(group[left])
            second_parts.append(group[right])
            distance_parts.append(np.zeros(len(left), dtype=np.int64))
    for value_a, value_b, distance in zip(pairs.first, pairs.second, pairs.distance, strict=True):
        left, right = np.meshgrid(members[value_a], members[value_b], indexing="ij")
        first_parts.append(left.ravel())
        second_parts.append(right.ravel())
        distance_parts.append(np.full(left.size, distance, dtype=np.int64))
    if not first_parts:
        return _empty_pairs()

    first = np.concatenate(first_parts)
    second = np.concatenate(second_parts)
    low, high = np.minimum(first, second), np.maximum(first, second)
    distance = np.concatenate(distance_parts)
    order = np.lexsort((high, low))
    return HashPairs(low[order], high[order], distance[order])


def find_close_pairs(hashes: np.ndarray, threshold: int) -> HashPairs:
    """Return every pair of positions whose 64-bit hashes are within Hamming distance ``threshold``.

    Pairs come sorted by first then second position, each once with ``first < second``. Equal hashes
    are searched once, so many copies of one image cost no extra search, but their pairs are all listed.

    Raises:
        ValueError: ``threshold`` is outside 0..63.
    """
    if not 0 <= threshold < HASH_BITS:
        raise ValueError(f"Expected threshold to be between 0 and {HASH_BITS - 1} bits, but got {threshold}.")
    values = np.asarray(hashes, dtype=np.uint64)
    if len(values) < 2:
        return _empty_pairs()
    distinct, inverse = np.unique(values, return_inverse=True)
    pairs = _search_distinct(distinct, threshold) if threshold > 0 and len(distinct) > 1 else _empty_pairs()
    return _expand_to_positions(pairs, inverse.ravel(), len(distinct))


def brute_force_close_pairs(hashes: np.ndarray, threshold: int) -> HashPairs:
    """Return the same pairs as :func:`find_close_pairs` by comparing all pairs; for tests and small inputs."""
    values = np.asarray(hashes, dtype=np.uint64)
    first, second = np.triu_indices(len(values), k=1)
    distance = popcount(values[first] ^ values[second])
    close = distance <= threshold
    return HashPairs(first[close].astype(np.int64), second[close].astype(np.int64), distance[close])
