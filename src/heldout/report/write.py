"""Render the report as Markdown for people and as JSON for programs, from the same figures."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from heldout import __version__
from heldout.report.settings import ReportSettings
from heldout.report.summary import BOOTSTRAP, CLOPPER_PEARSON, ClassScores, Estimate, Summary
from heldout.report.text import format_p, format_points
from heldout.report.verdict import Finding, failing_classes

REPORT_MARKDOWN = "report.md"
REPORT_JSON = "report.json"
_SPLIT_TITLES = {"train": "train", "val": "validation", "test": "test"}
# Number of classes named in the sentence about the largest recall drops.
_HIGHLIGHTED_CLASSES = 3


@dataclass
class ReportContent:
    """Everything the report shows, gathered before rendering."""

    run_name: str
    summary: Summary
    findings: list[Finding]
    verdict: str
    settings: ReportSettings
    plots: dict[str, str | None]
    audit_counts: dict[str, int] | None
    skipped_counts: dict[str, int]
    unavailable_gallery_images: int = 0
    notes: list[str] = field(default_factory=list)


def write_markdown(content: ReportContent, path: Path) -> Path:
    """Write ``report.md``."""
    path.write_text(render_markdown(content), encoding="utf-8")
    return path


def write_json(content: ReportContent, path: Path) -> Path:
    """Write ``report.json``, with NaN written as ``null`` so that strict JSON parsers accept it."""
    path.write_text(
        json.dumps(_jsonable(report_dict(content)), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return path


def report_dict(content: ReportContent) -> dict[str, Any]:
    """Collect the report's figures as plain Python values."""
    summary = content.summary
    return {
        "heldout_version": __version__,
        "run": content.run_name,
        "verdict": {
            "causes": [finding.cause for finding in content.findings],
            "text": content.verdict,
            "findings": [asdict(finding) for finding in content.findings],
        },
        "splits": {name: asdict(split) for name, split in summary.splits.items()},
        "gaps": {name: asdict(gap) for name, gap in summary.gaps.items()},
        "classes": [asdict(row) for row in summary.classes],
        "calibration": {
            split: {
                "ece": result.ece,
                "bin_edges": result.edges,
                "bin_counts": result.counts,
                "bin_accuracy": result.accuracy,
                "bin_confidence": result.confidence,
            }
            for split, result in summary.calibration.items()
        },
        "interval_methods": {"accuracy": CLOPPER_PEARSON, "macro_f1": BOOTSTRAP, "loss": BOOTSTRAP},
        "plots": content.plots,
        "audit": content.audit_counts,
        "skipped_files": content.skipped_counts,
        "notes": content.notes,
        "settings": asdict(content.settings),
    }


def render_markdown(content: ReportContent) -> str:
    """Render the whole report as GitHub-flavoured Markdown."""
    sections = [
        f"# Validation report: {content.run_name}\n",
        _verdict_section(content),
        _splits_section(content),
        _gaps_section(content),
        _classes_section(content),
        _calibration_section(content),
        _plots_section(content),
        _data_section(content),
        _settings_section(content.settings),
    ]
    return "\n".join(sections)


def _verdict_section(content: ReportContent) -> str:
    titles = ", ".join(finding.title for finding in content.findings)
    return f"## Verdict\n\n**{titles}.**\n\n{content.verdict}\n"


def _splits_section(content: ReportContent) -> str:
    settings = content.settings
    level = f"{settings.confidence_level:.0%}"
    lines = [
        "## Scores by split\n",
        f"| Split | Images | Accuracy ({level} CI) | Macro F1 ({level} CI) | Loss ({level} CI) | Source |",
        "|---|---:|---|---|---|---|",
    ]
    for name, split in content.summary.splits.items():
        images = "not recorded" if split.images is None else str(split.images)
        source = "training log" if name == "train" else f"`{split.source}`"
        lines.append(
            f"| {_SPLIT_TITLES[name]} | {images} | {_estimate(split.accuracy, percent=True)} | "
            f"{_estimate(split.macro_f1)} | {_estimate(split.loss)} | {source} |"
        )
    lines += [
        "",
        f"Accuracy intervals are exact Clopper-Pearson binomial intervals. Macro F1 and loss intervals are "
        f"percentile bootstrap intervals over {settings.bootstrap_resamples} resamples of the prediction "
        f"table (seed {settings.seed}). Macro F1 averages over the classes that have images in the split. "
        f"Loss is the "
        f"mean cross-entropy of the stored probabilities.",
        "",
        "Train figures come from the training log: they were measured during training (with augmentation and "
        "dropout where they are on) and averaged over "
        "the epoch, and there are no per-image train predictions. Train accuracy therefore gets a binomial "
        "interval over the recorded number of training images, and train F1 and loss get no interval.",
        "",
    ]
    return "\n".join(lines)


def _gaps_section(content: ReportContent) -> str:
    settings = content.settings
    limits = {"train-val": settings.overfit_gap, "val-test": settings.val_test_gap}
    lines = [
        "## Gaps between splits\n",
        f"Each gap is tested with Fisher's exact test on the two accuracies as independent samples; "
        f"significant means p < {settings.significance_level}.\n",
        "| Gap | Difference | p-value | Significant | Limit | Reading |",
        "|---|---:|---:|---|---:|---|",
    ]
    for name, gap in content.summary.gaps.items():
        title = f"{_SPLIT_TITLES[gap.first]} − {_SPLIT_TITLES[gap.second]}"
        if gap.difference is None:
            lines.append(f"| {title} | not available | | | | One of the accuracies was not recorded. |")
            continue
        difference = f"{gap.difference * 100:+.1f} pp"
        p_value = format_p(gap.p_value).removeprefix("p = ").removeprefix("p ")
        significant = "yes" if gap.significant else "no"
        reading = _gap_reading(name, gap.difference, gap.significant, limits[name])
        lines.append(
            f"| {title} | {difference} | {p_value} | {significant} | {limits[name] * 100:.1f} pp "
            f"| {reading} |"
        )
    return "\n".join(lines) + "\n"


def _gap_reading(name: str, difference: float, significant: bool, limit: float) -> str:
    if name == "train-val":
        if difference > limit and significant:
            return "Training accuracy is far above validation accuracy: the model overfits."
        if difference > limit:
            return "Training accuracy is above validation by more than the limit, but not significantly."
        return "Training and validation accuracy are close: no sign of overfitting."
    if abs(difference) > limit and significant:
        direction = "overestimates" if difference > 0 else "underestimates"
        return f"Validation accuracy {direction} test accuracy beyond chance."
    if abs(difference) > limit:
        return "Validation and test differ by more than the limit, but not significantly."
    return "Validation accuracy matches test accuracy within the limit."


def _classes_section(content: ReportContent) -> str:
    summary, settings = content.summary, content.settings
    failing, judged = failing_classes(summary, settings)
    failing_names = {row.name for row in failing}
    rows = sorted(
        summary.classes,
        key=lambda row: -math.inf if row.recall_drop is None else row.recall_drop,
        reverse=True,
    )
    lines = ["## Per class\n"]
    dropped = [row for row in rows if row.recall_drop is not None and row.recall_drop > 0]
    if dropped:
        listed = ", ".join(
            f"**{row.name}** ({row.val.recall:.2f} → {row.test.recall:.2f})"
            for row in dropped[:_HIGHLIGHTED_CLASSES]
        )
        lines.append(f"Largest recall drops from validation to test: {listed}.\n")
    lines.append(
        f"Classes are sorted by recall drop. ⚠ marks a drop of more than "
        f"{format_points(settings.class_recall_drop)} with p < {settings.significance_level} (Fisher's exact "
        f"test), among the {judged} classes with at least {settings.min_class_support} images in both "
        f"splits. A class without images in a split is shown as absent and left out of that split's "
        f"macro F1.\n"
    )
    lines += [
        "| Class | Val precision | Val recall | Val F1 | Val images | Test precision | Test recall | Test F1 "
        "| Test images | Recall drop |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        mark = " ⚠" if row.name in failing_names else ""
        drop = "n/a" if row.recall_drop is None else f"{row.recall_drop * 100:+.1f} pp{mark}"
        lines.append(
            f"| {_escape(row.name)} | {_class_cells(row.val, 'validation')} | "
            f"{_class_cells(row.test, 'test')} | {drop} |"
        )
    return "\n".join(lines) + "\n"


def _class_cells(scores: ClassScores, split: str) -> str:
    if scores.support == 0:
        precision = "n/a" if scores.precision is None else f"{scores.precision:.2f}"
        return f"{precision} | absent from {split} | absent | 0"
    precision = "n/a" if scores.precision is None else f"{scores.precision:.2f}"
    return f"{precision} | {scores.recall:.2f} | {scores.f1:.2f} | {scores.support}"


def _calibration_section(content: ReportContent) -> str:
    calibrations = content.summary.calibration
    values = ", ".join(f"{_SPLIT_TITLES[split]} {result.ece:.3f}" for split, result in calibrations.items())
    lines = [
        "## Calibration\n",
        f"Expected calibration error (ECE) over {content.settings.calibration_bins} equal-width confidence "
        f"bins: "
        f"{values}. The limit on test is {content.settings.ece_limit:.3f}. ECE is the image-weighted mean "
        f"distance between accuracy and mean confidence in each bin.\n",
        _image("Reliability diagram", content.plots.get("reliability")),
    ]
    return "\n".join(lines)


def _plots_section(content: ReportContent) -> str:
    plots = content.plots
    lines = [
        "## Learning curves\n",
        _image("Learning curves", plots.get("learning_curves"), missing="history.csv not found or empty."),
        "## Confusion matrices\n",
        _image("Confusion matrix, validation", plots.get("confusion_val")),
        _image("Confusion matrix, test", plots.get("confusion_test")),
        "## Most confident test mistakes\n",
        _image("Most confident test mistakes", plots.get("mistakes"), missing="No test mistakes to show."),
    ]
    if content.unavailable_gallery_images:
        lines.append(
            f"{content.unavailable_gallery_images} of these images could not be loaded from the "
            f"folders recorded in `manifest.json`.\n"
        )
    lines += [
        "## Images per class and split\n",
        _image("Images per class and split", plots.get("class_counts"), missing="manifest.csv not found."),
    ]
    return "\n".join(lines)


def _data_section(content: ReportContent) -> str:
    lines = ["## Data checks\n"]
    if content.skipped_counts:
        listed = ", ".join(f"{source}: {count}" for source, count in content.skipped_counts.items())
        total = sum(content.skipped_counts.values())
        lines.append(f"- {total} unreadable files were left out of the run ({listed}); see `skipped.csv`.")
    else:
        lines.append("- No unreadable files were recorded in `skipped.csv`.")
    if content.audit_counts is None:
        lines.append("- No leakage audit found (`audit/audit.json`).")
    elif content.audit_counts:
        listed = ", ".join(f"{key}: {count}" for key, count in content.audit_counts.items())
        lines.append(f"- Leakage audit (`audit/audit.json`): {listed}.")
    else:
        lines.append(
            "- The leakage audit (`audit/audit.json`) has no duplicate or leak counts at its top level."
        )
    lines += [f"- {note}" for note in content.notes]
    return "\n".join(lines) + "\n"


def _settings_section(settings: ReportSettings) -> str:
    lines = ["## Thresholds\n", "| Setting | Value |", "|---|---:|"]
    lines += [f"| `report.{item.name}` | {getattr(settings, item.name)} |" for item in fields(settings)]
    return "\n".join(lines) + "\n"


def _estimate(estimate: Estimate, percent: bool = False) -> str:
    if estimate.value is None:
        return "not recorded"

    def number(value: float) -> str:
        return f"{value:.1%}" if percent else f"{value:.3f}"

    if estimate.low is None or estimate.high is None:
        return number(estimate.value)
    return f"{number(estimate.value)} ({number(estimate.low)} to {number(estimate.high)})"


def _image(title: str, path: str | None, missing: str = "Plot not available.") -> str:
    return f"![{title}]({path})\n" if path else f"{missing}\n"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
