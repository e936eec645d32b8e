from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from heldout.report.load import load_run
from heldout.report.plots import plot_class_counts, plot_confusion, resolve_image_path, short_name

from .run_folder import uniform_spec, write_run


def test_resolve_image_path_uses_roots():
    roots = {"test_dir": "/data/test"}
    assert resolve_image_path("test_dir:cat/1.png", roots) == Path("/data/test/cat/1.png")


def test_resolve_image_path_unknown_source_kept():
    assert resolve_image_path("val_dir:cat/1.png", {}) == Path("val_dir:cat/1.png")


def test_short_name_cuts_long_names():
    assert short_name("cat") == "cat"
    shortened = short_name("a_very_long_class_name_indeed")
    assert len(shortened) == 18
    assert shortened.endswith("…")


def test_plot_confusion_many_classes(tmp_path):
    # 70 classes: past the limits for cell numbers and tick labels, the plot must still be drawn.
    folder = write_run(tmp_path / "run", val=uniform_spec(70, 3, 0.67), test=uniform_spec(70, 3, 0.67))
    run = load_run(folder)
    path = plot_confusion(run.test, run.classes, "test", tmp_path / "confusion.png")
    with Image.open(path) as image:
        assert image.size[0] > 1000


def test_plot_class_counts_includes_unknown_class(tmp_path):
    manifest = pd.DataFrame({"class": ["a", "a", "b", "z"], "split": ["train", "val", "test", "train"]})
    path = plot_class_counts(manifest, ["a", "b"], tmp_path / "counts.png")
    assert path is not None
    with Image.open(path) as image:
        assert np.asarray(image).std() > 0


def test_plot_class_counts_empty_manifest(tmp_path):
    manifest = pd.DataFrame({"class": [], "split": []})
    assert plot_class_counts(manifest, ["a"], tmp_path / "counts.png") is None
