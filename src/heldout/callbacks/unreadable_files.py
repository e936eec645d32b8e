"""List the image files that became unreadable during a run in the run folder's ``skipped.csv``."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class UnreadableFileRecorder(Callback):
    """At the end of every loop, add files that the DataLoader workers found unreadable to ``skipped.csv``.

    The pre-flight check lists unreadable files before a run. A file that breaks later (overwritten or
    truncated while training) is met inside a worker process, which marks it in its dataset's shared
    ``unreadable`` flags. This callback sums the flags over all processes, and global rank 0 hands the
    files to the data module, which lists each once. It does nothing for data modules without
    ``record_unreadable``.
    """

    def _record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if not hasattr(datamodule, "record_unreadable"):
            return
        for split, dataset in sorted(datamodule.datasets.items()):
            flags = dataset.unreadable.to(device=pl_module.device, dtype=torch.int32)
            if trainer.world_size > 1:
                # Every process calls reduce for every split, in the same order, so none waits forever.
                flags = trainer.strategy.reduce(flags, reduce_op="sum")
                dataset.unreadable |= flags.bool().cpu()  # so the sample counts of every process leave them out
            indices = flags.nonzero().flatten().tolist()
            if indices and trainer.is_global_zero:
                datamodule.record_unreadable(split, indices)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, pl_module)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, pl_module)

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, pl_module)

