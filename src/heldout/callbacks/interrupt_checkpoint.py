"""Save the training state when ``fit`` stops on an exception or Ctrl-C, for ``--ckpt_path last``."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from heldout.model.classifier import NonFiniteLossError

log = logging.getLogger(__name__)


class InterruptCheckpoint(Callback):
    """Write ``last.ckpt`` when ``fit`` ends on an exception or Ctrl-C, so a new run can resume from there.

    It works like Lightning's ``OnExceptionCheckpoint``, but that callback (Lightning 2.6) deletes its file
    in ``teardown`` after every run that ends normally, which would remove ``ModelCheckpoint``'s ``last.ckpt``.
    Nothing is written outside ``fit`` or before the first optimizer step. Nothing is written after a NaN or
    infinite loss either, because the weights that produced it are no state to resume from.
    """

    def __init__(self, dirpath: str | Path, filename: str = "last") -> None:
        self.path = Path(dirpath) / f"{filename}.ckpt"

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.state.fn != TrainerFn.FITTING or trainer.global_step == 0:
            return
        if isinstance(exception, NonFiniteLossError):
            kept = "still holds the last saved state" if self.path.is_file() else "was not written"
            log.warning("The loss became non-finite, so %s %s.", self.path, kept)
            return
        self._run_save(trainer, exception)

    def _run_save(self, trainer: L.Trainer, exception: BaseException) -> None:
        # NOTE: save_checkpoint synchronizes all processes, so under DDP an exception raised on only one
        # rank can hang here. Single-process runs are not affected.
        trainer.save_checkpoint(self.path)
        log.warning("Training stopped at epoch %d, step %d (%s); saved the state to %s. Resume with "
                    "--ckpt_path last and the same --trainer.default_root_dir.", trainer.current_epoch,
                    trainer.global_step, type(exception).__name__, self.path)
