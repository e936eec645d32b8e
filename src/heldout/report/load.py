"""Read a run folder: metrics, training history, prediction tables, manifest and audit results."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from heldout.errors import DataError

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
PREDICTIONS_DIR = "predictions"
MANIFEST_FILE = "manifest.csv"
MANIFEST_META_FILE = "manifest.json"
SKIPPED_FILE = "skipped.csv"
AUDIT_FILE = "audit/audit.json"
PREDICTION_SOURCES = ("data_dir", "val_dir", "test_dir")

_FIT_HINT = "Train a model first with `heldout fit -c CONFIG`, which writes the run folder."
_TEST_HINT = "run `heldout test -c CONFIG --ckpt_path best` on this run to write it."
_VALIDATE_HINT = "run `heldout validate -c CONFIG --ckpt_path best` on this run to write it."


class RunFolderError(DataError):
    """A run folder with a missing, unreadable or invalid file that the report needs."""


@dataclass
class Predictions:
    """One prediction table: a row per image.

    ``probabilities`` has shape ``(rows, classes)``; ``target`` and ``prediction`` are class indices.
    """

    paths: list[str]
    target: np.ndarray
    prediction: np.ndarray
    probabilities: np.ndarray

    def __len__(self) -> int:
        return len(self.target)


@dataclass
class Run:
    """Everything the report reads from one run folder. Optional parts are ``None`` when absent."""

    folder: Path
    metrics: dict[str, Any]
    classes: list[str]
    val: Predictions
    test: Predictions
    history: pd.DataFrame | None = None
    manifest: pd.DataFrame | None = None
    roots: dict[str, str] = field(default_factory=dict)
    skipped: pd.DataFrame | None = None
    audit: Any = None
    manifest_num_samples: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def num_samples(self, split: str) -> int | None:
        """Return the image count of a split recorded by training, or ``None`` when it was not recorded."""
        for source in (self.metrics.get("num_samples"), self.manifest_num_samples):
            if isinstance(source, dict) and isinstance(source.get(split), int):
                return int(source[split])
        return None


def load_run(folder: str | Path) -> Run:
    """Read a run folder written by training and testing.

    Raises:
        RunFolderError: the folder, ``metrics.json`` or a prediction table is missing or unreadable. The
            message names the file and the command that writes it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError(f"Run folder {folder} not found or not a folder. {_FIT_HINT}")
    metrics_path = folder / METRICS_FILE
    if not metrics_path.is_file():
        raise RunFolderError(f"{folder} is not a run folder: {METRICS_FILE} not found. {_FIT_HINT}")
    metrics = _read_json_object(metrics_path)

    manifest_meta_path = folder / MANIFEST_META_FILE
    manifest_meta = _read_json_object(manifest_meta_path) if manifest_meta_path.is_file() else {}
    notes: list[str] = []
    test_path = folder / PREDICTIONS_DIR / "test.csv"
    val_path = folder / PREDICTIONS_DIR / "val.csv"
    if not test_path.is_file():
        raise RunFolderError(f"Test predictions {test_path} not found: {_TEST_HINT}")
    if not val_path.is_file():
        raise RunFolderError(f"Validation predictions {val_path} not found: {_VALIDATE_HINT}")
    classes = _classes(metrics, manifest_meta, test_path, notes)
    num_samples = manifest_meta.get("num_samples")

    return Run(
        folder=folder,
        metrics=metrics,
        classes=classes,
        val=read_predictions(val_path, len(classes)),
        test=read_predictions(test_path, len(classes)),
        history=_read_history(folder / HISTORY_FILE, notes),
        manifest=_read_optional_csv(folder / MANIFEST_FILE, ("class", "split"), notes),
        roots=_roots(manifest_meta),
        skipped=_read_optional_csv(folder / SKIPPED_FILE, ("source", "path", "reason"), notes),
        audit=_read_audit(folder / AUDIT_FILE, notes),
        manifest_num_samples=num_samples if isinstance(num_samples, dict) else None,
        notes=notes,
    )


def read_predictions(path: Path, num_classes: int) -> Predictions:
    """Read a prediction table with columns ``path,target,prediction,prob_0,...,prob_{K-1}``.

    Raises:
        RunFolderError: the file cannot be parsed, lacks a column, has no rows, or contains a class
            index or probability outside its range.
    """
    try:
        table = pd.read_csv(path, dtype={"path": str}, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise RunFolderError(f"Cannot read prediction table {path}: {error}.") from None

    probability_columns = [f"prob_{index}" for index in range(num_classes)]
    expected = ["path", "target", "prediction", *probability_columns]
    missing = [column for column in expected if column not in table.columns]
    if missing:
        raise RunFolderError(
            f"Prediction table {path} lacks columns {missing} for {num_classes} classes. Its columns are "
            f"{list(table.columns)}. {_rerun_hint(path)}"
        )
    if table.empty:
        raise RunFolderError(f"Prediction table {path} has no rows. {_rerun_hint(path)}")

    target = _class_indices(table["target"], path, "target", num_classes)
    prediction = _class_indices(table["prediction"], path, "prediction", num_classes)
    probabilities = pd.to_numeric(table[probability_columns].stack(), errors="coerce").to_numpy(np.float64)
    probabilities = probabilities.reshape(len(table), num_classes)
    if not np.all(np.isfinite(probabilities)) or probabilities.min() < 0 or probabilities.max() > 1 + 1e-6:
        raise RunFolderError(f"Prediction table {path} has probabilities that are not numbers in [0, 1].")
    return Predictions(
        paths=table["path"].astype(str).tolist(),
        target=target,
        prediction=prediction,
        probabilities=probabilities,
    )


def _rerun_hint(path: Path) -> str:
    command = "validate" if path.stem == "val" else "test"
    return f"Rerun `heldout {command} -c CONFIG --ckpt_path best` to rewrite it."


def _class_indices(column: pd.Series, path: Path, name: str, num_classes: int) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce")
    if values.isna().any() or not np.all(values == np.round(values)):
        raise RunFolderError(f"Prediction table {path} has a `{name}` value that is not a class index.")
    indices = values.to_numpy().astype(np.int64)
    if indices.min() < 0 or indices.max() >= num_classes:
        raise RunFolderError(
            f"Prediction table {path} has `{name}` values from {indices.min()} to {indices.max()}, but the "
            f"run has {num_classes} classes (indices 0 to {num_classes - 1})."
        )
    return indices


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise RunFolderError(f"Cannot read {path}: {error}.") from None
    except json.JSONDecodeError as error:
        raise RunFolderError(f"Invalid JSON in {path} at line {error.lineno}: {error.msg}.") from None
    if not isinstance(content, dict):
        raise RunFolderError(
            f"Expected {path} to contain a JSON object, but got a JSON {type(content).__name__}."
        )
    return content


def _classes(
    metrics: dict[str, Any], manifest_meta: dict[str, Any], test_path: Path, notes: list[str]
) -> list[str]:
    for source in (metrics, manifest_meta):
        classes = source.get("classes")
        if isinstance(classes, list) and classes:
            return [str(name) for name in classes]
    header = pd.read_csv(test_path, nrows=0).columns
    count = sum(1 for column in header if str(column).startswith("prob_"))
    if count == 0:
        raise RunFolderError(
            f"Class names not found in {METRICS_FILE} or {MANIFEST_META_FILE}, and {test_path} has no "
            f"prob_* columns to count them. {_rerun_hint(test_path)}"
        )
    notes.append(
        f"Class names were not recorded, so classes are shown by index (class_0 to class_{count - 1})."
    )
    return [f"class_{index}" for index in range(count)]


def _roots(manifest_meta: dict[str, Any]) -> dict[str, str]:
    roots = manifest_meta.get("roots")
    if not isinstance(roots, dict):
        return {}
    return {str(source): str(root) for source, root in roots.items() if root}


def _read_history(path: Path, notes: list[str]) -> pd.DataFrame | None:
    table = _read_optional_csv(path, ("epoch",), notes)
    if table is None:
        return None
    for column in table.columns:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    return table.sort_values("epoch").reset_index(drop=True)


def _read_optional_csv(path: Path, columns: tuple[str, ...], notes: list[str]) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        notes.append(f"{path.name} could not be read and was left out: {error}.")
        log.warning("Cannot read %s: %s", path, error)
        return None
    missing = [column for column in columns if column not in table.columns]
    if missing:
        notes.append(f"{path.name} lacks columns {missing} and was left out.")
        return None
    return table


def _read_audit(path: Path, notes: list[str]) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        notes.append(f"{AUDIT_FILE} could not be read and was left out: {error}.")
        return None
