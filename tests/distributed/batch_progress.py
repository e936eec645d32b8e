"""A test callback that slows training down and records how far it got, so a test can kill it mid-epoch.

The ``heldout`` subprocesses of these tests import it by class path (``batch_progress.BatchProgress``),
because ``runs.heldout_environment`` puts this folder on ``PYTHONPATH``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class BatchProgress(Callback):
    """Sleep ``delay_s`` seconds after each training batch and write ``EPOCH BATCH`` to ``path``."""

    def __init__(self, path: str, delay_s: float = 0.0) -> None:
        self.path = Path(path)
        self.delay_s = delay_s

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.is_global_zero:
            self.path.write_text(f"{trainer.current_epoch} {batch_idx}\n")
        time.sleep(self.delay_s)
