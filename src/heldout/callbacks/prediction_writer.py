"""Write per-sample validation, test and predict-stage predictions into the run folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from heldout.atomic_files import write_csv_atomic
from heldout.data.preflight import find_bad_images

log = logging.getLogger(__name__)

PREDICTIONS_FOLDER = "predictions"


class PredictionWriter(Callback):
    """Collect each evaluated sample's target and class probabilities and write ``predictions/<split>.csv``.

    Columns: ``path`` (``source:relative/path`` as in the manifest), ``target``, ``prediction`` (class
    indices) and ``prob_0`` … ``prob_<K-1>``. Validation predictions are written by ``validate`` runs, not
    after every epoch of ``fit``. Under DDP the rows of all processes are gathered, each sample once, and
    one process writes the file.

    ``predict`` writes ``predictions/predict.csv`` with two more columns after ``prediction``,
    ``predicted_class`` and ``confidence``, and an ``error`` column last: an unreadable file gets a row
    with only its path and the reason, so every input file is listed. ``target`` is empty for images
    without a class (``data.predict_dir``).
    """

    def __init__(self) -> None:
        self._rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def _collect(self, trainer: L.Trainer, outputs: Any) -> None:
        if trainer.state.fn == TrainerFn.FITTING or not isinstance(outputs, dict):
            return
        self._rows.append((outputs["indices"].cpu().numpy(), outputs["targets"].cpu().numpy(),
                           outputs["probs"].float().cpu().numpy()))

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows = []

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        self._collect(trainer, outputs)

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._collect(trainer, outputs)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn != TrainerFn.FITTING and not trainer.sanity_checking:
            self._write(trainer, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, "test")

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows = []

    def on_predict_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        self._collect(trainer, outputs)

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write_predictions(trainer, pl_module)

    def _gather(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if not (dist.is_available() and dist.is_initialized()):
            return self._rows
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, self._rows)
        return [part for rows in gathered for part in rows]

    def _sorted_rows(self, trainer: L.Trainer) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Gather the rows of all processes, and on global rank 0 return them one per sample in dataset order."""
        parts = self._gather()
        self._rows = []
        if trainer.global_rank != 0 or not parts:
            return None
        indices = np.concatenate([p[0] for p in parts])
        targets = np.concatenate([p[1] for p in parts])
        probs = np.concatenate([p[2] for p in parts])
        # Keep one row per sample, in dataset order, even if a sampler repeated some.
        order = np.unique(indices, return_index=True)[1]
        return indices[order], targets[order], probs[order]

    @staticmethod
    def _paths(trainer: L.Trainer, split: str) -> list[str] | None:
        datamodule = trainer.datamodule
        return datamodule.split_paths(split) if hasattr(datamodule, "split_paths") else None

    def _write(self, trainer: L.Trainer, split: str) -> None:
        rows = self._sorted_rows(trainer)
        if rows is None:
            return
        paths = self._paths(trainer, split)
        header = ["path", "target", "prediction", *(f"prob_{k}" for k in range(rows[2].shape[1]))]
        lines = ([paths[index] if paths is not None else str(index), int(target), int(row.argmax()),
                  *(f"{p:.6g}" for p in row)] for index, target, row in zip(*rows, strict=True))
        write_csv_atomic(Path(trainer.default_root_dir) / PREDICTIONS_FOLDER / f"{split}.csv", header, lines)

    def _write_predictions(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write ``predictions/predict.csv``: each predicted file, and each unreadable one with the reason."""
        rows = self._sorted_rows(trainer)
        if trainer.global_rank != 0:
            return
        datamodule = trainer.datamodule
        split = datamodule.predict_split() if hasattr(datamodule, "predict_split") else None
        dataset = getattr(datamodule, "datasets", {}).get(split)
        paths = self._paths(trainer, split) if split is not None else None
        class_names = list(getattr(pl_module, "class_names", []))
        num_classes = len(class_names) if rows is None else rows[2].shape[1]
        by_index: dict[int, list[Any]] = {}
        if rows is not None:
            for index, target, probs in zip(*rows, strict=True):
                predicted = int(probs.argmax())
                name = class_names[predicted] if predicted < len(class_names) else ""
                by_index[int(index)] = ["" if target < 0 else int(target), predicted, name,
                                        f"{probs[predicted]:.6g}", *(f"{p:.6g}" for p in probs), ""]
        # NOTE: rows come from the dataset, so a test image dropped from the reused split before loading (listed
        # in skipped.csv) and a predict_dir file with a non-UTF-8 name get no row.
        if dataset is not None:
            unreadable = dataset.unreadable.nonzero().flatten().tolist()
            reasons = find_bad_images([dataset.paths[index] for index in unreadable])
            for index in unreadable:
                reason = reasons.get(dataset.paths[index], "failed once, readable again later")
                by_index.setdefault(index, ["", "", "", "", *([""] * num_classes), reason])
        header = ["path", "target", "prediction", "predicted_class", "confidence",
                  *(f"prob_{k}" for k in range(num_classes)), "error"]
        lines = ([paths[index] if paths is not None else str(index), *by_index[index]]
                 for index in sorted(by_index))
        path = Path(trainer.default_root_dir) / PREDICTIONS_FOLDER / "predict.csv"
        write_csv_atomic(path, header, lines)
        failed = sum(1 for values in by_index.values() if values[-1])
        log.info("Wrote predictions for %d image(s) to %s%s", len(by_index) - failed, path,
                 f"; {failed} unreadable image(s) are listed there with the reason" if failed else "")

