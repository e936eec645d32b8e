"""Shared steps of the benchmarks that train real runs: write digit folders, run ``heldout fit``, read results.

Each run gets a config written next to its run folder. ``heldout fit`` runs in a subprocess with its log in
``fit.log`` inside the run folder, so a benchmark prints only its own figures.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image
from scipy.stats import binomtest

from heldout.data.demo import load_mnist_sample

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"
LOG_FILE = "fit.log"


@dataclass
class RunResult:
    """Files of a finished run folder, parsed."""

    folder: Path
    metrics: dict[str, Any]
    report: dict[str, Any]
    report_markdown: str
    audit: dict[str, Any] | None
    seconds: float

    def accuracy(self, split: str) -> tuple[float, float, float, int]:
        """Return accuracy, the low and high ends of its 95% interval, and the image count of a split."""
        summary = self.report["splits"][split]
        estimate = summary["accuracy"]
        return estimate["value"], estimate["low"], estimate["high"], summary["images"]

    @property
    def verdict(self) -> str:
        return self.report["verdict"]["text"]

    @property
    def causes(self) -> list[str]:
        return self.report["verdict"]["causes"]

    @property
    def cross_split_pairs(self) -> int | None:
        return None if self.audit is None else int(self.audit["counts"]["cross_split_pairs"])


def shuffled_digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the demo digits in a seeded random order, with each digit's index in the original sample.

    The sample is sorted by label, so any slice of the unshuffled array holds only one or two classes.
    """
    images, labels = load_mnist_sample()
    order = np.random.default_rng(seed).permutation(len(labels))
    return images[order], labels[order], order


def save_digits(folder: Path, images: np.ndarray, labels: np.ndarray, names: list[str], **options: object) -> None:
    """Write each image as ``folder/<label>/<name>``; the suffix chooses the format, ``options`` go to PIL."""
    for image, label, name in zip(images, labels, names, strict=True):
        class_folder = folder / str(int(label))
        class_folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(class_folder / name, **options)


def demo_config(run_dir: Path, data: dict[str, Any], model: dict[str, Any] | None = None,
                optimizer: dict[str, Any] | None = None, **top_level: Any) -> dict[str, Any]:
    """Return ``configs/demo.yaml`` turned into an image-folder run with the given overrides.

    ``data`` and ``model`` update the data and model ``init_args``, ``optimizer`` the optimizer's
    ``init_args``. Other keyword arguments replace whole top-level sections (``trainer``, ``early_stopping``)
    after ``default_root_dir`` and the progress bar have been set.
    """
    config = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    config["trainer"].update(default_root_dir=str(run_dir), enable_progress_bar=False)
    config["data"]["class_path"] = "heldout.data.ImageFolderDataModule"
    config["data"]["init_args"].update(data)
    config["model"]["init_args"].update(model or {})
    config["model"]["init_args"]["optimizer"]["init_args"].update(optimizer or {})
    for section, values in top_level.items():
        if isinstance(config.get(section), dict):
            config[section].update(values)
        else:
            config[section] = values
    return config


def fit(config: dict[str, Any], config_path: Path) -> RunResult:
    """Write ``config`` to ``config_path``, run ``heldout fit`` on it and read the run folder.

    An existing run folder is removed first, because ``heldout fit`` refuses to start in one.

    Raises:
        RuntimeError: ``heldout fit`` exited with an error; the message contains the end of its log.
    """
    run_dir = Path(config["trainer"]["default_root_dir"])
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    command = [sys.executable, "-m", "heldout", "fit", "-c", str(config_path)]
    started = time.monotonic()
    with (run_dir / LOG_FILE).open("w", encoding="utf-8") as log:
        completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - started
    if completed.returncode != 0:
        tail = (run_dir / LOG_FILE).read_text(encoding="utf-8").splitlines()[-30:]
        raise RuntimeError(f"heldout fit failed with exit status {completed.returncode} on {config_path}; "
                           f"last lines of {run_dir / LOG_FILE}:\n" + "\n".join(tail))
    return read_run(run_dir, seconds)


def read_run(run_dir: Path, seconds: float = float("nan")) -> RunResult:
    """Parse ``metrics.json``, ``report.json``, ``report.md`` and, when present, ``audit/audit.json``."""
    audit_path = run_dir / "audit" / "audit.json"
    return RunResult(
        folder=run_dir,
        metrics=json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")),
        report=json.loads((run_dir / "report.json").read_text(encoding="utf-8")),
        report_markdown=(run_dir / "report.md").read_text(encoding="utf-8"),
        audit=json.loads(audit_path.read_text(encoding="utf-8")) if audit_path.is_file() else None,
        seconds=seconds,
    )


def clopper_pearson(correct: int, total: int, level: float = 0.95) -> tuple[float, float]:
    """Return the exact binomial (Clopper-Pearson) interval of ``correct / total``."""
    interval = binomtest(correct, total).proportion_ci(confidence_level=level, method="exact")
    return float(interval.low), float(interval.high)


def format_accuracy(value: float, low: float, high: float) -> str:
    return f"{value:.1%} [{low:.1%}, {high:.1%}]"

