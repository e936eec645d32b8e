"""Confidence intervals, significance tests and calibration error for classification results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Upper bound on the number of bootstrap indices held in memory at once (resamples x rows), about 32 MB
# of int64, so a large test split is resampled in chunks.
_MAX_BOOTSTRAP_INDICES = 4_000_000


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Compute the exact Clopper-Pearson interval for a binomial proportion.

    With no trials every proportion is possible, so the interval is ``(0.0, 1.0)``.

    Raises:
        ValueError: ``trials`` is negative or ``successes`` is outside ``0..trials``.

    Example:
        >>> low, high = clopper_pearson(5, 10)
        >>> round(low, 4), round(high, 4)
        (0.1871, 0.8129)
    """
    if trials < 0:
        raise ValueError(f"Expected `trials` to be at least 0, but got {trials}.")
    if not 0 <= successes <= trials:
        raise ValueError(f"Expected `successes` to be between 0 and trials={trials}, but got {successes}.")
    if trials == 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    low = 0.0 if successes == 0 else float(stats.beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = (
        1.0
        if successes == trials
        else float(stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    )
    return low, high


def compare_proportions(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> float:
    """Return the two-sided p-value of Fisher's exact test that two independent samples share one proportion.

    Fisher's exact test stays valid for small samples, where the two-proportion z-test does not. A
    sample with no trials carries no evidence, so the p-value is then 1.

    Example:
        >>> compare_proportions(90, 100, 60, 100) < 0.001
        True
    """
    if trials_a == 0 or trials_b == 0:
        return 1.0
    table = [[successes_a, trials_a - successes_a], [successes_b, trials_b - successes_b]]
    return float(stats.fisher_exact(table, alternative="two-sided").pvalue)


def bootstrap_interval(
    num_rows: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Compute a percentile bootstrap interval of a statistic over the rows of a table.

    ``statistic`` receives a ``(b, num_rows)`` array of row indices, one resample per row, and returns
    the ``b`` values of the statistic. Resamples are drawn in chunks to bound memory.

    Example:
        >>> values = np.arange(100.0)
        >>> low, high = bootstrap_interval(100, lambda index: values[index].mean(axis=1), 500, seed=0)
        >>> 40 < low < 49.5 < high < 59
        True
    """
    if num_rows == 0:
        return float("nan"), float("nan")
    generator = np.random.default_rng(seed)
    chunk = max(1, _MAX_BOOTSTRAP_INDICES // num_rows)
    values = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        index = generator.integers(0, num_rows, size=(size, num_rows))
        values.append(np.asarray(statistic(index), dtype=np.float64))
    samples = np.concatenate(values)
    alpha = 1.0 - confidence
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def macro_f1(target: np.ndarray, prediction: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Compute the F1 score averaged over ``labels``, with 0 for a class that is never predicted nor present.

    Matches ``sklearn.metrics.f1_score(target, prediction, labels=labels, average="macro",
    zero_division=0)``.
    """
    index = np.arange(len(target))[None, :]
    return float(macro_f1_resampled(target, prediction, labels, num_classes, index)[0])


def macro_f1_resampled(
    target: np.ndarray, prediction: np.ndarray, labels: np.ndarray, num_classes: int, index: np.ndarray
) -> np.ndarray:
    """Compute the macro F1 over ``labels`` for each resample, given as one row of ``index``."""
    resamples = index.shape[0]
    if len(labels) == 0:
        return np.zeros(resamples)
    codes = target[index] * num_classes + prediction[index]
    codes = codes + (np.arange(resamples) * num_classes * num_classes)[:, None]
    confusion = np.bincount(codes.ravel(), minlength=resamples * num_classes * num_classes)
    confusion = confusion.reshape(resamples, num_classes, num_classes)

    true_positive = confusion[:, labels, labels]
    actual = confusion.sum(axis=2)[:, labels]
    predicted = confusion.sum(axis=1)[:, labels]
    denominator = actual + predicted
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros(true_positive.shape), where=denominator > 0)
    return f1.mean(axis=1)


@dataclass(frozen=True)
class Calibration:
    """Expected calibration error with its reliability diagram, over equal-width confidence bins.

    ``accuracy`` and ``confidence`` are NaN for an empty bin.
    """

    ece: float
    edges: np.ndarray
    counts: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int) -> Calibration:
    """Compute the expected calibration error of top-class confidences.

    ECE is the mean over bins of ``|accuracy - mean confidence|``, weighted by the fraction of images in
    the bin. A confidence of exactly 1.0 falls into the last bin.

    Example:
        >>> result = calibration(np.array([0.9, 0.9, 0.6, 0.6]), np.array([1, 1, 1, 0]), bins=10)
        >>> round(result.ece, 3)
        0.1
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    correct_sum = np.bincount(which, weights=correct.astype(np.float64), minlength=bins)
    confidence_sum = np.bincount(which, weights=confidence.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(counts > 0, correct_sum / counts, np.nan)
        mean_confidence = np.where(counts > 0, confidence_sum / counts, np.nan)
    total = counts.sum()
    gaps = np.abs(np.nan_to_num(accuracy) - np.nan_to_num(mean_confidence)) * counts
    ece = float(gaps.sum() / total) if total else float("nan")
    return Calibration(ece=ece, edges=edges, counts=counts, accuracy=accuracy, confidence=mean_confidence)
