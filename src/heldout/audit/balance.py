"""Class counts per split and a chi-square test of whether the splits differ in class distribution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2_contingency


@dataclass
class SplitBalance:
    """Class counts per split and the chi-square test of independence between class and split.

    Attributes:
        counts: split name mapped to class name mapped to the number of images.
        statistic: the chi-square statistic, None when fewer than two splits or classes have images.
        p_value: probability of a difference at least this large if the splits share one class
            distribution. A small value (such as below 0.01) means the splits differ in class mix.
        dof: degrees of freedom of the test, None with ``statistic``.
    """

    counts: dict[str, dict[str, int]]
    statistic: float | None
    p_value: float | None
    dof: int | None


def split_balance(labels: Sequence[str], splits: Sequence[str]) -> SplitBalance:
    """Count classes per split and test them with ``scipy.stats.chi2_contingency``.

    Classes and splits without any image are left out of the test, because they give zero expected counts.
    """
    classes = sorted(set(labels))
    split_names = sorted(set(splits))
    table = np.zeros((len(split_names), len(classes)), dtype=np.int64)
    class_position = {name: position for position, name in enumerate(classes)}
    split_position = {name: position for position, name in enumerate(split_names)}
    for label, split in zip(labels, splits, strict=True):
        table[split_position[split], class_position[label]] += 1
    counts = {split: {label: int(table[row, column]) for column, label in enumerate(classes)}
              for row, split in enumerate(split_names)}

    used = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if used.shape[0] < 2 or used.shape[1] < 2:
        return SplitBalance(counts, None, None, None)
    result = chi2_contingency(used, correction=False)
    return SplitBalance(counts, float(result.statistic), float(result.pvalue), int(result.dof))
