"""Files that break while a run is training end up in the run folder's skipped.csv, and the run finishes."""

import csv
import json
from pathlib import Path

from tests.cli_helpers import run_in_process, write_config


def _split_files(run_dir: Path, split: str) -> list[str]:
    with (run_dir / "manifest.csv").open() as handle:
        return sorted(row["path"] for row in csv.DictReader(handle) if row["split"] == split)


def test_broken_files_listed_in_skipped_csv(image_folder: Path, tmp_path: Path) -> None:
    # A first run writes the split, so the second run breaks one training file and one validation file from it.
    first_run = tmp_path / "first"
    config = write_config(tmp_path / "first.yaml", image_folder, first_run, **{"trainer.max_epochs": 1,
                          "trainer.limit_train_batches": 1, "trainer.limit_val_batches": 1,
                          "write_report": False, "test_after_fit": False})
    assert run_in_process("fit", "-c", str(config)) == 0
    broken = [_split_files(first_run, "train")[0], _split_files(first_run, "val")[0]]

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("manifest.csv", "manifest.json"):
        (run_dir / name).write_bytes((first_run / name).read_bytes())
    callback = {"class_path": "tests.distributed.break_files.BreakFiles",
                "init_args": {"paths": [str(image_folder / path) for path in broken]}}
    config = write_config(tmp_path / "config.yaml", image_folder, run_dir, **{
        "trainer.max_epochs": 1, "trainer.callbacks": [callback], "write_report": False,
        "data.init_args.num_workers": 1, "data.init_args.cache_memory_gb": 0})
    assert run_in_process("fit", "-c", str(config)) == 0

    with (run_dir / "skipped.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["path"] for row in rows) == sorted(broken)
    reasons = {row["path"]: row["reason"] for row in rows}
    assert reasons[broken[0]].startswith("unreadable while loading the train split: ")
    assert reasons[broken[1]].startswith("unreadable while loading the val split: ")
    # The broken files are left out of the sample counts and of the validation predictions.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_samples"]["train"] == len(_split_files(run_dir, "train")) - 1
    assert metrics["num_samples"]["val"] == len(_split_files(run_dir, "val")) - 1
    with (run_dir / "predictions" / "val.csv").open() as handle:
        predicted = [row["path"] for row in csv.DictReader(handle)]
    assert len(predicted) == metrics["num_samples"]["val"]
    assert not any(path.endswith(broken[1]) for path in predicted)
