"""The ``compile`` option of the classifier falls back to eager execution when torch.compile fails."""

from __future__ import annotations

import pytest
import torch

from heldout.model.classifier import MobileNetClassifier
from heldout.model.compile import CompiledWithFallback

CLASSES = ["a", "b", "c"]


def _failing_compile(module: torch.nn.Module, **kwargs: object) -> object:
    def compiled(*args: object, **call_kwargs: object) -> torch.Tensor:
        raise RuntimeError("backend compiler failed: no C++ compiler found")

    return compiled


def _unsupported_compile(module: torch.nn.Module, **kwargs: object) -> object:
    raise RuntimeError("torch.compile is not supported on this Python version")


def test_compile_failure_at_first_call_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "compile", _failing_compile)
    torch.manual_seed(0)
    model = MobileNetClassifier(CLASSES, compile=True).eval()
    images = torch.randn(2, 3, 32, 32)

    with pytest.warns(UserWarning, match="torch.compile failed .*no C\\+\\+ compiler"):
        logits = model(images)

    assert logits.shape == (2, len(CLASSES))
    assert not model.compiled_model.active
    torch.testing.assert_close(logits, model.model(images.contiguous(memory_format=torch.channels_last)))


def test_compile_unsupported_platform_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "compile", _unsupported_compile)

    with pytest.warns(UserWarning, match="not supported on this Python version"):
        model = MobileNetClassifier(CLASSES, compile=True)

    assert not model.compiled_model.active
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, len(CLASSES))


def test_compile_fallback_reraises_module_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error of the module itself must reach the caller, not be hidden as a compile failure."""
    monkeypatch.setattr(torch, "compile", _failing_compile)
    wrapper = CompiledWithFallback(torch.nn.Linear(4, 2))

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        wrapper(torch.randn(3, 5))


def test_compile_off_keeps_state_dict_keys() -> None:
    plain = MobileNetClassifier(CLASSES)
    compiled = MobileNetClassifier(CLASSES, compile=True)

    assert plain.compiled_model is None
    assert list(compiled.state_dict()) == list(plain.state_dict())
