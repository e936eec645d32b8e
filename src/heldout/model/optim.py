"""Weight-decay parameter groups and the warmup learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def parameter_groups(model: nn.Module) -> list[dict[str, object]]:
    """Split trainable parameters into two optimizer groups.

    Convolution and linear weights take the optimizer's weight decay; biases and normalization weights get
    none, because decaying them only shrinks the scale and shift of the activations.
    """
    decay, no_decay = [], []
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if not parameter.requires_grad:
                continue
            if isinstance(module, _NORM_TYPES) or name == "bias" or parameter.ndim <= 1:
                no_decay.append(parameter)
            else:
                decay.append(parameter)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float = 0.01,
                  cosine: bool = True) -> Callable[[int], float]:
    """Return a LambdaLR factor: linear warmup from near 0, then a cosine decay to ``min_ratio`` (or flat)."""
    total = max(1, total_steps)
    warmup = min(max(0, warmup_steps), total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if not cosine:
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
