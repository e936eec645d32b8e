"""Stratified splits of classes too small to split."""

from __future__ import annotations

import logging
import re

import pytest

from heldout.data.split import stratified_split
from heldout.errors import ConfigError, DataError

CLASSES = ["cat", "dog", "eel"]


def test_split_single_image_class() -> None:
    targets = [0] * 10 + [1] * 10 + [2]

    with pytest.raises(DataError) as caught:
        stratified_split(targets, CLASSES, val_fraction=0.2, test_fraction=0.2, seed=0)

    message = str(caught.value)
    assert "'eel' has 1" in message
    assert "each class needs at least 3 images (one per split)" in message
    assert "remove their folders, or give separate --data.val_dir/--data.test_dir folders" in message


def test_split_two_images_with_test_dir() -> None:
    """With a separate test folder, a class needs only one image for train and one for validation."""
    targets = [0] * 10 + [1] * 10 + [2, 2]

    assignment = stratified_split(targets, CLASSES, val_fraction=0.2, test_fraction=0.2, seed=0, split_test=False)

    assert sorted(split for target, split in zip(targets, assignment, strict=True) if target == 2) == ["train", "val"]
    assert "test" not in assignment


@pytest.mark.parametrize(("val_fraction", "test_fraction", "key"), [
    (0.0, 0.2, "data.val_fraction"),
    (1.0, 0.2, "data.val_fraction"),
    (0.2, -0.1, "data.test_fraction"),
    (0.2, 1.5, "data.test_fraction"),
])
def test_split_fraction_outside_open_interval(val_fraction: float, test_fraction: float, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"Expected {key} to be between 0 and 1 (exclusive)")):
        stratified_split([0, 1] * 10, CLASSES[:2], val_fraction=val_fraction, test_fraction=test_fraction, seed=0)


def test_split_fractions_sum_to_one() -> None:
    with pytest.raises(ConfigError, match="leaves nothing for training"):
        stratified_split([0, 1] * 10, CLASSES[:2], val_fraction=0.5, test_fraction=0.5, seed=0)


def test_group_split_warns_class_missing_from_split(caplog: pytest.LogCaptureFixture) -> None:
    # Class b has one group of four images, which can reach only one split.
    targets = [0] * 20 + [1] * 4
    groups = [f"a{index}" for index in range(20)] + ["b"] * 4

    with caplog.at_level(logging.WARNING, logger="heldout.data.split"):
        assignment = stratified_split(targets, ["a", "b"], val_fraction=0.15, test_fraction=0.15, seed=0,
                                      groups=groups)

    assert len({split for target, split in zip(targets, assignment, strict=True) if target == 1}) == 1
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(message.startswith("The val split has no image of class(es) b:") for message in warnings)
    assert any(message.startswith("The test split has no image of class(es) b:") for message in warnings)
