"""Validation and test figures of a run on two processes equal those of one process on the same checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from tests.distributed.runs import (
    confusion_matrix,
    distributed_arguments,
    read_history,
    read_metrics,
    read_predictions,
    run_heldout,
    write_config,
    write_images,
)

pytestmark = pytest.mark.slow

SPLIT_SIZE = 15


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("exact")
    write_images(folder / "images")
    write_config(folder / "config.yaml", folder / "images")
    return folder


@pytest.fixture(scope="module")
def ddp_run(workspace: Path) -> Path:
    """A one-epoch fit on two processes, with its validation and test after fit."""
    run_dir = workspace / "ddp-run"
    run_heldout("fit", "-c", workspace / "config.yaml", "--trainer.default_root_dir", run_dir,
                "--trainer.max_epochs", "1", *distributed_arguments(2), cwd=workspace)
    return run_dir


def evaluate(stage: str, run_dir: Path, workspace: Path, devices: int, ckpt_path: str) -> tuple[dict, list]:
    """Run ``heldout validate|test`` and return its metrics.json and prediction rows."""
    run_heldout(stage, "-c", workspace / "config.yaml", "--trainer.default_root_dir", run_dir,
                "--ckpt_path", ckpt_path, *distributed_arguments(devices), cwd=workspace)
    split = "val" if stage == "validate" else "test"
    return read_metrics(run_dir), read_predictions(run_dir / "predictions" / f"{split}.csv")


def assert_same_predictions(single: list[dict[str, str]], multi: list[dict[str, str]]) -> None:
    assert len(single) == SPLIT_SIZE
    assert len(multi) == SPLIT_SIZE
    assert len({row["path"] for row in multi}) == SPLIT_SIZE, "a sample was written twice"
    assert [row["path"] for row in multi] == [row["path"] for row in single]
    assert [row["target"] for row in multi] == [row["target"] for row in single]
    assert [row["prediction"] for row in multi] == [row["prediction"] for row in single]
    np.testing.assert_array_equal(confusion_matrix(multi), confusion_matrix(single))
    single_probs = np.array([[float(v) for k, v in row.items() if k.startswith("prob_")] for row in single])
    multi_probs = np.array([[float(v) for k, v in row.items() if k.startswith("prob_")] for row in multi])
    np.testing.assert_allclose(multi_probs, single_probs, atol=1e-5)


def csv_accuracy(rows: list[dict[str, str]]) -> float:
    return accuracy_score([int(r["target"]) for r in rows], [int(r["prediction"]) for r in rows])


def test_test_split_same_on_two_processes(ddp_run: Path, workspace: Path) -> None:
    run_dir = workspace / "test-copy"
    shutil.copytree(ddp_run, run_dir)

    single_metrics, single_rows = evaluate("test", run_dir, workspace, 1, "best")
    multi_metrics, multi_rows = evaluate("test", run_dir, workspace, 2, "best")

    assert_same_predictions(single_rows, multi_rows)
    assert multi_metrics["test/acc"] == single_metrics["test/acc"]
    assert multi_metrics["test/acc"] == pytest.approx(csv_accuracy(multi_rows), abs=1e-6)
    assert multi_metrics["test/f1"] == pytest.approx(single_metrics["test/f1"], abs=1e-6)
    assert multi_metrics["test/loss"] == pytest.approx(single_metrics["test/loss"], abs=1e-5)
    assert multi_metrics["num_samples"]["test"] == SPLIT_SIZE


def test_fit_validation_same_on_one_process(ddp_run: Path, workspace: Path) -> None:
    """The epoch's validation figures of a two-process fit equal one process validating its checkpoint.

    Each DDP process updates its own BatchNorm running statistics during training, so the processes could
    validate different models. The checkpoint contains rank 0's statistics.
    """
    epoch = read_history(ddp_run)[-1]
    after_fit_rows = read_predictions(ddp_run / "predictions" / "val.csv")
    run_dir = workspace / "validate-copy"
    shutil.copytree(ddp_run, run_dir)

    _, single_rows = evaluate("validate", run_dir, workspace, 1, "last")

    assert_same_predictions(single_rows, after_fit_rows)
    assert float(epoch["val/acc"]) == pytest.approx(csv_accuracy(single_rows), abs=1e-6)
    assert float(epoch["val/loss"]) > 0.0


def test_manifest_and_counts_written_once(ddp_run: Path) -> None:
    metrics = read_metrics(ddp_run)
    assert metrics["num_samples"] == {"train": 30, "val": SPLIT_SIZE, "test": SPLIT_SIZE}
    assert sorted(path.name for path in (ddp_run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert not list(ddp_run.rglob("*.tmp"))
    assert len(read_history(ddp_run)) == 1
