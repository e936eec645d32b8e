import json

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, log_loss

from heldout.report.load import load_run
from heldout.report.settings import ReportSettings
from heldout.report.summary import BOOTSTRAP, CLOPPER_PEARSON, NO_INTERVAL, summarize

from .run_folder import SplitSpec, uniform_spec, write_run

FAST = ReportSettings(bootstrap_resamples=200)


def test_summarize_matches_sklearn(tmp_path):
    folder = write_run(tmp_path / "run", val=uniform_spec(4, 30, 0.7), test=uniform_spec(4, 30, 0.6))
    run = load_run(folder)
    summary = summarize(run, FAST)
    test = summary.splits["test"]

    assert test.accuracy.value == pytest.approx(accuracy_score(run.test.target, run.test.prediction))
    assert test.macro_f1.value == pytest.approx(
        f1_score(run.test.target, run.test.prediction, average="macro")
    )
    # The table stores probabilities rounded to 6 digits, so they are renormalized for sklearn.
    probabilities = run.test.probabilities / run.test.probabilities.sum(axis=1, keepdims=True)
    assert test.loss.value == pytest.approx(log_loss(run.test.target, probabilities), rel=1e-4)
    assert test.accuracy.method == CLOPPER_PEARSON
    assert test.macro_f1.method == BOOTSTRAP
    assert test.macro_f1.low < test.macro_f1.value < test.macro_f1.high
    assert test.loss.low < test.loss.value < test.loss.high


def test_summarize_train_uses_binomial_interval(tmp_path):
    folder = write_run(
        tmp_path / "run",
        val=uniform_spec(3, 20, 0.8),
        test=uniform_spec(3, 20, 0.8),
        train_accuracy=0.9,
        train_images=1000,
    )
    train = summarize(load_run(folder), FAST).splits["train"]
    assert train.correct == 900
    assert train.accuracy.method == CLOPPER_PEARSON
    assert train.accuracy.low < 0.9 < train.accuracy.high
    assert train.macro_f1.method == NO_INTERVAL
    assert train.loss.low is None


def test_summarize_train_from_history(tmp_path):
    folder = write_run(tmp_path / "run", val=uniform_spec(3, 20, 0.8), test=uniform_spec(3, 20, 0.8))
    metrics = json.loads((folder / "metrics.json").read_text())
    del metrics["train/acc"]
    (folder / "metrics.json").write_text(json.dumps(metrics))
    run = load_run(folder)
    best = run.history[run.history["epoch"] == metrics["best_epoch"]]["train/acc"].iloc[0]
    assert summarize(run, FAST).splits["train"].accuracy.value == pytest.approx(best)


def test_summarize_small_val_reads_as_uncertain(tmp_path):
    folder = write_run(tmp_path / "run", val=uniform_spec(2, 10, 0.8), test=uniform_spec(2, 500, 0.8))
    splits = summarize(load_run(folder), FAST).splits
    val_width = splits["val"].accuracy.high - splits["val"].accuracy.low
    test_width = splits["test"].accuracy.high - splits["test"].accuracy.low
    assert val_width > 0.3
    assert test_width < 0.06


def test_summarize_absent_test_class(tmp_path):
    # class_c has validation images but none in test, although test mistakes may still predict it.
    folder = write_run(
        tmp_path / "run",
        val=SplitSpec([40, 40, 40], [0.9, 0.9, 0.9], 0.9),
        test=SplitSpec([40, 40, 0], [0.9, 0.9, 0.0], 0.9),
    )
    run = load_run(folder)
    summary = summarize(run, FAST)
    absent = summary.classes[2]
    assert absent.test.support == 0
    assert absent.test.recall is None
    assert absent.test.f1 is None
    assert absent.recall_drop is None
    present = [row for row in summary.classes if row.test.support > 0]
    expected = np.mean([row.test.f1 for row in present])
    assert summary.splits["test"].macro_f1.value == pytest.approx(expected)


def test_summarize_notes_metrics_mismatch(tmp_path):
    folder = write_run(tmp_path / "run", val=uniform_spec(3, 40, 0.8), test=uniform_spec(3, 40, 0.8))
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["val/acc"] = 0.95
    (folder / "metrics.json").write_text(json.dumps(metrics))
    notes = summarize(load_run(folder), FAST).notes
    assert any("val/acc = 0.9500" in note and "different checkpoint" in note for note in notes)


def test_summarize_gap_uses_fisher_test(tmp_path):
    folder = write_run(tmp_path / "run", val=uniform_spec(5, 100, 0.9), test=uniform_spec(5, 100, 0.8))
    gap = summarize(load_run(folder), FAST).gaps["val-test"]
    assert gap.difference == pytest.approx(0.1)
    assert gap.p_value == pytest.approx(stats.fisher_exact([[450, 50], [400, 100]]).pvalue)
    assert gap.significant
