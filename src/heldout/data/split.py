"""Stratified, seeded train/val/test splits."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from heldout.errors import ConfigError, DataError

log = logging.getLogger(__name__)

TRAIN, VAL, TEST = "train", "val", "test"
SPLITS = (TRAIN, VAL, TEST)


def validate_fractions(val_fraction: float, test_fraction: float, *, split_val: bool = True,
                       split_test: bool = True) -> None:
    """Check the split fractions; a fraction is only used when that split is drawn from ``data_dir``.

    Raises:
        ConfigError: a used fraction is outside (0, 1), or the fractions leave nothing for training.
    """
    used = {"data.val_fraction": (val_fraction, split_val), "data.test_fraction": (test_fraction, split_test)}
    for key, (value, is_used) in used.items():
        if is_used and not 0.0 < value < 1.0:
            raise ConfigError(f"Expected {key} to be between 0 and 1 (exclusive), but got {value}. "
                              "Use a fraction such as 0.15.")
    total = 0.0
    if split_val:
        total += val_fraction
    if split_test:
        total += test_fraction
    if total >= 1.0:
        raise ConfigError(f"data.val_fraction + data.test_fraction = {total:g} leaves nothing for training; "
                          "expected a sum below 1, such as 0.15 + 0.15.")


def _check_class_counts(targets: Sequence[int], class_names: Sequence[str], parts: int) -> None:
    counts = Counter(targets)
    too_small = [(class_names[index], counts.get(index, 0)) for index in range(len(class_names))
                 if counts.get(index, 0) < parts]
    if too_small:
        listed = ", ".join(f"'{name}' has {count}" for name, count in too_small)
        raise DataError(f"Too few images for a stratified split into {parts} parts: {listed}; each class needs "
                        f"at least {parts} images (one per split). Add images to these classes, remove their "
                        "folders, or give separate --data.val_dir/--data.test_dir folders.")


def _split_off(indices: np.ndarray, targets: np.ndarray, fraction: float, seed: int,
               what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        kept, taken = train_test_split(indices, test_size=fraction, stratify=targets[indices],
                                       random_state=seed, shuffle=True)
    except ValueError as error:
        raise DataError(f"Cannot draw a stratified {what} split of {len(indices)} images with fraction "
                        f"{fraction:g}: {error}. Use more images or a larger fraction.") from None
    return np.sort(kept), np.sort(taken)


def _warn_missing_classes(targets: Sequence[int], class_names: Sequence[str], assignment: Sequence[str],
                          splits: Sequence[str]) -> None:
    """Log a warning for each drawn split that lacks a class, which keeping groups whole can cause."""
    present = {(split, target) for target, split in zip(targets, assignment, strict=True)}
    for split in splits:
        missing = [class_names[target] for target in sorted(set(targets)) if (split, target) not in present]
        if missing:
            log.warning("The %s split has no image of class(es) %s: their groups are too few or too large to "
                        "reach every split, so %s figures say nothing about them. Split their groups more finely "
                        "(data.group_regex, data.near_duplicate_threshold) or add images.", split,
                        ", ".join(missing), split)


def stratified_split(targets: Sequence[int], class_names: Sequence[str], *, val_fraction: float,
                     test_fraction: float, seed: int, split_val: bool = True,
                     split_test: bool = True, groups: Sequence[str] | None = None) -> list[str]:
    """Assign each sample to ``"train"``, ``"val"`` or ``"test"``, keeping class proportions in each split.

    The same targets, fractions and seed always give the same assignment. With ``split_val`` or
    ``split_test`` false, that split comes from a separate folder and no sample here is assigned to it.
    With ``groups``, all samples of one group land in the same split.

    Raises:
        ConfigError: the fractions are invalid.
        DataError: a class has fewer images than the number of splits drawn from it.
    """
    validate_fractions(val_fraction, test_fraction, split_val=split_val, split_test=split_test)
    parts = 1 + int(split_val) + int(split_test)
    _check_class_counts(targets, class_names, parts)
    if groups is not None:
        from heldout.data.group_split import group_stratified_split

        assignment = group_stratified_split(targets, groups, val_fraction=val_fraction if split_val else 0.0,
                                            test_fraction=test_fraction if split_test else 0.0, seed=seed)
        drawn = [name for name, on in ((VAL, split_val), (TEST, split_test)) if on]
        _warn_missing_classes(targets, class_names, assignment, drawn)
        return assignment

    target_array = np.asarray(targets)
    assignment = np.full(len(target_array), TRAIN, dtype=object)
    remaining = np.arange(len(target_array))
    if split_test:
        remaining, test_indices = _split_off(remaining, target_array, test_fraction, seed, TEST)
        assignment[test_indices] = TEST
    if split_val:
        # The validation fraction is of the whole folder, so rescale it to what the test split left.
        share = val_fraction / (1.0 - (test_fraction if split_test else 0.0))
        _, val_indices = _split_off(remaining, target_array, share, seed + 1, VAL)
        assignment[val_indices] = VAL
    return assignment.tolist()
