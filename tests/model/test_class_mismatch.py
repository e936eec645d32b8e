"""Class-set mismatches between a checkpoint and the data, and optimizer settings checked up front."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from heldout.errors import CheckpointError, ConfigError
from heldout.model.classifier import MobileNetClassifier, raise_class_mismatch


@pytest.mark.parametrize(("current", "expected"), [
    (["cat", "dog", "eel", "fox"], "added in the data: fox"),
    (["cat", "dog"], "missing from the data: eel"),
    (["cat", "dog", "fox"], "added in the data: fox; missing from the data: eel"),
    (["dog", "cat", "eel"], "same names in another order: checkpoint ['cat', 'dog', 'eel'], data ['dog', 'cat', 'eel']"),
])
def test_class_mismatch_message(current: list[str], expected: str) -> None:
    with pytest.raises(CheckpointError) as caught:
        raise_class_mismatch(["cat", "dog", "eel"], current)

    assert expected in str(caught.value)
    assert "Use the data the model was trained on, or train a new model." in str(caught.value)


def test_classifier_load_checkpoint_other_classes() -> None:
    model = MobileNetClassifier(["cat", "dog"])

    with pytest.raises(CheckpointError, match="missing from the data: eel"):
        model.on_load_checkpoint({"hyper_parameters": {"class_names": ["cat", "dog", "eel"]}})


@pytest.mark.parametrize(("saved", "expected"), [
    ({"variant": "large", "width_mult": 0.5},
     "was trained with model.init_args variant='large', but the model is configured with variant='small'. "
     "Pass --model.init_args.variant large to match the checkpoint"),
    ({"variant": "large", "width_mult": 1.0},
     "was trained with model.init_args variant='large' and width_mult=1.0, but the model is configured with "
     "variant='small' and width_mult=0.5. Pass --model.init_args.variant large "
     "--model.init_args.width_mult 1.0"),
])
def test_classifier_load_checkpoint_other_architecture(saved: dict[str, object], expected: str) -> None:
    model = MobileNetClassifier(["cat", "dog"], width_mult=0.5)

    with pytest.raises(CheckpointError) as caught:
        model.on_load_checkpoint({"hyper_parameters": {"class_names": ["cat", "dog"], **saved}})

    assert expected in str(caught.value)


def test_classifier_load_checkpoint_without_architecture() -> None:
    """A checkpoint without variant and width_mult, as from another module, is checked for classes only."""
    model = MobileNetClassifier(["cat", "dog"], width_mult=0.5)

    model.on_load_checkpoint({"hyper_parameters": {"class_names": ["cat", "dog"]}})

    assert model.hparams.width_mult == 0.5


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"lr": -0.1}, "Invalid learning rate: -0.1"),
    ({"lr": 0.1, "weight_decay": -1.0}, "Invalid weight_decay value: -1.0"),
])
def test_classifier_rejects_bad_optimizer(arguments: dict[str, float], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        MobileNetClassifier(["cat", "dog"], optimizer=partial(torch.optim.AdamW, **arguments))
