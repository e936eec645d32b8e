"""Reseed the random number generators at every training epoch, so a resumed run repeats an uninterrupted one."""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


class EpochSeed(Callback):
    """At the first training batch of each epoch, seed torch, NumPy and ``random`` from the run seed and epoch.

    Lightning 2.6 checkpoints hold no random number generator state, so without this callback a run resumed
    from ``last.ckpt`` draws other dropout masks than an uninterrupted run from the first resumed epoch on.
    The seed is set at the first batch and not in ``on_train_epoch_start``, because Lightning creates the
    DataLoader iterator, which draws from the global generator, before that hook in the first epoch of a
    run and after it in later epochs. The run seed is the one ``seed_everything`` stores in
    ``PL_GLOBAL_SEED``; without it nothing is reseeded. The shuffle and the augmentation get their seeds
    from :class:`~heldout.data.sampler.EpochShuffleSampler` instead.
    """

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        run_seed = os.environ.get("PL_GLOBAL_SEED")
        if batch_idx != 0 or run_seed is None:
            return
        epoch = trainer.current_epoch
        seed = int(np.random.SeedSequence([int(run_seed), epoch]).generate_state(1)[0])
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # seeds the CUDA generators of all devices as well
        log.debug("Seeded training epoch %d with %d", epoch, seed)
