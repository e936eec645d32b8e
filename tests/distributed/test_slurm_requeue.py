"""SLURM pre-emption: the requeue signal writes a checkpoint and requeues the job, and the job resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.distributed.runs import (
    TIMEOUT_S,
    heldout_command,
    heldout_environment,
    read_history,
    run_heldout,
    write_config,
    write_images,
)
from tests.distributed.test_resume import read_progress, write_progress_config

SBATCH = Path(__file__).resolve().parents[2] / "scripts" / "slurm" / "train.sbatch"
JOB_ID = "4242"


def write_recording_command(folder: Path, name: str, record: Path) -> None:
    """Write an executable ``name`` into ``folder`` that only appends its arguments to ``record``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f'#!/bin/sh\necho "$@" >> "{record}"\n')
    script.chmod(0o755)


def slurm_environment(bin_folder: Path) -> dict[str, str]:
    """Return the variables of a one-task SLURM job, with ``bin_folder`` first on PATH."""
    return heldout_environment({
        "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}",
        "SLURM_JOB_ID": JOB_ID, "SLURM_JOB_NAME": "heldout-test", "SLURM_NTASKS": "1",
        "SLURM_NTASKS_PER_NODE": "1", "SLURM_JOB_NUM_NODES": "1", "SLURM_NNODES": "1", "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost",
    })


def run_sbatch(tmp_path: Path, run_dir: Path) -> list[str]:
    """Run the batch script with a recording ``srun`` and return the arguments srun received."""
    record = tmp_path / "srun.txt"
    record.unlink(missing_ok=True)
    write_recording_command(tmp_path / "bin", "srun", record)
    environment = {**slurm_environment(tmp_path / "bin"), "CONFIG": "configs/other.yaml", "RUN_DIR": str(run_dir)}
    subprocess.run(["bash", str(SBATCH), "--trainer.max_epochs", "5"], cwd=tmp_path, env=environment,
                   check=True, capture_output=True, text=True, timeout=60)
    return record.read_text().split()


def test_sbatch_fresh_run_without_ckpt_path(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "hpc_ckpt_1.ckpt").write_bytes(b"mid-epoch")

    arguments = run_sbatch(tmp_path, run_dir)

    assert arguments[:2] == ["heldout", "fit"]
    assert "--ckpt_path" not in arguments
    assert arguments[-2:] == ["--trainer.max_epochs", "5"]
    assert arguments[arguments.index("--trainer.default_root_dir") + 1] == str(run_dir)
    assert not list(run_dir.glob("hpc_ckpt_*.ckpt")), "Lightning would resume from a mid-epoch checkpoint"
    assert (run_dir / "preempted" / "hpc_ckpt_1.ckpt").is_file()


def test_sbatch_requeued_run_resumes_last(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"end of epoch")

    arguments = run_sbatch(tmp_path, run_dir)

    position = arguments.index("--ckpt_path")
    assert arguments[position + 1] == "last"
    assert arguments[-2:] == ["--trainer.max_epochs", "5"]


@pytest.mark.slow
def test_requeue_signal_writes_checkpoint(tmp_path: Path) -> None:
    write_images(tmp_path / "images")
    write_config(tmp_path / "config.yaml", tmp_path / "images")
    progress_file = tmp_path / "progress.txt"
    write_progress_config(tmp_path / "progress.yaml", progress_file, delay_s=0.3)
    requeues = tmp_path / "scontrol.txt"
    write_recording_command(tmp_path / "bin", "scontrol", requeues)
    environment = slurm_environment(tmp_path / "bin")
    run_dir = tmp_path / "run"
    arguments = ["fit", "-c", tmp_path / "config.yaml", "-c", tmp_path / "progress.yaml",
                 "--trainer.default_root_dir", run_dir, "--trainer.max_epochs", "3"]

    process = subprocess.Popen(heldout_command(*arguments), cwd=tmp_path, env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = run_dir / "hpc_ckpt_1.ckpt"
    deadline = time.monotonic() + TIMEOUT_S
    signalled = False
    try:
        while time.monotonic() < deadline and process.poll() is None:
            progress = read_progress(progress_file)
            if not signalled and progress is not None and progress >= (1, 1):
                process.send_signal(signal.SIGUSR1)
                signalled = True
            if checkpoint.is_file() and requeues.is_file():
                break
            time.sleep(0.05)
    finally:
        # SLURM kills a requeued job with SIGKILL once its grace period is over.
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    assert signalled, "training never reached epoch 1"
    assert requeues.read_text().split() == ["requeue", JOB_ID]
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert saved["epoch"] == 1
    assert "state_dict" in saved

    write_progress_config(tmp_path / "progress.yaml", progress_file, delay_s=0.0)
    run_heldout(*arguments, "--ckpt_path", checkpoint, cwd=tmp_path, environment=environment)
    assert [int(row["epoch"]) for row in read_history(run_dir)] == [0, 1, 2]
    assert (run_dir / "predictions" / "test.csv").is_file()
