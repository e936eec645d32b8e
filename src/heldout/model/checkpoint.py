"""Check a Lightning checkpoint file before the Trainer loads it."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from heldout.errors import CheckpointError

# torch.save writes a zip archive, or with _use_new_zipfile_serialization=False a pickle of protocol 2.
_ZIP_HEADER = b"PK\x03\x04"
_PICKLE_PROTOCOL_OPCODE = b"\x80"
# Errors of torch.load (checked with torch 2.14) on a file it cannot load. Besides pickle.UnpicklingError
# for data that weights_only=True rejects and OSError for an unreadable file, the zip reader raises
# RuntimeError for a truncated archive. The legacy unpickler raises EOFError, KeyError, IndexError or
# ValueError for an empty file, a text file or other bytes that are not a torch.save pickle.
_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, LookupError, ValueError, OSError)


def load_tensors_safely(file: Path, *, missing: str, folder: str, unreadable: str) -> Any:
    """Return ``torch.load(file, weights_only=True)``, which loads tensors and plain values but runs no code.

    Raises:
        CheckpointError: ``missing`` when the file does not exist, ``folder`` when the path is a folder,
            and ``unreadable`` with its ``{reason}`` filled in when the file is damaged, is not a
            torch.save file, contains pickled objects other than tensors and plain values, or cannot be
            read.
    """
    if file.is_dir():
        raise CheckpointError(folder)
    if not file.is_file():
        raise CheckpointError(missing)
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except _LOAD_ERRORS as error:
        raise CheckpointError(unreadable.format(reason=_describe_load_error(file, error))) from None


def _describe_load_error(file: Path, error: Exception) -> str:
    """Return why ``torch.load`` failed on ``file``, judged from the error and the file's first bytes."""
    if isinstance(error, OSError):
        return f"the file cannot be read ({error})"
    with file.open("rb") as handle:
        header = handle.read(len(_ZIP_HEADER))
    if not header:
        return "the file is empty"
    if not header.startswith((_ZIP_HEADER, _PICKLE_PROTOCOL_OPCODE)):
        return "the file was not written by torch.save (it is neither a zip archive nor a pickle)"

    message = str(error).strip()
    if isinstance(error, pickle.UnpicklingError):
        # torch 2.14 puts the reason after "WeightsUnpickler error:", between paragraphs of advice.
        message = message.partition("WeightsUnpickler error:")[2].strip() or message
        return f"torch.load with weights_only=True failed on its pickled data ({_first_sentence(message)})"
    detail = f"{type(error).__name__}: {_first_sentence(message)}" if message else type(error).__name__
    return f"the file is damaged, perhaps cut short while it was written or copied ({detail})"


def _first_sentence(message: str) -> str:
    # torch follows the first sentence of its load errors with advice that does not fit on one line.
    return message.splitlines()[0].split(". ")[0]


def _folder_message(name: str, folder: Path) -> str:
    found = sorted(folder.glob("*.ckpt")) + sorted(folder.glob("checkpoints/*.ckpt"))
    example = f" such as {found[0]}" if found else ""
    return (f"{name} is a folder, but a checkpoint file is expected. Pass a .ckpt file{example}, or best / "
            "last for the checkpoints of the run folder.")


def check_lightning_checkpoint(path: str | Path, *, name: str | None = None) -> None:
    """Load ``path`` with ``torch.load(weights_only=True)`` and check that it is a Lightning checkpoint.

    ``weights_only=True`` loads tensors and plain Python values only, so a file with a pickled object whose
    ``__reduce__`` runs code is rejected before anything in it runs. ``name`` is how messages refer to the
    file, by default ``--ckpt_path PATH``.

    Raises:
        CheckpointError: the file is missing or a folder, cannot be loaded safely, or is not a Lightning
            checkpoint.
    """
    file = Path(path)
    name = name or f"--ckpt_path {file}"
    payload = load_tensors_safely(
        file, missing=(f"Checkpoint not found: {name}. Pass an existing .ckpt file, or best / last for the "
                       "checkpoints of the run folder."),
        folder=_folder_message(name, file),
        unreadable=(f"Cannot load {name} as a checkpoint: {{reason}}. Pass a .ckpt file written by heldout "
                    "fit, and load only files you trust."))
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"{name} is not a Lightning checkpoint: it has no 'state_dict' entry. For a "
                              "plain state dict of backbone weights, use --model.init_args.weights PATH "
                              "instead.")
    if "pytorch-lightning_version" not in payload or not isinstance(payload.get("hyper_parameters", {}), dict):
        raise CheckpointError(f"{name} was not written by Lightning: it has a 'state_dict' but no "
                              "'pytorch-lightning_version' entry or no hyperparameters. For weights saved by "
                              "another training script, pass the file as --model.init_args.weights PATH and "
                              "train or evaluate from there.")
