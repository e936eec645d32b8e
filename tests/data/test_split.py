from collections import Counter

import numpy as np
import pytest

from heldout.data.split import stratified_split
from heldout.errors import ConfigError, DataError

CLASSES = ["a", "b", "c"]


def _targets() -> list[int]:
    return [0] * 100 + [1] * 60 + [2] * 40


def test_split_keeps_class_proportions() -> None:
    targets = _targets()
    splits = stratified_split(targets, CLASSES, val_fraction=0.15, test_fraction=0.15, seed=1)
    counts = Counter(zip(targets, splits, strict=True))
    for label, total in Counter(targets).items():
        for split, fraction in (("val", 0.15), ("test", 0.15), ("train", 0.70)):
            assert abs(counts[(label, split)] - total * fraction) <= 2, (label, split)


def test_split_covers_every_sample_once() -> None:
    targets = _targets()
    splits = stratified_split(targets, CLASSES, val_fraction=0.2, test_fraction=0.1, seed=3)
    assert len(splits) == len(targets)
    assert set(splits) == {"train", "val", "test"}
    assert sum(Counter(splits).values()) == len(targets)


def test_split_same_seed_same_assignment() -> None:
    first = stratified_split(_targets(), CLASSES, val_fraction=0.15, test_fraction=0.15, seed=7)
    second = stratified_split(_targets(), CLASSES, val_fraction=0.15, test_fraction=0.15, seed=7)
    other = stratified_split(_targets(), CLASSES, val_fraction=0.15, test_fraction=0.15, seed=8)
    assert first == second
    assert first != other


def test_split_without_test_fraction_for_test_dir() -> None:
    splits = stratified_split(_targets(), CLASSES, val_fraction=0.2, test_fraction=0.0, seed=0, split_test=False)
    assert "test" not in splits
    assert np.isclose(splits.count("val") / len(splits), 0.2, atol=0.01)


def test_split_names_class_with_too_few_images() -> None:
    targets = [0] * 10 + [1] * 10 + [2] * 2
    with pytest.raises(DataError, match=r"'c' has 2.*at least 3 images"):
        stratified_split(targets, CLASSES, val_fraction=0.15, test_fraction=0.15, seed=0)


@pytest.mark.parametrize(
    ("val_fraction", "test_fraction", "message"),
    [
        (0.0, 0.15, "data.val_fraction"),  # zero is outside (0, 1)
        (0.2, 1.5, "data.test_fraction"),  # above 1
        (-0.1, 0.15, "data.val_fraction"),  # negative
        (0.6, 0.5, "leaves nothing for training"),  # both valid, sum too large
    ],
)
def test_split_rejects_bad_fractions(val_fraction: float, test_fraction: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        stratified_split(_targets(), CLASSES, val_fraction=val_fraction, test_fraction=test_fraction, seed=0)
