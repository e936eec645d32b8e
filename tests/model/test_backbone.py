"""Local weights files: the other MobileNetV3 variant, pickled payloads, missing files."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from torchvision.models import mobilenet_v3_small

from heldout.errors import CheckpointError
from heldout.model.backbone import build_mobilenet_v3, read_state_dict


class _CreateMarkerFile:
    """A pickled object that, when unpickled by a full pickle load, creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_backbone_rejects_other_variant(tmp_path: Path) -> None:
    path = tmp_path / "small.pt"
    torch.save(mobilenet_v3_small(num_classes=3).state_dict(), path)

    with pytest.raises(CheckpointError) as caught:
        build_mobilenet_v3("large", 3, weights=str(path))

    message = str(caught.value)
    assert f"Weights in {path} do not fit mobilenet_v3_large" in message
    assert "set --model.variant and --model.width_mult to match the file" in message


def test_backbone_loads_lightning_checkpoint(tmp_path: Path) -> None:
    """A Lightning checkpoint's ``model.`` prefix is stripped and a head of another size is left out."""
    source = mobilenet_v3_small(num_classes=5)
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}}, path)

    model = build_mobilenet_v3("small", 3, weights=str(path))

    assert torch.equal(model.features[0][0].weight, source.features[0][0].weight)
    assert model.classifier[-1].out_features == 3


@pytest.mark.parametrize("payload", ["plain", "in_state_dict"])
def test_backbone_pickle_payload_not_run(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "weights.pt"
    evil = _CreateMarkerFile(marker)
    path.write_bytes(pickle.dumps(evil if payload == "plain" else {"state_dict": evil}))

    with pytest.raises(CheckpointError, match="torch.load with weights_only=True failed") as caught:
        read_state_dict(path)

    assert not marker.exists()
    assert f"Cannot load weights file {path}" in str(caught.value)


@pytest.mark.parametrize(("kind", "reason"), [
    ("text", "the file was not written by torch.save (it is neither a zip archive nor a pickle)"),
    ("empty", "the file is empty"),
    ("truncated", "the file is damaged, perhaps cut short while it was written or copied "
                  "(RuntimeError: PytorchStreamReader failed reading zip archive"),
])
def test_backbone_weights_file_unreadable(tmp_path: Path, kind: str, reason: str) -> None:
    path = tmp_path / "weights.pt"
    if kind == "text":
        path.write_text("hello\n")
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        torch.save(mobilenet_v3_small(num_classes=3).state_dict(), path)
        path.write_bytes(path.read_bytes()[:4000])

    with pytest.raises(CheckpointError) as caught:
        read_state_dict(path)

    assert f"Cannot load weights file {path}: {reason}" in str(caught.value)


def test_backbone_weights_path_is_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as caught:
        build_mobilenet_v3("small", 3, weights=str(tmp_path))

    message = str(caught.value)
    assert message.startswith(f"model.weights {tmp_path} is a folder, but a weights file is expected.")


def test_backbone_weights_file_missing(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="Weights file not found: .*missing.pt"):
        build_mobilenet_v3("small", 3, weights=str(tmp_path / "missing.pt"))


def test_backbone_file_without_tensors(tmp_path: Path) -> None:
    path = tmp_path / "config.pt"
    torch.save({"lr": 0.1, "epochs": 3}, path)

    with pytest.raises(CheckpointError, match="contains no state dict of tensors"):
        read_state_dict(path)
