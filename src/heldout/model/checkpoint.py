"""Check a Lightning checkpoint file before the Trainer loads it."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from heldout.errors import CheckpointError


def load_tensors_safely(file: Path, *, missing: str, unsafe: str) -> Any:
    """Return ``torch.load(file, weights_only=True)``, which loads tensors and plain values but runs no code.

    Raises:
        CheckpointError: ``missing`` when the file does not exist; ``unsafe`` followed by the reason when
            it contains pickled objects or cannot be read.
    """
    if not file.is_file():
        raise CheckpointError(missing)
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(unsafe.format(reason=f"torch.load with weights_only=True failed: {first_line}")) from None


def check_lightning_checkpoint(path: str | Path) -> None:
    """Load ``path`` with ``torch.load(weights_only=True)`` and check that it is a Lightning checkpoint.

    ``weights_only=True`` loads tensors and plain Python values only, so a file with a pickled object whose
    ``__reduce__`` runs code is rejected before anything in it runs.

    Raises:
        CheckpointError: the file is missing, cannot be loaded safely, or is not a Lightning checkpoint.
    """
    file = Path(path)
    payload = load_tensors_safely(
        file, missing=(f"Checkpoint not found: --ckpt_path {file}. Pass an existing .ckpt file, or best / last "
                       "for the checkpoints of the run folder."),
        unsafe=(f"Rejected --ckpt_path {file}: it cannot be loaded safely as a checkpoint ({{reason}}). Pass a "
                ".ckpt file written by heldout fit, and load only files you trust."))
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"--ckpt_path {file} is not a Lightning checkpoint: it has no 'state_dict' entry. "
                              "For a plain state dict of backbone weights, use --model.init_args.weights PATH "
                              "instead.")
