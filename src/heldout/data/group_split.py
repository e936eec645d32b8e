"""Stratified train/val/test splits that keep every group of samples inside one split."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence

import numpy as np

from heldout.errors import ConfigError

TRAIN, VAL, TEST = "train", "val", "test"
# A drawn split whose share of the samples is off from the request by more than this fraction of the
# request (and by more than one sample) gives a warning.
_RELATIVE_TOLERANCE = 0.2
# Weight of the overall split sizes next to the per-class counts when a group is placed: small, so it
# only decides between splits that the per-class counts rate (nearly) the same.
_TIE_WEIGHT = 1e-3


def _check_arguments(targets: Sequence[Hashable], groups: Sequence[str], val_fraction: float,
                     test_fraction: float) -> None:
    if len(targets) != len(groups):
        raise ConfigError(f"Expected one group per sample, but got {len(groups)} groups for {len(targets)} targets.")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"Expected {name} to be in [0, 1), but got {value}. Use 0 to draw no such split.")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(f"val_fraction + test_fraction = {val_fraction + test_fraction:g} leaves nothing for "
                          "training; expected a sum below 1.")


def group_stratified_split(targets: Sequence[Hashable], groups: Sequence[str], *, val_fraction: float,
                           test_fraction: float, seed: int) -> list[str]:
    """Assign ``"train"``, ``"val"`` or ``"test"`` per sample, keeping each group whole and classes balanced.

    Groups are placed one at a time, largest first (ties in a seeded random order), each into the split
    where it most reduces the squared error between the achieved and the requested per-class counts,
    with each class's error scaled by its size. A fraction of 0 means that split is not drawn here.
    When groups are too large for the fractions, the split stays group-pure and a ``UserWarning`` names
    the achieved fractions.

    Raises:
        ConfigError: lengths differ, or the fractions are outside [0, 1) or sum to 1 or more.
    """
    _check_arguments(targets, groups, val_fraction, test_fraction)
    if not targets:
        return []
    splits = [TRAIN] + [name for name, value in ((VAL, val_fraction), (TEST, test_fraction)) if value > 0]
    fractions = np.array([1.0 - val_fraction - test_fraction, val_fraction, test_fraction])[
        [0] + [1 + index for index, value in enumerate((val_fraction, test_fraction)) if value > 0]]

    class_names = sorted(set(targets), key=repr)
    class_index = {name: index for index, name in enumerate(class_names)}
    group_names = sorted(set(groups))
    group_index = {name: index for index, name in enumerate(group_names)}
    sample_class = np.array([class_index[target] for target in targets])
    sample_group = np.array([group_index[group] for group in groups])
    group_counts = np.zeros((len(group_names), len(class_names)))
    np.add.at(group_counts, (sample_group, sample_class), 1.0)

    class_totals = group_counts.sum(axis=0)
    wanted = fractions[:, None] * class_totals[None, :]
    achieved = np.zeros_like(wanted)
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(group_names))
    order = shuffled[np.argsort(-group_counts.sum(axis=1)[shuffled], kind="stable")]
    group_split = np.zeros(len(group_names), dtype=np.int64)
    for group in order:
        counts = group_counts[group]
        classes = np.flatnonzero(counts)
        scale = class_totals[classes]
        before = ((achieved[:, classes] - wanted[:, classes]) / scale) ** 2
        after = ((achieved[:, classes] + counts[classes] - wanted[:, classes]) / scale) ** 2
        change = (after - before).sum(axis=1)
        # Where classes leave a tie (one image short in both val and test), the split furthest below its
        # overall share takes the group, so rounding does not favour one split in every class.
        overall_before = (achieved.sum(axis=1) - wanted.sum(axis=1)) ** 2
        overall_after = (achieved.sum(axis=1) + counts.sum() - wanted.sum(axis=1)) ** 2
        change += _TIE_WEIGHT * (overall_after - overall_before) / class_totals.sum() ** 2
        chosen = int(np.argmin(change))
        group_split[group] = chosen
        achieved[chosen] += counts

    _warn_if_off(splits, fractions, achieved)
    return [splits[group_split[group]] for group in sample_group]


def _warn_if_off(splits: list[str], fractions: np.ndarray, achieved: np.ndarray) -> None:
    total = achieved.sum()
    shares = achieved.sum(axis=1) / total
    off = [name for name, share, fraction, count in zip(splits, shares, fractions, achieved.sum(axis=1), strict=True)
           if abs(share - fraction) > _RELATIVE_TOLERANCE * fraction and abs(count - fraction * total) > 1]
    if off:
        described = ", ".join(f"{name} {share:.3f} (requested {fraction:.3f})"
                              for name, share, fraction in zip(splits, shares, fractions, strict=True))
        warnings.warn(f"Groups are too large to honour the split fractions while keeping each group in one "
                      f"split; achieved fractions: {described}. Use smaller groups (a lower near-duplicate "
                      "threshold or a finer group regex) or accept these fractions.", UserWarning, stacklevel=3)
