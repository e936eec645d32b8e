"""Smoke test of the README demo command, cut to a few steps."""

import json
from pathlib import Path

from tests.cli_helpers import run_subprocess

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def test_demo_config_runs_few_steps(tmp_path: Path) -> None:
    result = run_subprocess(
        "fit", "-c", str(CONFIG), "--trainer.default_root_dir", "runs/demo", "--trainer.max_epochs", "1",
        "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "2", "--trainer.limit_test_batches", "2",
        "--trainer.enable_progress_bar", "false", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    digits = list((tmp_path / "data" / "mnist-demo").rglob("*.png"))
    assert len(digits) == 5000
    run_dir = tmp_path / "runs" / "demo"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("best_epoch", "train/acc", "val/acc", "val/loss", "test/acc", "test/loss"):
        assert key in metrics, key
    assert metrics["classes"] == [str(digit) for digit in range(10)]
    assert sum(metrics["num_samples"].values()) == 5000
    assert "val - test accuracy gap" in result.stdout
    assert (run_dir / "report.md").is_file()
