"""Test figures must come from the best checkpoint, not from the weights of the last epoch."""

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.nn import functional as F

from heldout.data.datamodule import ImageFolderDataModule
from heldout.model.classifier import MobileNetClassifier
from tests.cli_helpers import run_in_process, write_config


class CorruptWeights(L.Callback):
    """From ``from_epoch`` on, scramble the head and stop learning, so every later epoch is worse."""

    def __init__(self, from_epoch: int = 1) -> None:
        self.from_epoch = from_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch != self.from_epoch:
            return
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            head = pl_module.model.classifier[-1]
            # The bias moves the logits even when the features are still near zero, early in training.
            head.bias.add_(torch.randn(head.bias.shape, generator=generator) * 10)
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = 0.0
        for scheduler in trainer.lr_scheduler_configs:
            scheduler.scheduler.base_lrs = [0.0] * len(scheduler.scheduler.base_lrs)


def _test_loss(checkpoint: Path, run_dir: Path) -> float:
    model = MobileNetClassifier.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=False)
    model.eval()
    datamodule = ImageFolderDataModule("unused", image_size=32, batch_size=8, num_workers=0,
                                       manifest_dir=str(run_dir), leakage_check="off")
    datamodule.setup("test")
    losses, count = 0.0, 0
    with torch.no_grad():
        for images, targets, _ in datamodule.test_dataloader():
            losses += F.cross_entropy(model(images), targets, reduction="sum").item()
            count += len(targets)
    return losses / count


def test_test_metrics_come_from_best_checkpoint(image_folder: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    callback = {"class_path": f"{__name__}.CorruptWeights", "init_args": {"from_epoch": 1}}
    config = write_config(tmp_path / "config.yaml", image_folder, run_dir,
                          **{"trainer.max_epochs": 3, "trainer.callbacks": [callback], "write_report": False})
    assert run_in_process("fit", "-c", str(config)) == 0

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_epoch"] == 0
    assert metrics["stopped_epoch"] == 2
    best_loss = _test_loss(run_dir / "checkpoints" / "best.ckpt", run_dir)
    last_loss = _test_loss(run_dir / "checkpoints" / "last.ckpt", run_dir)
    assert last_loss > best_loss + 1.0
    assert metrics["test/loss"] == pytest.approx(best_loss, rel=1e-4)
