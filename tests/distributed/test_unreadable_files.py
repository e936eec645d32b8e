"""Files that break while two processes train are left out alike on both, and listed once in skipped.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.distributed.runs import (
    distributed_arguments,
    read_metrics,
    read_predictions,
    run_heldout,
    write_config,
    write_images,
)

pytestmark = pytest.mark.slow

BROKEN = ("red/000.png", "green/005.png", "blue/010.png")


def test_ddp_broken_files_skipped_once(tmp_path: Path) -> None:
    images = write_images(tmp_path / "images")
    config = write_config(tmp_path / "config.yaml", images)
    callbacks = tmp_path / "callbacks.yaml"
    paths = ", ".join(f'"{images / name}"' for name in BROKEN)
    callbacks.write_text(f"trainer:\n  callbacks:\n    - class_path: break_files.BreakFiles\n"
                         f"      init_args:\n        paths: [{paths}]\n")
    run_dir = tmp_path / "run"

    run_heldout("fit", "-c", config, "-c", callbacks, "--trainer.default_root_dir", run_dir,
                "--trainer.max_epochs", "1", "--write_report", "false", *distributed_arguments(2), cwd=tmp_path)

    with (run_dir / "skipped.csv").open(newline="") as handle:
        skipped = list(csv.DictReader(handle))
    assert sorted(row["path"] for row in skipped) == sorted(BROKEN)
    with (run_dir / "manifest.csv").open(newline="") as handle:
        split_of = {row["path"]: row["split"] for row in csv.DictReader(handle)}
    for row in skipped:
        assert row["reason"].endswith("not a recognised image format")
        # Training and validation meet the file in a worker; the test stage's pre-flight check finds it first.
        if split_of[row["path"]] != "test":
            assert row["reason"].startswith(f"unreadable while loading the {split_of[row['path']]} split: ")
    metrics = read_metrics(run_dir)
    for split in ("val", "test"):
        broken_here = sum(split_of[name] == split for name in BROKEN)
        rows = read_predictions(run_dir / "predictions" / f"{split}.csv")
        assert len(rows) == 15 - broken_here
        assert metrics["num_samples"][split] == 15 - broken_here
        assert not {row["path"].split(":", 1)[1] for row in rows} & set(BROKEN)
