"""Decide which known cause, if any, makes validation accuracy an unfair estimate of test accuracy."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from heldout.report.settings import ReportSettings
from heldout.report.summary import ClassSummary, Summary
from heldout.report.text import format_accuracy, format_p, format_points

# Causes from most to least severe. A validation split that disagrees with test is the failure the report
# exists to catch. Too few validation images hides every other check. A few failing classes still bias
# the overall figure. Overfitting and poor calibration hurt the model but leave validation accuracy a
# fair estimate of test accuracy.
VAL_NOT_REPRESENTATIVE = "val_not_representative"
TOO_FEW_VAL_IMAGES = "too_few_val_images"
FAILURE_IN_FEW_CLASSES = "failure_in_few_classes"
OVERFITTING = "overfitting"
POOR_CALIBRATION = "poor_calibration"
FAIR_ESTIMATE = "fair_estimate"
SEVERITY_ORDER = (
    VAL_NOT_REPRESENTATIVE,
    TOO_FEW_VAL_IMAGES,
    FAILURE_IN_FEW_CLASSES,
    OVERFITTING,
    POOR_CALIBRATION,
)


@dataclass(frozen=True)
class Finding:
    """One cause the evidence points to, with the sentence that states it and the numbers behind it."""

    cause: str
    title: str
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)


def judge(summary: Summary, settings: ReportSettings) -> list[Finding]:
    """Return the causes that apply, most severe first, or a single ``fair_estimate`` finding."""
    checks = (
        _check_val_representative,
        _check_val_size,
        _check_class_failures,
        _check_overfitting,
        _check_calibration,
    )
    findings = [finding for check in checks if (finding := check(summary, settings)) is not None]
    findings.sort(key=lambda finding: SEVERITY_ORDER.index(finding.cause))
    if findings:
        return findings
    return [_fair_estimate(summary, settings)]


def write_verdict(findings: list[Finding], leakage_sentence: str | None = None) -> str:
    """Join the findings into one paragraph, most severe first."""
    if findings[0].cause == FAIR_ESTIMATE:
        sentences = [findings[0].detail]
    elif len(findings) == 1:
        sentences = [f"The evidence points to one cause. {findings[0].detail}"]
    else:
        sentences = [f"The evidence points to {len(findings)} causes, most severe first."]
        sentences += [f"({number}) {finding.detail}" for number, finding in enumerate(findings, start=1)]
    if leakage_sentence:
        sentences.append(leakage_sentence)
    return " ".join(sentences)


def _check_val_representative(summary: Summary, settings: ReportSettings) -> Finding | None:
    gap = summary.gaps["val-test"]
    if gap.difference is None or gap.p_value is None:
        return None
    if abs(gap.difference) <= settings.val_test_gap or not gap.significant:
        return None
    val, test = summary.splits["val"], summary.splits["test"]
    direction = "above" if gap.difference > 0 else "below"
    consequence = "overestimates" if gap.difference > 0 else "underestimates"
    val_text = format_accuracy(val.accuracy, settings.confidence_level)
    test_text = format_accuracy(test.accuracy, settings.confidence_level)
    detail = (
        f"Validation is not representative of the test data: validation accuracy {val_text} is "
        f"{format_points(abs(gap.difference))} {direction} test accuracy {test_text}, beyond the "
        f"{format_points(settings.val_test_gap)} limit (Fisher's exact test {format_p(gap.p_value)}). "
        f"Validation therefore {consequence} accuracy on new data."
    )
    numbers = {
        "val_accuracy": val.accuracy.value,
        "test_accuracy": test.accuracy.value,
        "difference": gap.difference,
        "p_value": gap.p_value,
        "limit": settings.val_test_gap,
    }
    return Finding(VAL_NOT_REPRESENTATIVE, "Validation not representative of test", detail, numbers)


def _check_val_size(summary: Summary, settings: ReportSettings) -> Finding | None:
    val = summary.splits["val"]
    images = val.images or 0
    low, high = val.accuracy.low, val.accuracy.high
    width = (high - low) if low is not None and high is not None else math.inf
    if images >= settings.min_val_images and width <= settings.max_val_interval_width:
        return None
    val_text = format_accuracy(val.accuracy, settings.confidence_level)
    detail = (
        f"Too few validation images to judge: {images} images give validation accuracy {val_text}, an "
        f"interval {format_points(width)} wide, while the report needs at least {settings.min_val_images} "
        f"images and a width of at most {format_points(settings.max_val_interval_width)}."
    )
    numbers = {
        "images": images,
        "interval_width": width,
        "min_images": settings.min_val_images,
        "max_interval_width": settings.max_val_interval_width,
    }
    return Finding(TOO_FEW_VAL_IMAGES, "Too few validation images", detail, numbers)


def failing_classes(summary: Summary, settings: ReportSettings) -> tuple[list[ClassSummary], int]:
    """Return the classes whose recall drops significantly from validation to test, and how many were judged.

    A class is judged when it has at least ``min_class_support`` images in both splits.
    """
    judged = [
        row
        for row in summary.classes
        if row.recall_drop is not None
        and min(row.val.support, row.test.support) >= settings.min_class_support
    ]
    failing = [
        row
        for row in judged
        if row.recall_drop > settings.class_recall_drop
        and row.p_value is not None
        and row.p_value < settings.significance_level
    ]
    failing.sort(key=lambda row: row.recall_drop or 0.0, reverse=True)
    return failing, len(judged)


def _check_class_failures(summary: Summary, settings: ReportSettings) -> Finding | None:
    failing, judged = failing_classes(summary, settings)
    allowed = max(1, math.floor(settings.max_failing_class_fraction * judged))
    if not failing or len(failing) > allowed:
        return None
    listed = ", ".join(
        f"{row.name} (recall {row.val.recall:.2f} on validation, {row.test.recall:.2f} on test, "
        f"{format_p(row.p_value)})"
        for row in failing
    )
    detail = (
        f"The failure is concentrated in {len(failing)} of {judged} classes, whose test recall is more "
        f"than {format_points(settings.class_recall_drop)} below their validation recall: {listed}."
    )
    numbers = {
        "classes": [row.name for row in failing],
        "judged_classes": judged,
        "recall_drops": [row.recall_drop for row in failing],
        "limit": settings.class_recall_drop,
    }
    return Finding(FAILURE_IN_FEW_CLASSES, "Failure concentrated in a few classes", detail, numbers)


def _check_overfitting(summary: Summary, settings: ReportSettings) -> Finding | None:
    gap = summary.gaps["train-val"]
    if gap.difference is None or gap.difference <= settings.overfit_gap or not gap.significant:
        return None
    train, val = summary.splits["train"], summary.splits["val"]
    train_text = format_accuracy(train.accuracy, settings.confidence_level)
    val_text = format_accuracy(val.accuracy, settings.confidence_level)
    detail = (
        f"The model overfits: training accuracy {train_text} on {train.images} images is "
        f"{format_points(gap.difference)} above validation accuracy {val_text}, beyond the "
        f"{format_points(settings.overfit_gap)} limit (Fisher's exact test {format_p(gap.p_value)}). "
        f"Training accuracy is measured during training, with augmentation and dropout where they are on, "
        f"which usually lowers it, so the gap on unaugmented training images is likely larger."
    )
    numbers = {
        "train_accuracy": train.accuracy.value,
        "val_accuracy": val.accuracy.value,
        "difference": gap.difference,
        "p_value": gap.p_value,
        "limit": settings.overfit_gap,
    }
    return Finding(OVERFITTING, "Overfitting", detail, numbers)


def _check_calibration(summary: Summary, settings: ReportSettings) -> Finding | None:
    result = summary.calibration["test"]
    if math.isnan(result.ece) or result.ece <= settings.ece_limit:
        return None
    test = summary.splits["test"]
    counts = result.counts
    mean_confidence = float((result.confidence[counts > 0] * counts[counts > 0]).sum() / counts.sum())
    accuracy = test.accuracy.value or 0.0
    tendency = "overconfident" if mean_confidence > accuracy else "underconfident"
    detail = (
        f"The model is poorly calibrated: expected calibration error on test is {result.ece:.3f}, above the "
        f"{settings.ece_limit:.3f} limit. It is {tendency}, with mean confidence {mean_confidence:.1%} "
        f"against accuracy {accuracy:.1%}, so its probabilities should not be read as chances of being right."
    )
    numbers = {
        "ece": result.ece,
        "limit": settings.ece_limit,
        "mean_confidence": mean_confidence,
        "accuracy": accuracy,
    }
    return Finding(POOR_CALIBRATION, "Poor calibration", detail, numbers)


def _fair_estimate(summary: Summary, settings: ReportSettings) -> Finding:
    val, test = summary.splits["val"], summary.splits["test"]
    gap = summary.gaps["val-test"]
    difference = gap.difference or 0.0
    val_text = format_accuracy(val.accuracy, settings.confidence_level)
    test_text = format_accuracy(test.accuracy, settings.confidence_level)
    limit = format_points(settings.val_test_gap)
    within = (
        f"within the {limit} limit"
        if abs(difference) <= settings.val_test_gap
        else (f"more than the {limit} limit but not significant")
    )
    detail = (
        f"Validation is a fair estimate of test accuracy: validation accuracy {val_text} on {val.images} "
        f"images and test accuracy {test_text} on {test.images} images differ by "
        f"{format_points(abs(difference))} (Fisher's exact test {format_p(gap.p_value)}), which is {within}. "
        f"No other check failed."
    )
    numbers = {
        "val_accuracy": val.accuracy.value,
        "test_accuracy": test.accuracy.value,
        "difference": gap.difference,
        "p_value": gap.p_value,
    }
    return Finding(FAIR_ESTIMATE, "Validation is a fair estimate", detail, numbers)
