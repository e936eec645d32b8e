import pytest
import torch
from torch import nn

from heldout.model.backbone import build_mobilenet_v3
from heldout.model.optim import parameter_groups, warmup_cosine


def test_parameter_groups_decay_only_weights() -> None:
    model = build_mobilenet_v3("small", 3, width_mult=0.5)
    decay, no_decay = parameter_groups(model)
    decayed = {id(p) for p in decay["params"]}
    assert no_decay["weight_decay"] == 0.0
    assert "weight_decay" not in decay
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if isinstance(module, (nn.Conv2d, nn.Linear)) and name == "weight":
                assert id(parameter) in decayed, module
            else:
                assert id(parameter) not in decayed, (module, name)
    total = sum(p.numel() for p in model.parameters())
    grouped = sum(p.numel() for group in (decay, no_decay) for p in group["params"])
    assert grouped == total


def test_parameter_groups_reach_adamw() -> None:
    model = build_mobilenet_v3("small", 3, width_mult=0.5)
    optimizer = torch.optim.AdamW(parameter_groups(model), lr=1e-3, weight_decay=0.05)
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.05, 0.0]


def test_warmup_cosine_schedule_shape() -> None:
    factor = warmup_cosine(total_steps=100, warmup_steps=10, min_ratio=0.01)
    assert factor(0) == pytest.approx(1 / 11)
    assert factor(9) == pytest.approx(10 / 11)
    assert factor(10) == pytest.approx(1.0)
    assert factor(55) == pytest.approx(0.505, abs=0.01)
    assert factor(100) == pytest.approx(0.01)
    assert all(factor(s) >= factor(s + 1) for s in range(10, 100))


def test_warmup_constant_schedule() -> None:
    factor = warmup_cosine(total_steps=50, warmup_steps=5, cosine=False)
    assert factor(2) < 1.0
    assert factor(40) == 1.0
