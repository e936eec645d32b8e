"""A test callback that overwrites image files with text once training starts, after the pre-flight check.

The ``heldout`` subprocesses import it as ``break_files.BreakFiles`` (``runs.heldout_environment`` puts this
folder on ``PYTHONPATH``); in-process tests import it as ``tests.distributed.break_files.BreakFiles``.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback


class BreakFiles(Callback):
    """Overwrite ``paths`` with text at the start of training, on every process, before any batch is read."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for path in self.paths:
            Path(path).write_text("not an image any more\n")
