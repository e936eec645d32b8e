import warnings
from collections import Counter

import pytest

from heldout.data.group_split import group_stratified_split
from heldout.errors import ConfigError


def _data(num_groups=300, seed=0):
    import random

    rng = random.Random(seed)
    groups = [f"g{rng.randrange(num_groups)}" for _ in range(1200)]
    targets = [int(group[1:]) % 3 for group in groups]  # one class per group
    return targets, groups


def test_group_split_keeps_groups_together():
    targets, groups = _data()
    splits = group_stratified_split(targets, groups, val_fraction=0.15, test_fraction=0.15, seed=0)
    split_of_group = {}
    for group, split in zip(groups, splits, strict=True):
        assert split_of_group.setdefault(group, split) == split


def test_group_split_class_proportions_close():
    targets, groups = _data()
    splits = group_stratified_split(targets, groups, val_fraction=0.15, test_fraction=0.15, seed=0)
    totals = Counter(targets)
    counts = Counter(zip(targets, splits, strict=True))
    for label, total in totals.items():
        for split, fraction in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
            assert abs(counts[label, split] / total - fraction) < 0.03, (label, split)


def test_group_split_deterministic_per_seed():
    targets, groups = _data()
    first = group_stratified_split(targets, groups, val_fraction=0.2, test_fraction=0.1, seed=3)
    second = group_stratified_split(targets, groups, val_fraction=0.2, test_fraction=0.1, seed=3)
    other = group_stratified_split(targets, groups, val_fraction=0.2, test_fraction=0.1, seed=4)
    assert first == second
    assert first != other


def test_group_split_zero_fraction_draws_no_split():
    targets, groups = _data()
    splits = group_stratified_split(targets, groups, val_fraction=0.2, test_fraction=0.0, seed=0)
    assert set(splits) == {"train", "val"}


def test_group_split_warns_for_large_groups():
    targets = [0] * 10 + [1] * 10
    groups = ["big"] * 8 + [f"s{i}" for i in range(2)] + ["huge"] * 10
    with pytest.warns(UserWarning, match="achieved fractions: train"):
        group_stratified_split(targets, groups, val_fraction=0.15, test_fraction=0.15, seed=0)


def test_group_split_rejects_bad_fractions():
    with pytest.raises(ConfigError, match="leaves nothing for training"):
        group_stratified_split([0, 1], ["a", "b"], val_fraction=0.5, test_fraction=0.5, seed=0)
    with pytest.raises(ConfigError, match="one group per sample"):
        group_stratified_split([0, 1], ["a"], val_fraction=0.1, test_fraction=0.1, seed=0)


def test_group_split_singletons_share_rounding():
    # Ten images per class: 1.5 val and 1.5 test images wanted in each class. Rounding must not give val
    # two and test one in every class.
    targets = [label for label in range(4) for _ in range(10)]
    groups = [f"image_{index}" for index in range(len(targets))]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        splits = group_stratified_split(targets, groups, val_fraction=0.15, test_fraction=0.15, seed=0)

    counts = Counter(splits)
    assert counts["val"] == 6
    assert counts["test"] == 6
    for label in range(4):
        per_class = Counter(split for target, split in zip(targets, splits, strict=True) if target == label)
        assert per_class["val"] in (1, 2)
        assert per_class["test"] in (1, 2)
