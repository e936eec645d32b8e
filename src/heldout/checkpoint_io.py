"""Checkpoint writing that never leaves a partly written ``.ckpt`` file under the final name."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import CheckpointIO, TorchCheckpointIO

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file beside its target, flush it to disk, then rename it.

    Lightning 2.6's ``TorchCheckpointIO`` writes local files through an fsspec transaction whose temporary
    file lives in the system temp folder (``tempfile.mkstemp``), and ``shutil.move`` puts it in place. When
    that folder and the run folder are on different file systems, as ``/tmp`` and a shared cluster file
    system usually are, the move is a copy into the target. A process killed during that copy leaves a
    truncated checkpoint, which blocks ``--ckpt_path last``. A rename within one folder is atomic on POSIX
    file systems, so a kill here leaves the previous checkpoint or the new one, plus at most a stray
    ``.ckpt.tmp-PID`` file.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        target = Path(path)
        if "://" in str(path):
            # Remote storage (s3://, gs://, ...) has no rename; fsspec's own upload is used there.
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"Expected storage_options to be None for a local checkpoint, but got "
                            f"{storage_options!r}; {type(self).__name__} takes no storage options.")

        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        try:
            with temporary.open("wb") as handle:
                handle.write(buffer.getbuffer())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_folder(target.parent)


def _fsync_folder(folder: Path) -> None:
    """Flush the folder entry of a renamed file, so the rename survives a machine crash."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError as error:
        log.debug("Could not open %s to flush the rename: %s", folder, error)
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        # Some network file systems do not support fsync on a folder; the rename itself is still atomic.
        log.debug("fsync of folder %s failed: %s", folder, error)
    finally:
        os.close(descriptor)


def with_atomic_checkpoint_io(plugins: Any) -> list[Any]:
    """Return the Trainer's ``plugins`` with :class:`AtomicCheckpointIO` added, unless one sets a CheckpointIO."""
    if plugins is None:
        listed: list[Any] = []
    elif isinstance(plugins, (list, tuple)):
        listed = list(plugins)
    else:
        listed = [plugins]
    if any(isinstance(plugin, CheckpointIO) for plugin in listed):
        return listed
    return [*listed, AtomicCheckpointIO()]
