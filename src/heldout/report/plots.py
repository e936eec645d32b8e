"""Draw the report's PNG plots with matplotlib's Agg canvas, without touching pyplot's global state."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from heldout.errors import DataError
from heldout.report.load import Predictions, Run
from heldout.report.stats import Calibration

log = logging.getLogger(__name__)

PLOT_DIR = "report"
_DPI = 110
_SPLIT_COLORS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
# Confusion matrices annotate each cell only up to this many classes; beyond it the numbers overlap.
_MAX_ANNOTATED_CLASSES = 20
# Tick labels are left out beyond this many classes because they no longer fit.
_MAX_LABELLED_CLASSES = 60
_MAX_NAME_LENGTH = 18
# Gallery images are decoded at reduced scale where the format allows, because a tile is ~2 inches wide.
_GALLERY_DECODE_SIZE = 256


def short_name(name: str) -> str:
    """Shorten a class name to fit a tick label, marking the cut with an ellipsis."""
    return name if len(name) <= _MAX_NAME_LENGTH else name[: _MAX_NAME_LENGTH - 1] + "…"


def plot_learning_curves(
    history: pd.DataFrame, best_epoch: int | None, stopped_epoch: int | None, path: Path
) -> Path | None:
    """Plot train and validation loss and accuracy per epoch, marking the best and the stop epoch.

    Returns ``None`` and draws nothing when the history has no loss or accuracy column.
    """
    panels = [
        (metric, title)
        for metric, title in (("loss", "Loss"), ("acc", "Accuracy"))
        if any(f"{split}/{metric}" in history.columns for split in ("train", "val"))
    ]
    if not panels:
        return None
    figure = Figure(figsize=(6 * len(panels), 4.2), layout="constrained")
    for position, (metric, title) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, len(panels), position)
        for split, label in (("train", "train (augmented)"), ("val", "validation")):
            column = f"{split}/{metric}"
            if column not in history.columns:
                continue
            rows = history[["epoch", column]].dropna()
            axes.plot(
                rows["epoch"], rows[column], marker="o", markersize=3, label=label, color=_SPLIT_COLORS[split]
            )
        if best_epoch is not None:
            axes.axvline(best_epoch, color="tab:red", linestyle="--", label=f"best epoch ({best_epoch})")
        if stopped_epoch is not None and stopped_epoch != best_epoch:
            axes.axvline(stopped_epoch, color="gray", linestyle=":", label=f"stopped ({stopped_epoch})")
        axes.set_title(f"{title} per epoch")
        axes.set_xlabel("epoch")
        axes.set_ylabel(title.lower())
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    return _save(figure, path)


def plot_confusion(predictions: Predictions, classes: list[str], split_title: str, path: Path) -> Path:
    """Plot the confusion matrix of one split as counts and as fractions of each true class."""
    num_classes = len(classes)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (predictions.target, predictions.prediction), 1)
    row_totals = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, row_totals, out=np.zeros(counts.shape), where=row_totals > 0)

    side = min(14.0, max(4.5, 0.45 * num_classes + 2.5))
    figure = Figure(figsize=(2 * side + 1, side + 0.6), layout="constrained")
    figure.suptitle(f"Confusion matrix, {split_title} ({len(predictions)} images)")
    panels = ((counts, "counts", "d"), (normalized, "fraction of true class (rows sum to 1)", ".2f"))
    for position, (matrix, title, number_format) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, 2, position)
        image = axes.imshow(matrix, cmap="Blues", vmin=0, vmax=None if number_format == "d" else 1)
        figure.colorbar(image, ax=axes, shrink=0.8)
        axes.set_title(title)
        axes.set_xlabel("predicted class")
        axes.set_ylabel("true class")
        _label_class_axes(axes, classes)
        if num_classes <= _MAX_ANNOTATED_CLASSES:
            _annotate_cells(axes, matrix, number_format, row_totals.ravel())
    return _save(figure, path)


def plot_reliability(calibrations: dict[str, Calibration], path: Path) -> Path:
    """Plot a reliability diagram per split: accuracy against confidence, with image counts per bin."""
    figure = Figure(figsize=(5.5 * len(calibrations), 6.5), layout="constrained")
    grid = figure.add_gridspec(2, len(calibrations), height_ratios=(3, 1))
    for column, (split, result) in enumerate(calibrations.items()):
        centers = (result.edges[:-1] + result.edges[1:]) / 2
        width = result.edges[1] - result.edges[0]
        top = figure.add_subplot(grid[0, column])
        top.bar(
            centers,
            np.nan_to_num(result.accuracy),
            width=width * 0.9,
            color=_SPLIT_COLORS.get(split),
            edgecolor="black",
            linewidth=0.5,
            label="accuracy in bin",
        )
        top.plot([0, 1], [0, 1], color="gray", linestyle="--", label="perfect calibration")
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_title(f"Reliability, {_split_title(split)}: ECE = {result.ece:.3f}")
        top.set_ylabel("accuracy")
        top.legend(loc="upper left", fontsize="small")
        top.grid(alpha=0.3)

        bottom = figure.add_subplot(grid[1, column], sharex=top)
        bottom.bar(centers, result.counts, width=width * 0.9, color="gray")
        bottom.set_xlabel("confidence of the predicted class")
        bottom.set_ylabel("images")
        bottom.grid(alpha=0.3)
    return _save(figure, path)


def plot_mistakes(run: Run, count: int, path: Path) -> tuple[Path | None, int]:
    """Show the most confident wrong test predictions as an image grid with true and predicted class.

    A file that is missing or cannot be decoded gets a tile with the text "image not available". Returns
    the plot path, or ``None`` when there are no mistakes or ``count`` is 0, and the number of images that
    could not be shown.
    """
    predictions = run.test
    rows = np.arange(len(predictions))
    confidence = predictions.probabilities[rows, predictions.prediction]
    wrong = np.flatnonzero(predictions.target != predictions.prediction)
    chosen = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
    if len(chosen) == 0:
        return None, 0

    columns = min(4, len(chosen))
    lines = math.ceil(len(chosen) / columns)
    figure = Figure(figsize=(3.0 * columns, 3.4 * lines + 0.5), layout="constrained")
    figure.suptitle(f"Most confident test mistakes ({len(chosen)} of {len(wrong)})")
    unavailable = 0
    for position, row in enumerate(chosen, start=1):
        axes = figure.add_subplot(lines, columns, position)
        axes.set_xticks([])
        axes.set_yticks([])
        image = _load_image(resolve_image_path(predictions.paths[row], run.roots))
        if image is None:
            unavailable += 1
            axes.text(0.5, 0.5, "image not available", ha="center", va="center", transform=axes.transAxes)
        else:
            axes.imshow(image)
        true_name = short_name(run.classes[predictions.target[row]])
        predicted_name = short_name(run.classes[predictions.prediction[row]])
        axes.set_title(
            f"true: {true_name}\npredicted: {predicted_name}\nconfidence {confidence[row]:.0%}", fontsize=9
        )
    return _save(figure, path), unavailable


def plot_class_counts(manifest: pd.DataFrame, classes: list[str], path: Path) -> Path | None:
    """Plot the number of images of each class in each split, from the split manifest."""
    if manifest.empty:
        return None
    splits = [split for split in ("train", "val", "test") if split in set(manifest["split"])]
    counts = manifest.groupby(["class", "split"]).size().unstack(fill_value=0)
    names = classes + sorted(set(counts.index) - set(classes))
    counts = counts.reindex(index=names, columns=splits, fill_value=0)

    figure = Figure(figsize=(min(20.0, max(6.0, 0.5 * len(names) + 2)), 4.8), layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(splits))
    positions = np.arange(len(names))
    for offset, split in enumerate(splits):
        axes.bar(
            positions + (offset - (len(splits) - 1) / 2) * width,
            counts[split],
            width=width,
            label=f"{_split_title(split)} ({int(counts[split].sum())})",
            color=_SPLIT_COLORS[split],
        )
    axes.set_title("Images per class and split")
    axes.set_xlabel("class")
    axes.set_ylabel("images")
    if len(names) <= _MAX_LABELLED_CLASSES:
        axes.set_xticks(positions, [short_name(name) for name in names], rotation=45, ha="right")
    # Headroom above the tallest bar keeps the legend clear of the bars.
    axes.set_ylim(0, max(1, int(counts.to_numpy().max())) * 1.25)
    axes.legend(loc="upper center", ncol=len(splits))
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def resolve_image_path(path: str, roots: dict[str, str]) -> Path:
    """Turn a ``SOURCE:relative/path`` entry of a prediction table into a file path using the manifest roots.

    A path without a known ``SOURCE:`` prefix is returned as written.
    """
    source, separator, relative = path.partition(":")
    if separator and source in roots:
        return Path(roots[source]) / relative
    return Path(path)


def _load_image(path: Path) -> np.ndarray | None:
    from heldout.data.decode import decode_image

    try:
        return decode_image(path, draft_size=_GALLERY_DECODE_SIZE)
    except DataError as error:
        log.info("Gallery image left out: %s", error)
        return None


def _label_class_axes(axes: Axes, classes: list[str]) -> None:
    if len(classes) > _MAX_LABELLED_CLASSES:
        return
    ticks = np.arange(len(classes))
    names = [short_name(name) for name in classes]
    fontsize = 9 if len(classes) <= 20 else 7
    axes.set_xticks(ticks, names, rotation=45, ha="right", fontsize=fontsize)
    axes.set_yticks(ticks, names, fontsize=fontsize)


def _annotate_cells(axes: Axes, matrix: np.ndarray, number_format: str, row_totals: np.ndarray) -> None:
    size = matrix.shape[0]
    fontsize = 8 if size <= 10 else 6
    threshold = matrix.max() / 2 if matrix.max() > 0 else 1
    for true_index in range(size):
        if row_totals[true_index] == 0:
            continue
        for predicted_index in range(size):
            value = matrix[true_index, predicted_index]
            if value == 0:
                continue
            color = "white" if value > threshold else "black"
            axes.text(
                predicted_index,
                true_index,
                format(value, number_format),
                ha="center",
                va="center",
                color=color,
                fontsize=fontsize,
            )


def _split_title(split: str) -> str:
    return {"val": "validation"}.get(split, split)


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=_DPI)
    return path
