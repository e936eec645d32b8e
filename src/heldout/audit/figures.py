"""Side-by-side thumbnails of near-duplicate pairs, drawn with matplotlib's Agg backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from heldout.data.decode import ImageDecodeError, decode_image


def _thumbnail(path: Path) -> np.ndarray:
    try:
        return decode_image(path, draft_size=128)
    except ImageDecodeError:
        # The file changed after hashing; an empty tile keeps the other pairs readable.
        return np.zeros((8, 8, 3), dtype=np.uint8)


def plot_pairs(root: Path, pairs: Sequence[dict[str, object]], output: Path) -> Path:
    """Draw each pair as one row of two thumbnails titled with path, class, split and distance.

    ``pairs`` are records as in ``audit.json`` (keys ``a``, ``b``, ``distance``, ``label_a``, ``label_b``,
    and optionally ``split_a``, ``split_b``), paths relative to ``root``. Returns ``output``.
    """
    rows = max(len(pairs), 1)
    figure = Figure(figsize=(6.0, 2.4 * rows))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 2, squeeze=False)
    for row, pair in enumerate(pairs):
        for column, side in enumerate(("a", "b")):
            axis = axes[row][column]
            axis.imshow(_thumbnail(root / str(pair[side])), interpolation="nearest")
            split = f", {pair[f'split_{side}']}" if pair.get(f"split_{side}") else ""
            axis.set_title(f"{pair[side]}\n{pair[f'label_{side}']}{split}", fontsize=7)
            axis.set_axis_off()
        axes[row][0].text(1.1, 0.5, f"d={pair['distance']}", transform=axes[row][0].transAxes, fontsize=8,
                          ha="center", va="center")
    if not pairs:
        for axis in axes[0]:
            axis.set_axis_off()
        axes[0][0].text(0.5, 0.5, "no pairs found", ha="center", va="center")
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=100)
    return output
