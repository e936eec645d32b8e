"""Checkpoint writes that a crash or kill cannot leave half done."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from heldout import checkpoint_io
from heldout.checkpoint_io import AtomicCheckpointIO, with_atomic_checkpoint_io


def test_save_writes_loadable_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 3, "weights": torch.arange(4)}, path)

    loaded = AtomicCheckpointIO().load_checkpoint(path)
    assert loaded["epoch"] == 3
    assert torch.equal(loaded["weights"], torch.arange(4))
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def test_interrupted_save_keeps_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails before the rename leaves the earlier checkpoint whole and no temporary file."""
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1}, path)

    def fail_fsync(descriptor: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_io.os, "fsync", fail_fsync)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"epoch": 2, "weights": torch.zeros(1000)}, path)

    assert io.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_temporary_file_beside_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The temporary file is in the target's folder, so the final rename never crosses file systems."""
    renames = []
    original_replace = os.replace

    def record_replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        renames.append((Path(source), Path(target)))
        original_replace(source, target)

    monkeypatch.setattr(checkpoint_io.os, "replace", record_replace)
    AtomicCheckpointIO().save_checkpoint({"epoch": 1}, tmp_path / "best.ckpt")

    assert len(renames) == 1
    source, target = renames[0]
    assert source.parent == target.parent == tmp_path
    assert target.name == "best.ckpt"


def test_storage_options_rejected(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="Expected storage_options to be None"):
        AtomicCheckpointIO().save_checkpoint({}, tmp_path / "last.ckpt", storage_options={"key": "value"})


@pytest.mark.parametrize(
    ("plugins", "expected_types"),
    [
        (None, [AtomicCheckpointIO]),
        ([], [AtomicCheckpointIO]),
        # A CheckpointIO the user gives is kept, and none is added.
        ([TorchCheckpointIO()], [TorchCheckpointIO]),
        (TorchCheckpointIO(), [TorchCheckpointIO]),
        # Other plugins stay, in their order.
        (["bf16-mixed"], [str, AtomicCheckpointIO]),
    ],
)
def test_atomic_io_added_to_plugins(plugins: object, expected_types: list[type]) -> None:
    assert [type(plugin) for plugin in with_atomic_checkpoint_io(plugins)] == expected_types
