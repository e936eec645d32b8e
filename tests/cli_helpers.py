"""Build tiny configs and run the ``heldout`` command in-process or in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from heldout.cli import main


def write_config(path: Path, data_dir: Path, run_dir: Path, **overrides: object) -> Path:
    """Write a config for a fast CPU run: MobileNetV3-small at half width on 32 px images."""
    config = {
        "seed_everything": 0,
        "trainer": {"default_root_dir": str(run_dir), "accelerator": "cpu", "devices": 1, "max_epochs": 2,
                    "enable_progress_bar": False, "enable_model_summary": False, "log_every_n_steps": 1},
        "model": {"class_path": "heldout.model.MobileNetClassifier",
                  "init_args": {"width_mult": 0.5, "warmup_epochs": 0}},
        "data": {"class_path": "heldout.data.ImageFolderDataModule",
                 "init_args": {"data_dir": str(data_dir), "image_size": 32, "batch_size": 8, "num_workers": 0,
                               "leakage_check": "off"}},
    }
    for dotted, value in overrides.items():
        target = config
        *parents, leaf = dotted.split(".")
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = value
    path.write_text(yaml.safe_dump(config))
    return path


def run_in_process(*arguments: str) -> int:
    """Run ``heldout`` in this process and return its exit status."""
    try:
        main(list(arguments))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def run_subprocess(*arguments: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m heldout`` in a new process, as a user would from a shell."""
    environment = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "heldout", *arguments], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=environment, check=False)
