"""The LightningModule: MobileNetV3 classifier with per-stage torchmetrics."""

from __future__ import annotations

import logging
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn
from torch.nn import functional as F
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MeanMetric, MetricCollection, SumMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from heldout.errors import CheckpointError, ConfigError, HeldoutError
from heldout.model.backbone import Variant, build_mobilenet_v3
from heldout.model.compile import CompiledWithFallback
from heldout.model.optim import parameter_groups, warmup_cosine

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")
# Every metric name this module logs; callbacks may monitor any of them.
LOGGED_METRICS = tuple(f"{stage}/{name}" for stage in STAGES for name in ("loss", "acc", "f1"))


class NonFiniteLossError(HeldoutError):
    """The training loss became NaN or infinite."""


def _default_optimizer(params: Any) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)


class MobileNetClassifier(L.LightningModule):
    """MobileNetV3 image classifier with weight decay, dropout, label smoothing and a warmup schedule.

    Args:
        class_names: class names in index order; the head has one output per class. The command line
            fills this from the data module.
        variant: ``small`` or ``large``.
        width_mult: channel multiplier of every layer.
        dropout: dropout probability before the last linear layer.
        weights: ``None`` (random initialization), ``imagenet``, or the path of a local weights file.
        optimizer: optimizer factory; by default AdamW with lr 1e-3 and weight decay 0.05, applied to
            convolution and linear weights only.
        warmup_epochs: epochs of linear learning-rate warmup.
        lr_schedule: ``cosine`` decays to ``min_lr_ratio`` times the peak by the last epoch; ``constant``
            keeps the peak after warmup.
        min_lr_ratio: final learning rate as a share of the peak, for ``cosine``.
        label_smoothing: label smoothing of the cross-entropy loss, in [0, 1).
        bn_momentum: momentum of the BatchNorm running statistics (see :func:`build_mobilenet_v3`).
        channels_last: use the channels-last memory format, faster for depthwise convolutions on CPU and
            on GPUs with tensor cores.
        compile: run the network through ``torch.compile``. When compiling fails or the platform does not
            support it, a warning is logged and training continues without compilation.
    """

    def __init__(self, class_names: list[str], variant: Variant = "small", width_mult: float = 1.0,
                 dropout: float = 0.2, weights: str | None = None,
                 optimizer: OptimizerCallable = _default_optimizer, warmup_epochs: float = 1.0,
                 lr_schedule: Literal["cosine", "constant"] = "cosine", min_lr_ratio: float = 0.01,
                 label_smoothing: float = 0.0, bn_momentum: float | None = 0.1, channels_last: bool = True,
                 compile: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer"])
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"Expected model.label_smoothing to be in [0, 1), but got {label_smoothing}.")
        if warmup_epochs < 0:
            raise ConfigError(f"Expected model.warmup_epochs to be 0 or more, but got {warmup_epochs}.")
        self.class_names = list(class_names)
        self.optimizer_factory = optimizer
        # Built once on a stand-in parameter, so that a negative learning rate or weight decay fails before
        # the pre-flight check reads the data.
        self._build_optimizer([nn.Parameter(torch.zeros(1))])
        self.model = build_mobilenet_v3(variant, len(self.class_names), width_mult=width_mult, dropout=dropout,
                                        weights=weights, bn_momentum=bn_momentum)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.compiled_model = CompiledWithFallback(self.model) if compile else None

        num_classes = len(self.class_names)
        # Training images seen per epoch, which limit_train_batches and a dropped last batch make smaller
        # than the split. The report's train interval counts these.
        self.train_images = SumMetric()
        # ModuleDict keys get a suffix because "train" would clash with nn.Module.train.
        self.losses = nn.ModuleDict({f"{stage}_loss": MeanMetric() for stage in STAGES})
        self.scores = nn.ModuleDict({
            f"{stage}_scores": MetricCollection({
                "acc": MulticlassAccuracy(num_classes, average="micro"),
                "f1": MulticlassF1Score(num_classes, average="macro"),
            }, prefix=f"{stage}/")
            for stage in STAGES
        })

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.compiled_model is not None:
            return self.compiled_model(images)
        return self.model(images)

    # Steps -----------------------------------------------------------------------------------------------

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        # A batch of fewer than two images (every file skipped, or one left) breaks BatchNorm in training.
        if batch is None or len(batch[0]) < 2:
            return None
        images, targets, _ = batch
        logits = self(images)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.hparams.label_smoothing)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"Training loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step} "
                f"(batch {batch_idx}). The checkpoints written before this step are kept; lower the learning "
                "rate (model.optimizer.init_args.lr) and resume with --ckpt_path last, or start again.")
        self._update_metrics("train", logits.detach(), targets, loss.detach())
        return loss

    def _evaluation_step(self, stage: str, batch: Any) -> dict[str, torch.Tensor] | None:
        if batch is None:
            return None
        images, targets, indices = batch
        logits = self(images)
        loss = F.cross_entropy(logits, targets)
        self._update_metrics(stage, logits, targets, loss)
        return {"probs": logits.float().softmax(dim=1), "targets": targets, "indices": indices}

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor] | None:
        return self._evaluation_step("val", batch)

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor] | None:
        return self._evaluation_step("test", batch)

    def predict_step(self, batch: Any, batch_idx: int,
                     dataloader_idx: int = 0) -> dict[str, torch.Tensor] | None:
        if batch is None:  # every file of the batch was skipped as unreadable
            return None
        images, targets, indices = batch
        probs = self(images).float().softmax(dim=1)
        # Targets are -1 for images without a class (data.predict_dir).
        return {"probs": probs, "predictions": probs.argmax(dim=1), "targets": targets, "indices": indices}

    def _update_metrics(self, stage: str, logits: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        # Metric objects sum their state over processes, so the epoch values are exact under DDP.
        mean_loss, scores = self.losses[f"{stage}_loss"], self.scores[f"{stage}_scores"]
        mean_loss.update(loss, weight=len(targets))
        scores.update(logits, targets)
        on_step = stage == "train"
        self.log(f"{stage}/loss", mean_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(scores, on_step=False, on_epoch=True, prog_bar=True)
        if on_step:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, logger=True, prog_bar=False)
            self.train_images.update(len(targets))
            self.log("train/images", self.train_images, on_step=False, on_epoch=True)

    # Optimization ----------------------------------------------------------------------------------------

    def _build_optimizer(self, parameters: Any) -> torch.optim.Optimizer:
        try:
            return self.optimizer_factory(parameters)
        except ValueError as error:
            raise ConfigError(f"Invalid optimizer setting (model.optimizer.init_args): {error}. Learning rate "
                              "and weight decay must be 0 or more.") from None

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self._build_optimizer(parameter_groups(self.model))
        total_steps = int(self.trainer.estimated_stepping_batches)
        max_epochs = max(1, self.trainer.max_epochs or 1)
        warmup_steps = round(self.hparams.warmup_epochs * total_steps / max_epochs)
        factor = warmup_cosine(total_steps, warmup_steps, self.hparams.min_lr_ratio,
                               cosine=self.hparams.lr_schedule == "cosine")
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": LambdaLR(optimizer, factor), "interval": "step"}}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning (2.6) calls this hook before it copies the state dict, so a checkpoint of another
        # architecture ends here with one line instead of a list of tensor shape mismatches.
        hyperparameters = checkpoint.get("hyper_parameters", {})
        path = self._trainer.ckpt_path if self._trainer is not None else None
        raise_architecture_mismatch(hyperparameters, self.hparams, path)
        saved = list(hyperparameters.get("class_names", self.class_names))
        if saved != self.class_names:
            raise_class_mismatch(saved, self.class_names)


# Hyperparameters that set the shapes of the network's tensors, besides the number of classes.
ARCHITECTURE_KEYS = ("variant", "width_mult")


def raise_architecture_mismatch(saved: dict[str, Any], current: Any, path: str | None = None) -> None:
    """Raise a :class:`~heldout.errors.CheckpointError` if ``saved`` and ``current`` differ in architecture.

    Compares the hyperparameters in :data:`ARCHITECTURE_KEYS`. A key missing from ``saved``, as in a
    checkpoint written by another module, is not compared.
    """
    differing = [key for key in ARCHITECTURE_KEYS if key in saved and saved[key] != current[key]]
    if not differing:
        return
    checkpoint_values = " and ".join(f"{key}={saved[key]!r}" for key in differing)
    model_values = " and ".join(f"{key}={current[key]!r}" for key in differing)
    options = " ".join(f"--model.init_args.{key} {saved[key]}" for key in differing)
    checkpoint = f"The checkpoint {path}" if path else "The checkpoint"
    raise CheckpointError(f"{checkpoint} was trained with model.init_args {checkpoint_values}, but the model "
                          f"is configured with {model_values}. Pass {options} to match the checkpoint, or "
                          "remove the other values from the command line or config.")


def raise_class_mismatch(saved: list[str], current: list[str]) -> None:
    """Raise a :class:`~heldout.errors.CheckpointError` naming how two class lists differ."""
    added = sorted(set(current) - set(saved))
    missing = sorted(set(saved) - set(current))
    parts = []
    if added:
        parts.append(f"added in the data: {', '.join(added)}")
    if missing:
        parts.append(f"missing from the data: {', '.join(missing)}")
    if not parts:
        parts.append(f"same names in another order: checkpoint {saved}, data {current}")
    raise CheckpointError(f"The checkpoint was trained on other classes than the data folder has ({'; '.join(parts)}). "
                          "Use the data the model was trained on, or train a new model.")
