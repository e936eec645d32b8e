"""Build torchvision's MobileNetV3 with a head sized to the classes, and load initial weights."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torchvision.models import (
    MobileNet_V3_Large_Weights,
    MobileNet_V3_Small_Weights,
    mobilenet_v3_large,
    mobilenet_v3_small,
)

from heldout.errors import CheckpointError, ConfigError
from heldout.model.checkpoint import load_tensors_safely

log = logging.getLogger(__name__)

Variant = Literal["small", "large"]
_BUILDERS = {"small": mobilenet_v3_small, "large": mobilenet_v3_large}
_IMAGENET_WEIGHTS = {"small": MobileNet_V3_Small_Weights.IMAGENET1K_V1, "large": MobileNet_V3_Large_Weights.IMAGENET1K_V1}
# Prefixes that Lightning checkpoints of this and similar modules put before the torchvision parameter names.
_PREFIXES = ("model.", "net.", "backbone.", "module.")


def build_mobilenet_v3(variant: Variant, num_classes: int, *, width_mult: float = 1.0, dropout: float = 0.2,
                       weights: str | None = None, bn_momentum: float | None = 0.1) -> nn.Module:
    """Return a MobileNetV3 with a ``num_classes`` head.

    Args:
        variant: ``small`` or ``large``.
        num_classes: size of the classifier output.
        width_mult: channel multiplier of every layer.
        dropout: dropout probability before the last linear layer.
        weights: ``None`` for random initialization, ``imagenet`` for torchvision's published ImageNet
            weights (downloaded on first use), or the path of a local state dict or Lightning checkpoint.
        bn_momentum: momentum of every BatchNorm layer. torchvision uses 0.01, so the running statistics lag
            the weights by hundreds of steps. Trained from scratch on a few thousand images, the model then
            scores near chance in evaluation mode for many epochs while the training loss falls.
            ``None`` keeps torchvision's value.

    Raises:
        ConfigError: an unknown variant, a width other than 1.0 with ImageNet weights, or bad values.
        CheckpointError: the weights file is missing, unsafe, or made for another architecture.
    """
    if variant not in _BUILDERS:
        raise ConfigError(f"Expected model.variant to be 'small' or 'large', but got {variant!r}.")
    if num_classes < 2:
        raise ConfigError(f"Expected at least 2 classes, but got {num_classes}.")
    if width_mult <= 0:
        raise ConfigError(f"Expected model.width_mult to be positive, but got {width_mult}.")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"Expected model.dropout to be in [0, 1), but got {dropout}.")

    if weights == "imagenet":
        model = _build_imagenet(variant, num_classes, width_mult, dropout)
    else:
        model = _BUILDERS[variant](weights=None, num_classes=num_classes, width_mult=width_mult, dropout=dropout)
        if weights:
            load_local_weights(model, weights, variant)

    if bn_momentum is not None:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = bn_momentum
    return model


def _build_imagenet(variant: Variant, num_classes: int, width_mult: float, dropout: float) -> nn.Module:
    if width_mult != 1.0:
        raise ConfigError(f"ImageNet weights exist only for model.width_mult=1.0, but got {width_mult}. Use "
                          "width 1.0 or model.weights null.")
    try:
        model = _BUILDERS[variant](weights=_IMAGENET_WEIGHTS[variant], dropout=dropout)
    except (OSError, RuntimeError) as error:
        raise CheckpointError(f"Could not download torchvision's ImageNet weights for mobilenet_v3_{variant} "
                              f"({error}). Without network access, pass a local file with --model.weights "
                              "PATH or train from scratch with --model.weights null.") from None
    head = model.classifier[-1]
    model.classifier[-1] = nn.Linear(head.in_features, num_classes)
    return model


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load the tensors of a state dict or Lightning checkpoint without running pickled code.

    Raises:
        CheckpointError: the file is missing, a folder or damaged, contains arbitrary pickled objects,
            or contains no tensors.
    """
    file = Path(path)
    payload = load_tensors_safely(
        file, missing=(f"Weights file not found: {file}. Pass the path of a state dict or checkpoint with "
                       "--model.weights, or 'imagenet', or null."),
        folder=(f"model.weights {file} is a folder, but a weights file is expected. Pass a file saved with "
                "torch.save(model.state_dict()) or a Lightning .ckpt file."),
        unreadable=(f"Cannot load weights file {file}: {{reason}}. Pass a file saved with "
                    "torch.save(model.state_dict()) or a Lightning checkpoint, and load only files you "
                    "trust."))
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]
    if not isinstance(payload, dict) or not any(isinstance(v, torch.Tensor) for v in payload.values()):
        raise CheckpointError(f"{file} contains no state dict of tensors; expected a file saved with "
                              "torch.save(model.state_dict()) or a Lightning checkpoint.")
    return {_strip_prefix(key): value for key, value in payload.items() if isinstance(value, torch.Tensor)}


def _strip_prefix(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def load_local_weights(model: nn.Module, path: str | Path, variant: str) -> None:
    """Copy matching tensors from a local file into ``model``; a head of another size is left as initialized.

    Raises:
        CheckpointError: the backbone tensors do not match, for example weights of the other variant.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    backbone_keys = [key for key in own if not key.startswith("classifier.")]
    missing = [key for key in backbone_keys if key not in state]
    mismatched = [key for key in backbone_keys if key in state and state[key].shape != own[key].shape]
    if missing or mismatched:
        example = mismatched[0] if mismatched else missing[0]
        detail = (f"{example}: file {tuple(state[example].shape)} vs model {tuple(own[example].shape)}"
                  if mismatched else f"{example} is missing from the file")
        raise CheckpointError(f"Weights in {path} do not fit mobilenet_v3_{variant}: {len(mismatched)} tensor(s) "
                              f"differ in shape and {len(missing)} are missing (for example {detail}). They may "
                              "be for the other variant or width; set --model.variant and --model.width_mult "
                              "to match the file.")
    loadable = {key: value for key, value in state.items() if key in own and own[key].shape == value.shape}
    skipped_head = sorted(key for key in own if key.startswith("classifier.") and key not in loadable)
    model.load_state_dict(loadable, strict=False)
    if skipped_head:
        log.info("Loaded backbone weights from %s; the classifier head (%s) is newly initialized because its "
                 "size differs.", path, ", ".join(skipped_head))
