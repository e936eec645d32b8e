"""Optional ``torch.compile`` of a module that falls back to eager execution when compiling fails."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn


class CompiledWithFallback:
    """Call ``module`` through ``torch.compile``, or eagerly once compiling has failed.

    ``torch.compile`` returns at once and compiles on the first call, and again on later calls that need
    another graph (for example after switching between training and evaluation mode). Missing C++
    compilers, unsupported Python versions and unsupported operators therefore raise inside a call. A
    failed compiled call is repeated on the eager module: when that succeeds, a warning names the error
    and every later call runs eagerly, and when it fails too, its own error is raised.

    NOTE: only the forward call is guarded. A failure that surfaces while compiling the backward graph,
    at the first ``loss.backward()``, is raised as is.

    The wrapper is not an ``nn.Module``, so assigning it to a module attribute registers no parameters
    twice and leaves the state dict keys unchanged.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.compiled: Any = None
        try:
            self.compiled = torch.compile(module)
        except RuntimeError as error:
            # torch.compile raises here when it does not support the platform, for example a new Python.
            self._warn(error)

    @property
    def active(self) -> bool:
        """Whether calls still go through the compiled module."""
        return self.compiled is not None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is None:
            return self.module(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as compile_error:  # noqa: BLE001 - any compiler failure; the eager call below re-raises real errors
            output = self.module(*args, **kwargs)
            self.compiled = None
            self._warn(compile_error)
            return output

    @staticmethod
    def _warn(error: BaseException) -> None:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        rank_zero_warn(f"torch.compile failed ({type(error).__name__}: {first_line}); the model runs without "
                       "compilation. Set --model.init_args.compile false to skip the attempt.")
