"""Generated image folders and ``heldout`` subprocesses for the multi-process tests.

CPU processes stand in for GPUs: ``--trainer.devices 2 --trainer.strategy ddp`` on CPU uses the gloo
backend, with the rendezvous on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("red", "green", "blue")
# With 20 images per class and fractions of 0.25, the split is 30 train, 15 val and 15 test images.
# A batch size of 7 divides neither 15 nor 15 / 2, and gives the two processes a different number of
# evaluation batches (8 images as 7 + 1 on rank 0, 7 images as one batch on rank 1).
BATCH_SIZE = 7
TIMEOUT_S = 240

CONFIG = """\
seed_everything: 7
trainer:
  accelerator: cpu
  devices: 1
  max_epochs: 2
  logger: false
  enable_progress_bar: false
  enable_model_summary: false
  num_sanity_val_steps: 0
model:
  class_path: heldout.model.MobileNetClassifier
  init_args:
    variant: small
    width_mult: 0.5
    weights: null
    warmup_epochs: 0
    # After a few steps the default momentum leaves running statistics near their initial values,
    # and every image gets the same prediction; 0.9 gives varied predictions after one epoch.
    bn_momentum: 0.9
data:
  class_path: heldout.data.ImageFolderDataModule
  init_args:
    data_dir: {data_dir}
    image_size: 32
    batch_size: {batch_size}
    num_workers: 0
    val_fraction: 0.25
    test_fraction: 0.25
    cache_memory_gb: 0.01
"""


def write_images(folder: Path, per_class: int = 20, size: int = 32) -> Path:
    """Write ``per_class`` noisy PNG images per class, each class brighter in its own color channel."""
    rng = np.random.default_rng(0)
    for channel, label in enumerate(CLASSES):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = rng.integers(0, 120, (size, size, 3)).astype(np.uint8)
            pixels[..., channel] += 130
            Image.fromarray(pixels).save(folder / label / f"{index:03d}.png")
    return folder


def write_config(path: Path, data_dir: Path, batch_size: int = BATCH_SIZE) -> Path:
    path.write_text(CONFIG.format(data_dir=data_dir, batch_size=batch_size))
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def heldout_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment for a ``heldout`` subprocess: no cluster variables, a local rendezvous."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("SLURM_", "PL_", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE"))}
    source = str(Path(__file__).resolve().parents[2] / "src")
    environment["PYTHONPATH"] = os.pathsep.join([source, str(Path(__file__).parent)])
    environment.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "OMP_NUM_THREADS": "1"})
    environment.update(extra or {})
    return environment


def heldout_command(*arguments: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "heldout", *map(str, arguments)]


def distributed_arguments(devices: int) -> list[str]:
    if devices == 1:
        return ["--trainer.devices", "1"]
    return ["--trainer.devices", str(devices), "--trainer.strategy", "ddp"]


def run_heldout(*arguments: str | os.PathLike[str], cwd: Path,
                environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``heldout`` to completion and fail with its output when the exit status is not 0."""
    result = subprocess.run(heldout_command(*arguments), cwd=cwd, env=environment or heldout_environment(),
                            capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 0, f"heldout {' '.join(map(str, arguments))} failed:\n{result.stdout}\n{result.stderr}"
    return result


def read_predictions(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def confusion_matrix(rows: list[dict[str, str]], num_classes: int = len(CLASSES)) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=int)
    for row in rows:
        matrix[int(row["target"]), int(row["prediction"])] += 1
    return matrix


def read_metrics(run_dir: Path) -> dict[str, object]:
    return json.loads((run_dir / "metrics.json").read_text())


def read_history(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))
