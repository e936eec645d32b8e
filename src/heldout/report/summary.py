"""Compute the report's figures from a run: per-split scores with intervals, gaps, per-class scores."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from heldout.report.load import Predictions, Run
from heldout.report.settings import ReportSettings
from heldout.report.stats import (
    Calibration,
    bootstrap_interval,
    calibration,
    clopper_pearson,
    compare_proportions,
    macro_f1,
    macro_f1_resampled,
)

# Probability floor for the per-image cross-entropy, so a probability stored as 0 gives a finite loss.
_MIN_PROBABILITY = 1e-12

CLOPPER_PEARSON = "exact Clopper-Pearson binomial"
BOOTSTRAP = "percentile bootstrap"
NO_INTERVAL = "none (no per-image predictions)"


@dataclass(frozen=True)
class Estimate:
    """A figure with its confidence interval; ``value`` is ``None`` when the run did not record it."""

    value: float | None
    low: float | None = None
    high: float | None = None
    method: str = NO_INTERVAL


@dataclass(frozen=True)
class SplitSummary:
    """Accuracy, macro F1 and loss of one split, with the image count and correct count behind them."""

    split: str
    images: int | None
    correct: int | None
    accuracy: Estimate
    macro_f1: Estimate
    loss: Estimate
    source: str


@dataclass(frozen=True)
class Gap:
    """Accuracy of split ``first`` minus accuracy of split ``second``, with Fisher's exact test p-value."""

    first: str
    second: str
    difference: float | None
    p_value: float | None
    significant: bool


@dataclass(frozen=True)
class ClassScores:
    """Per-class scores on one split. Recall and F1 are ``None`` when the class has no images there.

    Precision is ``None`` when the class was never predicted on the split.
    """

    precision: float | None
    recall: float | None
    f1: float | None
    support: int
    correct: int


@dataclass(frozen=True)
class ClassSummary:
    """One class on validation and test, with its recall drop and the p-value of that drop."""

    index: int
    name: str
    val: ClassScores
    test: ClassScores
    recall_drop: float | None
    p_value: float | None


@dataclass
class Summary:
    """All figures of the report."""

    splits: dict[str, SplitSummary]
    gaps: dict[str, Gap]
    classes: list[ClassSummary]
    calibration: dict[str, Calibration]
    notes: list[str] = field(default_factory=list)


def summarize(run: Run, settings: ReportSettings) -> Summary:
    """Compute every figure of the report from a loaded run."""
    notes: list[str] = []
    splits = {
        "train": _summarize_train(run, settings, notes),
        "val": _summarize_predictions("val", run.val, len(run.classes), settings),
        "test": _summarize_predictions("test", run.test, len(run.classes), settings),
    }
    for split in ("val", "test"):
        _check_recorded_accuracy(run, splits[split], notes)
    _check_same_checkpoint(run, notes)

    gaps = {
        "train-val": _gap(splits["train"], splits["val"], settings),
        "val-test": _gap(splits["val"], splits["test"], settings),
    }
    calibrations = {
        split: calibration(
            _confidence(predictions), predictions.prediction == predictions.target, settings.calibration_bins
        )
        for split, predictions in (("val", run.val), ("test", run.test))
    }
    return Summary(
        splits=splits, gaps=gaps, classes=summarize_classes(run), calibration=calibrations, notes=notes
    )


def summarize_classes(run: Run) -> list[ClassSummary]:
    """Compute precision, recall, F1 and support per class on validation and test."""
    val_scores = _class_scores(run.val, len(run.classes))
    test_scores = _class_scores(run.test, len(run.classes))
    rows = []
    for index, name in enumerate(run.classes):
        val, test = val_scores[index], test_scores[index]
        drop = p_value = None
        if val.recall is not None and test.recall is not None:
            drop = val.recall - test.recall
            p_value = compare_proportions(val.correct, val.support, test.correct, test.support)
        rows.append(
            ClassSummary(index=index, name=name, val=val, test=test, recall_drop=drop, p_value=p_value)
        )
    return rows


def _check_same_checkpoint(run: Run, notes: list[str]) -> None:
    """Add a note when validation and test predictions come from different checkpoint files."""
    val, test = run.metrics.get("val_checkpoint"), run.metrics.get("test_checkpoint")
    if val and test and Path(val).name != Path(test).name:
        notes.append(f"Validation predictions come from {val} and test predictions from {test}, so the gaps "
                     "compare two checkpoints. Run heldout validate and heldout test with the same --ckpt_path.")


def _summarize_train(run: Run, settings: ReportSettings, notes: list[str]) -> SplitSummary:
    accuracy = _recorded_train_value(run, "train/acc")
    # The images seen in the best epoch; runs written before that count was logged give the split's size.
    seen = _recorded_train_value(run, "train/images")
    images = int(seen) if seen is not None else run.num_samples("train")
    correct = None
    accuracy_estimate = Estimate(accuracy)
    if accuracy is not None and images:
        correct = min(images, max(0, round(accuracy * images)))
        low, high = clopper_pearson(correct, images, settings.confidence_level)
        accuracy_estimate = Estimate(accuracy, low, high, CLOPPER_PEARSON)
    elif accuracy is not None:
        notes.append("The number of training images was not recorded, so train accuracy has no interval.")
    return SplitSummary(
        split="train",
        images=images,
        correct=correct,
        accuracy=accuracy_estimate,
        macro_f1=Estimate(_recorded_train_value(run, "train/f1")),
        loss=Estimate(_recorded_train_value(run, "train/loss")),
        source="training log",
    )


def _recorded_train_value(run: Run, key: str) -> float | None:
    """Return a train figure from metrics.json, or from the history row of the best epoch."""
    value = _finite(run.metrics.get(key))
    if value is not None or run.history is None or key not in run.history.columns:
        return value
    history = run.history
    best_epoch = run.metrics.get("best_epoch")
    rows = history[history["epoch"] == best_epoch] if best_epoch is not None else history.iloc[0:0]
    column = (rows if not rows.empty else history)[key].dropna()
    return _finite(column.iloc[-1]) if not column.empty else None


def _summarize_predictions(
    split: str, predictions: Predictions, num_classes: int, settings: ReportSettings
) -> SplitSummary:
    target, prediction = predictions.target, predictions.prediction
    images = len(predictions)
    correct = int(np.sum(target == prediction))
    low, high = clopper_pearson(correct, images, settings.confidence_level)
    accuracy = Estimate(correct / images, low, high, CLOPPER_PEARSON)

    # Macro F1 averages over the classes present in this split, so a class without images does not
    # count as an F1 of zero.
    labels = np.unique(target)
    f1_low, f1_high = bootstrap_interval(
        images,
        lambda index: macro_f1_resampled(target, prediction, labels, num_classes, index),
        settings.bootstrap_resamples,
        settings.seed,
        settings.confidence_level,
    )
    f1 = Estimate(macro_f1(target, prediction, labels, num_classes), f1_low, f1_high, BOOTSTRAP)

    losses = per_image_loss(predictions)
    loss_low, loss_high = bootstrap_interval(
        images,
        lambda index: losses[index].mean(axis=1),
        settings.bootstrap_resamples,
        settings.seed,
        settings.confidence_level,
    )
    loss = Estimate(float(losses.mean()), loss_low, loss_high, BOOTSTRAP)
    return SplitSummary(split, images, correct, accuracy, f1, loss, source=f"predictions/{split}.csv")


def per_image_loss(predictions: Predictions) -> np.ndarray:
    """Return the cross-entropy of each image: minus the log of the probability given to its true class."""
    rows = np.arange(len(predictions))
    probability = predictions.probabilities[rows, predictions.target]
    return -np.log(np.maximum(probability, _MIN_PROBABILITY))


def _confidence(predictions: Predictions) -> np.ndarray:
    return predictions.probabilities[np.arange(len(predictions)), predictions.prediction]


def _check_recorded_accuracy(run: Run, split: SplitSummary, notes: list[str]) -> None:
    recorded = _finite(run.metrics.get(f"{split.split}/acc"))
    measured = split.accuracy.value
    if recorded is None or measured is None or split.images is None:
        return
    # Half an image of rounding plus float noise.
    if abs(recorded - measured) > 0.5 / split.images + 1e-6:
        notes.append(
            f"metrics.json records {split.split}/acc = {recorded:.4f}, but {split.source} gives "
            f"{measured:.4f}; the predictions may come from a different checkpoint than the metrics."
        )


def _gap(first: SplitSummary, second: SplitSummary, settings: ReportSettings) -> Gap:
    if first.accuracy.value is None or second.accuracy.value is None:
        return Gap(first.split, second.split, None, None, significant=False)
    difference = first.accuracy.value - second.accuracy.value
    if first.correct is None or second.correct is None or not first.images or not second.images:
        return Gap(first.split, second.split, difference, None, significant=False)
    p_value = compare_proportions(first.correct, first.images, second.correct, second.images)
    return Gap(
        first.split, second.split, difference, p_value, significant=p_value < settings.significance_level
    )


def _class_scores(predictions: Predictions, num_classes: int) -> list[ClassScores]:
    labels = list(range(num_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        predictions.target, predictions.prediction, labels=labels, zero_division=0
    )
    predicted = np.bincount(predictions.prediction, minlength=num_classes)
    correct = np.bincount(
        predictions.target[predictions.target == predictions.prediction], minlength=num_classes
    )
    scores = []
    for index in labels:
        present = support[index] > 0
        scores.append(
            ClassScores(
                precision=float(precision[index]) if predicted[index] > 0 else None,
                recall=float(recall[index]) if present else None,
                f1=float(f1[index]) if present else None,
                support=int(support[index]),
                correct=int(correct[index]),
            )
        )
    return scores


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
