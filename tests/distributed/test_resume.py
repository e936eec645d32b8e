"""A fit killed with SIGKILL mid-epoch and resumed with ``--ckpt_path last`` ends as an uninterrupted fit."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.distributed.runs import (
    TIMEOUT_S,
    heldout_command,
    heldout_environment,
    read_history,
    read_metrics,
    run_heldout,
    write_config,
    write_images,
)

pytestmark = pytest.mark.slow

MAX_EPOCHS = "3"
# Epoch 1 of 3 has five training batches (30 images, batch size 7); the kill lands after its second.
KILL_AT = (1, 2)


def write_progress_config(path: Path, progress_file: Path, delay_s: float) -> Path:
    path.write_text("trainer:\n  callbacks:\n    - class_path: batch_progress.BatchProgress\n"
                    f"      init_args:\n        path: {progress_file}\n        delay_s: {delay_s}\n")
    return path


def read_progress(path: Path) -> tuple[int, int] | None:
    try:
        epoch, batch = path.read_text().split()
    except (FileNotFoundError, ValueError):
        return None
    return int(epoch), int(batch)


def fit_arguments(folder: Path, run_dir: Path, deterministic: bool) -> list[str | Path]:
    return ["fit", "-c", folder / "config.yaml", "-c", folder / "progress.yaml",
            "--trainer.default_root_dir", run_dir, "--trainer.max_epochs", MAX_EPOCHS,
            "--trainer.deterministic", str(deterministic).lower()]


def kill_mid_epoch(arguments: list[str | Path], cwd: Path, progress_file: Path) -> tuple[int, int]:
    """Start ``heldout fit``, SIGKILL it once training reaches ``KILL_AT``, and return where it was."""
    process = subprocess.Popen(heldout_command(*arguments), cwd=cwd, env=heldout_environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline and process.poll() is None:
            progress = read_progress(progress_file)
            if progress is not None and progress >= KILL_AT:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                return progress
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    pytest.fail(f"heldout fit ended with status {process.returncode} before reaching epoch {KILL_AT[0]}, "
                f"batch {KILL_AT[1]}")


def fit_killed_and_resumed(folder: Path, name: str, deterministic: bool) -> Path:
    run_dir = folder / name
    progress_file = folder / f"{name}.progress"
    write_progress_config(folder / "progress.yaml", progress_file, delay_s=0.3)
    killed_at = kill_mid_epoch(fit_arguments(folder, run_dir, deterministic), folder, progress_file)
    assert killed_at[0] == KILL_AT[0], f"killed at epoch {killed_at[0]}, not mid-epoch {KILL_AT[0]}"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    manifest_before = (run_dir / "manifest.csv").read_text()

    write_progress_config(folder / "progress.yaml", progress_file, delay_s=0.0)
    run_heldout(*fit_arguments(folder, run_dir, deterministic), "--ckpt_path", "last", cwd=folder)
    assert (run_dir / "manifest.csv").read_text() == manifest_before
    return run_dir


def fit_uninterrupted(folder: Path, name: str, deterministic: bool) -> Path:
    run_dir = folder / name
    write_progress_config(folder / "progress.yaml", folder / f"{name}.progress", delay_s=0.0)
    run_heldout(*fit_arguments(folder, run_dir, deterministic), cwd=folder)
    return run_dir


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_images(tmp_path / "images")
    write_config(tmp_path / "config.yaml", tmp_path / "images")
    return tmp_path


def test_resume_after_kill_deterministic(folder: Path) -> None:
    uninterrupted = fit_uninterrupted(folder, "uninterrupted", deterministic=True)
    resumed = fit_killed_and_resumed(folder, "resumed", deterministic=True)

    expected, actual = read_metrics(uninterrupted), read_metrics(resumed)
    assert (resumed / "manifest.csv").read_text() == (uninterrupted / "manifest.csv").read_text()
    assert actual["best_epoch"] == expected["best_epoch"]
    assert read_history(resumed) == read_history(uninterrupted)
    for key in ("val/loss", "val/acc", "test/loss", "test/acc", "test/f1"):
        assert actual[key] == expected[key], key
    assert (resumed / "predictions" / "test.csv").read_text() == (uninterrupted / "predictions" / "test.csv").read_text()
    assert (resumed / "config.resumed-1.yaml").is_file()
    assert not list(resumed.rglob("*.tmp*"))

