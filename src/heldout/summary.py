"""The short train/validation/test table printed at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_ROWS = (("accuracy", "acc"), ("macro F1", "f1"), ("loss", "loss"))
_SPLITS = ("train", "val", "test")


def _cell(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"


def format_summary(metrics: dict[str, Any], run_dir: Path) -> str:
    """Format the figures of ``metrics.json`` as a plain-text table with the val-test accuracy gap."""
    counts = dict(metrics.get("num_samples", {}))
    if metrics.get("train/images") is not None:
        counts["train"] = int(metrics["train/images"])  # images seen in the best epoch
    titles = [f"{split} (n={counts.get(split, '?')})" for split in _SPLITS]
    header = f"{'':<10}" + "".join(f"{title:>18}" for title in titles)
    lines = [f"Run folder: {run_dir}", f"Best epoch: {metrics.get('best_epoch', '-')} "
             f"(train figures measured during training, with augmentation)", header]
    for label, key in _ROWS:
        lines.append(f"{label:<10}" + "".join(f"{_cell(metrics.get(f'{s}/{key}')):>18}" for s in _SPLITS))
    val, test = metrics.get("val/acc"), metrics.get("test/acc")
    if val is not None and test is not None:
        gap = float(val) - float(test)
        lines.append(f"val - test accuracy gap: {gap:+.4f} ({gap * 100:+.2f} percentage points)")
    return "\n".join(lines)
