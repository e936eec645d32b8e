"""Write the per-epoch history and ``metrics.json`` into the run folder."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only

from heldout.atomic_files import write_json_atomic
from heldout.errors import DataError

METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
HISTORY_COLUMNS = ("epoch", "train/loss", "train/acc", "train/f1", "train/images", "val/loss", "val/acc", "val/f1")


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """Return the contents of ``metrics.json`` in ``run_dir``, or an empty mapping when there is none.

    Raises:
        DataError: the file is not a JSON object, for example after a hand edit.
    """
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return {}
    try:
        metrics = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not valid JSON ({error}). Restore it, or delete it to let the next fit or "
                        "test write it again; --ckpt_path best then needs an explicit checkpoint path.") from None
    if not isinstance(metrics, dict):
        raise DataError(f"{path} contains a JSON {type(metrics).__name__}, expected an object of metric names and "
                        "values. Restore it, or delete it to let the next fit or test write it again.")
    return metrics


class RunSummary(Callback):
    """Record train and validation metrics per epoch and the figures of the best epoch and the test run.

    ``history.csv`` gets one row per epoch. ``metrics.json`` contains ``best_epoch`` (the epoch whose
    checkpoint the ModelCheckpoint callback kept as best, by its monitor), the train and validation
    metrics of that epoch, and after a test run the ``test/...`` metrics. Train metrics are measured during
    training, with augmentation and dropout on. The history is part of the checkpoint, so a resumed run
    keeps the epochs before the interruption.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, float | None]] = []

    @property
    def state_key(self) -> str:
        return "RunSummary"

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    @staticmethod
    def run_dir(trainer: L.Trainer) -> Path:
        return Path(trainer.default_root_dir)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        row: dict[str, float | None] = {"epoch": trainer.current_epoch}
        for column in HISTORY_COLUMNS[1:]:
            row[column] = _number(metrics.get(column))
        self.history = [r for r in self.history if r["epoch"] != trainer.current_epoch] + [row]
        self._write_history(trainer)

    @rank_zero_only
    def _write_history(self, trainer: L.Trainer) -> None:
        folder = self.run_dir(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / (HISTORY_FILE + ".tmp")
        with temporary.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS)
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in self.history)
        os.replace(temporary, folder / HISTORY_FILE)

    def best_row(self, trainer: L.Trainer) -> dict[str, float | None] | None:
        """Return the history row of the epoch the checkpoint callback kept as best."""
        checkpoint = trainer.checkpoint_callback
        monitor = checkpoint.monitor if isinstance(checkpoint, ModelCheckpoint) and checkpoint.monitor else "val/loss"
        mode = checkpoint.mode if isinstance(checkpoint, ModelCheckpoint) else "min"
        scored = [row for row in self.history if row.get(monitor) is not None]
        if not scored:
            return None
        # The first epoch wins a tie, as ModelCheckpoint only replaces its best on strict improvement.
        pick = min if mode == "min" else max
        return pick(scored, key=lambda row: row[monitor])  # type: ignore[arg-type,return-value]

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        best = self.best_row(trainer)
        summary: dict[str, Any] = {"best_epoch": None if best is None else int(best["epoch"]),
                                   "stopped_epoch": int(self.history[-1]["epoch"]) if self.history else None,
                                   "early_stopped": any(isinstance(c, EarlyStopping) and c.stopped_epoch > 0
                                                        for c in trainer.callbacks),
                                   "classes": list(getattr(pl_module, "class_names", []))}
        if best is not None:
            summary.update({key: value for key, value in best.items() if key != "epoch"})
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_path:
            summary["best_checkpoint"] = checkpoint.best_model_path
        summary["num_samples"] = self._num_samples(trainer)
        self._update_metrics_file(trainer, summary)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Only validate runs write predictions/val.csv, so only they record the checkpoint it comes from.
        if trainer.state.fn == TrainerFn.VALIDATING:
            self._update_metrics_file(trainer, {"val_checkpoint": trainer.ckpt_path})

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        figures: dict[str, Any] = {key: _number(metrics.get(key)) for key in ("test/loss", "test/acc", "test/f1")}
        figures["test_checkpoint"] = trainer.ckpt_path
        figures["num_samples"] = {**read_metrics(self.run_dir(trainer)).get("num_samples", {}),
                                  **self._num_samples(trainer)}
        figures.setdefault("classes", list(getattr(pl_module, "class_names", [])))
        self._update_metrics_file(trainer, figures)

    @staticmethod
    def _num_samples(trainer: L.Trainer) -> dict[str, int]:
        datasets = getattr(trainer.datamodule, "datasets", {}) if trainer.datamodule is not None else {}
        # Files found unreadable during the run were left out, so they are not counted.
        return {split: len(dataset) - int(getattr(dataset, "unreadable", torch.zeros(0)).sum())
                for split, dataset in datasets.items()}

    @rank_zero_only
    def _update_metrics_file(self, trainer: L.Trainer, figures: dict[str, Any]) -> None:
        folder = self.run_dir(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        merged = {**read_metrics(folder), **figures}
        write_json_atomic(folder / METRICS_FILE, merged)
