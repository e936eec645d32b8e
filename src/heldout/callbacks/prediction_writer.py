"""Write per-sample validation and test predictions into the run folder."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

PREDICTIONS_FOLDER = "predictions"


class PredictionWriter(Callback):
    """Collect each evaluated sample's target and class probabilities and write ``predictions/<split>.csv``.

    Columns: ``path`` (``source:relative/path`` as in the manifest), ``target``, ``prediction`` (class
    indices) and ``prob_0`` … ``prob_<K-1>``. Validation predictions are written by ``validate`` runs, not
    after every epoch of ``fit``. Under DDP the rows of all processes are gathered, each sample once, and
    one process writes the file.
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

    def _gather(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if not (dist.is_available() and dist.is_initialized()):
            return self._rows
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, self._rows)
        return [part for rows in gathered for part in rows]

    def _write(self, trainer: L.Trainer, split: str) -> None:
        parts = self._gather()
        self._rows = []
        if trainer.global_rank != 0 or not parts:
            return
        indices = np.concatenate([p[0] for p in parts])
        targets = np.concatenate([p[1] for p in parts])
        probs = np.concatenate([p[2] for p in parts])
        # Keep one row per sample, in dataset order, even if a sampler repeated some.
        order = np.unique(indices, return_index=True)[1]
        indices, targets, probs = indices[order], targets[order], probs[order]

        datamodule = trainer.datamodule
        paths = datamodule.split_paths(split) if hasattr(datamodule, "split_paths") else None
        folder = Path(trainer.default_root_dir) / PREDICTIONS_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f"{split}.csv.tmp"
        with temporary.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "target", "prediction", *(f"prob_{k}" for k in range(probs.shape[1]))])
            for index, target, row in zip(indices, targets, probs, strict=True):
                path = paths[index] if paths is not None else str(index)
                writer.writerow([path, int(target), int(row.argmax()), *(f"{p:.6g}" for p in row)])
        os.replace(temporary, folder / f"{split}.csv")

