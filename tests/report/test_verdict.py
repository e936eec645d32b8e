from pathlib import Path

import pytest

from heldout.report.load import load_run
from heldout.report.settings import ReportSettings
from heldout.report.summary import summarize
from heldout.report.verdict import (
    FAILURE_IN_FEW_CLASSES,
    FAIR_ESTIMATE,
    OVERFITTING,
    POOR_CALIBRATION,
    TOO_FEW_VAL_IMAGES,
    VAL_NOT_REPRESENTATIVE,
    judge,
    write_verdict,
)

from .run_folder import SplitSpec, uniform_spec, write_run

FAST = ReportSettings(bootstrap_resamples=100)


def causes_of(folder: Path, settings: ReportSettings = FAST) -> list[str]:
    findings = judge(summarize(load_run(folder), settings), settings)
    return [finding.cause for finding in findings]


def test_verdict_fair_estimate(tmp_path):
    folder = write_run(tmp_path / "run", val=uniform_spec(10, 75, 0.84), test=uniform_spec(10, 75, 0.83))
    assert causes_of(folder) == [FAIR_ESTIMATE]


def test_verdict_overfitting(tmp_path):
    folder = write_run(
        tmp_path / "run", val=uniform_spec(10, 75, 0.80), test=uniform_spec(10, 75, 0.80), train_accuracy=0.99
    )
    assert causes_of(folder) == [OVERFITTING]


def test_verdict_overfitting_needs_significance(tmp_path):
    # A 6-point gap measured on 50 training images is within chance.
    folder = write_run(
        tmp_path / "run",
        val=uniform_spec(10, 75, 0.80),
        test=uniform_spec(10, 75, 0.80),
        train_accuracy=0.86,
        train_images=50,
    )
    assert OVERFITTING not in causes_of(folder)


def test_verdict_val_not_representative(tmp_path):
    folder = write_run(tmp_path / "run", val=uniform_spec(10, 75, 0.92), test=uniform_spec(10, 75, 0.80))
    causes = causes_of(folder)
    assert causes[0] == VAL_NOT_REPRESENTATIVE
    assert FAILURE_IN_FEW_CLASSES not in causes


def test_verdict_val_below_test_not_representative(tmp_path):
    folder = write_run(tmp_path / "run", val=uniform_spec(10, 75, 0.72), test=uniform_spec(10, 75, 0.86))
    findings = judge(summarize(load_run(folder), FAST), FAST)
    assert findings[0].cause == VAL_NOT_REPRESENTATIVE
    assert "underestimates" in findings[0].detail


def test_verdict_failure_in_few_classes(tmp_path):
    # One of 20 classes drops from 90% to 40% recall, which moves overall accuracy by only 2.5 points.
    test_recalls = [0.9] * 20
    test_recalls[3] = 0.4
    folder = write_run(
        tmp_path / "run",
        val=uniform_spec(20, 50, 0.9),
        test=SplitSpec([50] * 20, test_recalls, confidence=0.875),
    )
    findings = judge(summarize(load_run(folder), FAST), FAST)
    assert [finding.cause for finding in findings] == [FAILURE_IN_FEW_CLASSES]
    assert findings[0].numbers["classes"] == ["class_d"]
    assert "class_d" in findings[0].detail


def test_verdict_many_failing_classes_not_concentrated(tmp_path):
    # Half of the classes drop: that is a shift of the whole test split, not a few classes.
    test_recalls = [0.9, 0.4] * 5
    folder = write_run(
        tmp_path / "run", val=uniform_spec(10, 75, 0.9), test=SplitSpec([75] * 10, test_recalls, 0.65)
    )
    causes = causes_of(folder)
    assert FAILURE_IN_FEW_CLASSES not in causes
    assert causes[0] == VAL_NOT_REPRESENTATIVE


def test_verdict_poor_calibration(tmp_path):
    folder = write_run(
        tmp_path / "run", val=uniform_spec(10, 75, 0.84, 0.99), test=uniform_spec(10, 75, 0.84, 0.99)
    )
    findings = judge(summarize(load_run(folder), FAST), FAST)
    assert [finding.cause for finding in findings] == [POOR_CALIBRATION]
    assert findings[0].numbers["ece"] == pytest.approx(0.15, abs=1e-6)
    assert "overconfident" in findings[0].detail


def test_verdict_too_few_val_images(tmp_path):
    folder = write_run(tmp_path / "run", val=uniform_spec(10, 4, 0.75), test=uniform_spec(10, 75, 0.84))
    findings = judge(summarize(load_run(folder), FAST), FAST)
    assert findings[0].cause == TOO_FEW_VAL_IMAGES
    assert findings[0].numbers["images"] == 40
    assert "40 images" in findings[0].detail


def test_verdict_wide_interval_counts_as_too_few(tmp_path):
    # 150 images pass the image minimum, but at 50% accuracy the interval is about 16 points wide.
    folder = write_run(tmp_path / "run", val=uniform_spec(10, 15, 0.5), test=uniform_spec(10, 15, 0.5))
    assert TOO_FEW_VAL_IMAGES in causes_of(folder)


def test_verdict_orders_causes_by_severity(tmp_path):
    folder = write_run(
        tmp_path / "run",
        val=uniform_spec(10, 75, 0.92, 0.99),
        test=uniform_spec(10, 75, 0.80, 0.99),
        train_accuracy=0.999,
    )
    assert causes_of(folder) == [VAL_NOT_REPRESENTATIVE, OVERFITTING, POOR_CALIBRATION]


def test_write_verdict_numbers_each_cause(tmp_path):
    folder = write_run(
        tmp_path / "run",
        val=uniform_spec(10, 75, 0.84, 0.99),
        test=uniform_spec(10, 75, 0.84, 0.99),
        train_accuracy=0.99,
    )
    findings = judge(summarize(load_run(folder), FAST), FAST)
    paragraph = write_verdict(findings, "The leakage audit found duplicates.")
    assert paragraph.startswith("The evidence points to 2 causes")
    assert "(1) The model overfits" in paragraph
    assert "(2) The model is poorly calibrated" in paragraph
    assert paragraph.endswith("The leakage audit found duplicates.")
