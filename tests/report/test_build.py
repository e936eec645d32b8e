import importlib
import json
import time

import numpy as np
import pytest
from PIL import Image

from heldout.report import ReportSettings, build_report
from heldout.report.load import RunFolderError

from .run_folder import SplitSpec, uniform_spec, write_run

PLOTS = ("learning_curves", "confusion_val", "confusion_test", "reliability", "mistakes", "class_counts")
SECTIONS = (
    "## Verdict",
    "## Scores by split",
    "## Gaps between splits",
    "## Per class",
    "## Calibration",
    "## Learning curves",
    "## Confusion matrices",
    "## Most confident test mistakes",
    "## Images per class and split",
    "## Data checks",
    "## Thresholds",
)


@pytest.fixture(scope="module")
def built_run(tmp_path_factory):
    """A demo-sized run (750 validation and 750 test images, 10 classes) with its report built once."""
    root = tmp_path_factory.mktemp("built")
    folder = write_run(
        root / "run",
        val=uniform_spec(10, 75, 0.84),
        test=uniform_spec(10, 75, 0.83),
        image_dir=root / "images" / "test",
    )
    (folder / "audit").mkdir()
    (folder / "audit" / "audit.json").write_text(json.dumps({"exact_duplicates": [["a", "b"]], "near": 0}))
    # The gallery's first import of heldout.data pulls in Lightning, which is not the report's own cost.
    importlib.import_module("heldout.data.decode")
    start = time.perf_counter()
    markdown = build_report(folder)
    return folder, markdown, time.perf_counter() - start


def test_build_report_writes_every_section(built_run):
    folder, markdown, _ = built_run
    assert markdown == folder / "report.md"
    text = markdown.read_text()
    for section in SECTIONS:
        assert section in text, section
    assert "Validation is a fair estimate" in text
    assert "exact Clopper-Pearson" in text
    assert "percentile bootstrap" in text
    assert "| validation | 750 |" in text


def test_build_report_writes_every_png(built_run):
    folder, markdown, _ = built_run
    text = markdown.read_text()
    for name in PLOTS:
        path = folder / "report" / f"{name}.png"
        assert path.is_file(), name
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert min(image.size) > 300
        assert f"](report/{name}.png)" in text


def test_build_report_json_matches_markdown(built_run):
    folder, markdown, _ = built_run
    report = json.loads((folder / "report.json").read_text())
    assert report["verdict"]["causes"] == ["fair_estimate"]
    assert report["verdict"]["text"] in markdown.read_text()
    assert report["splits"]["val"]["images"] == 750
    assert report["splits"]["test"]["accuracy"]["value"] == pytest.approx(62 / 75)
    assert len(report["classes"]) == 10
    assert set(report["plots"]) == set(PLOTS)
    assert report["audit"] == {"exact_duplicates": 1, "near": 0}
    assert report["skipped_files"] == {"data_dir": 1}
    assert report["settings"]["confidence_level"] == 0.95


def test_build_report_mentions_leakage_and_skipped(built_run):
    text = built_run[1].read_text()
    assert "The leakage audit found duplicates across splits or label conflicts (exact_duplicates: 1)" in text
    assert "1 unreadable files were left out of the run (data_dir: 1)" in text


def test_build_report_takes_seconds(built_run):
    # About 7 s on 2 CPU cores shared with other jobs (load average 6), mostly drawing plots. The bound
    # catches a runaway cost, not a slow machine.
    assert built_run[2] < 20


def test_build_report_missing_gallery_images(tmp_path):
    folder = write_run(tmp_path / "run", val=uniform_spec(3, 20, 0.7), test=uniform_spec(3, 20, 0.7))
    text = build_report(folder, ReportSettings(bootstrap_resamples=50, gallery_size=4)).read_text()
    assert (folder / "report" / "mistakes.png").is_file()
    assert "4 of these images could not be loaded" in text


def test_build_report_absent_test_class(tmp_path):
    folder = write_run(
        tmp_path / "run",
        val=SplitSpec([30, 30, 30], [0.9, 0.9, 0.9], 0.9),
        test=SplitSpec([30, 30, 0], [0.9, 0.9, 0.0], 0.9),
    )
    text = build_report(folder, ReportSettings(bootstrap_resamples=50, gallery_size=0)).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| class_c |"))
    assert "absent from test" in row
    assert row.rstrip().endswith("| n/a |")


def test_build_report_without_optional_files(tmp_path):
    folder = write_run(tmp_path / "run", val=uniform_spec(3, 20, 0.7), test=uniform_spec(3, 20, 0.7))
    for name in ("history.csv", "manifest.csv", "manifest.json", "skipped.csv"):
        (folder / name).unlink()
    text = build_report(folder, ReportSettings(bootstrap_resamples=50, gallery_size=0)).read_text()
    assert "history.csv not found" in text
    assert "manifest.csv not found" in text
    assert not (folder / "report" / "learning_curves.png").exists()
    report = json.loads((folder / "report.json").read_text())
    assert report["plots"]["class_counts"] is None


def test_build_report_perfect_test_run(tmp_path):
    folder = write_run(tmp_path / "run", val=uniform_spec(3, 20, 1.0), test=uniform_spec(3, 20, 1.0))
    text = build_report(folder, ReportSettings(bootstrap_resamples=50)).read_text()
    assert "No test mistakes to show." in text
    assert not (folder / "report" / "mistakes.png").exists()
    # Empty calibration bins hold NaN, which strict JSON must store as null.
    report = json.loads((folder / "report.json").read_text(), parse_constant=pytest.fail)
    assert None in report["calibration"]["test"]["bin_accuracy"]


def test_build_report_not_a_run_folder(tmp_path):
    with pytest.raises(RunFolderError, match="not a run folder"):
        build_report(tmp_path)


def test_build_report_renders_images_loaded_from_roots(built_run):
    folder, _, _ = built_run
    with Image.open(folder / "report" / "mistakes.png") as image:
        pixels = np.asarray(image.convert("RGB"))
    # Random-noise test images make the gallery far more varied than placeholder tiles on white.
    assert pixels.std() > 40
