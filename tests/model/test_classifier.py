import pytest
import torch
from torch.nn import functional as F

from heldout.errors import CheckpointError, ConfigError
from heldout.model.backbone import build_mobilenet_v3
from heldout.model.classifier import MobileNetClassifier, raise_class_mismatch


@pytest.mark.parametrize("variant", ["small", "large"])
def test_backbone_output_shape_and_gradients(variant: str) -> None:
    model = build_mobilenet_v3(variant, 4, width_mult=0.5)
    images = torch.randn(2, 3, 32, 40)
    logits = model(images)
    assert logits.shape == (2, 4)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([0, 3])).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_backbone_sets_batchnorm_momentum() -> None:
    model = build_mobilenet_v3("small", 3, bn_momentum=0.2)
    momenta = {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert momenta == {0.2}


def test_backbone_dropout_and_head() -> None:
    model = build_mobilenet_v3("small", 7, dropout=0.35)
    dropout = [m for m in model.classifier if isinstance(m, torch.nn.Dropout)]
    assert dropout[0].p == 0.35
    assert model.classifier[-1].out_features == 7


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"variant": "medium"}, "model.variant"),
        ({"width_mult": 0.0}, "model.width_mult"),
        ({"dropout": 1.0}, "model.dropout"),
        ({"weights": "imagenet", "width_mult": 0.5}, "width_mult=1.0"),
    ],
)
def test_backbone_rejects_bad_options(options: dict, message: str) -> None:
    arguments = {"variant": "small", **options}
    variant = arguments.pop("variant")
    with pytest.raises(ConfigError, match=message):
        build_mobilenet_v3(variant, 3, **arguments)


def test_classifier_saves_class_names() -> None:
    module = MobileNetClassifier(["cat", "dog"], width_mult=0.5)
    assert module.hparams.class_names == ["cat", "dog"]
    assert module.num_classes == 2
    assert module(torch.randn(2, 3, 32, 32)).shape == (2, 2)


def test_class_mismatch_names_differences() -> None:
    with pytest.raises(CheckpointError, match="added in the data: fox; missing from the data: cat"):
        raise_class_mismatch(["cat", "dog"], ["dog", "fox"])
    with pytest.raises(CheckpointError, match="another order"):
        raise_class_mismatch(["cat", "dog"], ["dog", "cat"])
