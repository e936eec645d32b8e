import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.cli_helpers import run_in_process, run_subprocess, write_config
from tests.conftest import write_image_folder

REQUIRED_METRICS = ("best_epoch", "train/acc", "val/acc", "val/loss", "test/acc", "test/loss")


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One two-epoch fit shared by the tests of this module; tests that change the run folder come last."""
    root = tmp_path_factory.mktemp("fitted")
    run_dir = root / "run"
    config = write_config(root / "config.yaml", write_image_folder(root / "images"), run_dir)
    assert run_in_process("fit", "-c", str(config)) == 0
    return config, run_dir


def test_fit_writes_run_folder(fitted_run: tuple[Path, Path]) -> None:
    _, run_dir = fitted_run
    for name in ("config.yaml", "manifest.csv", "manifest.json", "metrics.json", "history.csv",
                 "checkpoints/best.ckpt", "checkpoints/last.ckpt", "logs/metrics.csv",
                 "predictions/val.csv", "predictions/test.csv"):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "logs" / "tensorboard").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in REQUIRED_METRICS:
        assert metrics[key] is not None, key
    assert metrics["num_samples"] == {"train": 42, "val": 9, "test": 9}
    assert metrics["classes"] == ["class_0", "class_1", "class_2"]


def test_fit_test_metrics_match_predictions(fitted_run: tuple[Path, Path]) -> None:
    _, run_dir = fitted_run
    with (run_dir / "predictions" / "test.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 9
    accuracy = sum(row["target"] == row["prediction"] for row in rows) / len(rows)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] == pytest.approx(accuracy)


def test_test_subcommand_in_new_process(fitted_run: tuple[Path, Path]) -> None:
    config, run_dir = fitted_run
    (run_dir / "predictions" / "test.csv").unlink()
    fit_log = (run_dir / "logs" / "metrics.csv").read_bytes()
    result = run_subprocess("test", "-c", str(config), "--ckpt_path", "best")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run_dir / "predictions" / "test.csv").is_file()
    assert "val - test accuracy gap" in result.stdout
    # The fit's own log is kept; the test command logs to a folder of its own.
    assert (run_dir / "logs" / "metrics.csv").read_bytes() == fit_log
    assert "test/acc" in (run_dir / "logs" / "test" / "metrics.csv").read_text()
    assert (run_dir / "config.test.yaml").is_file()
    assert not list(run_dir.glob("config.resumed*"))


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _probabilities(row: dict[str, str]) -> list[float]:
    return [float(value) for key, value in row.items() if key.startswith("prob_")]


def test_predict_without_dir_uses_test_split(fitted_run: tuple[Path, Path]) -> None:
    config, run_dir = fitted_run
    assert run_in_process("predict", "-c", str(config)) == 0

    predicted = _read_rows(run_dir / "predictions" / "predict.csv")
    tested = _read_rows(run_dir / "predictions" / "test.csv")
    assert [row["path"] for row in predicted] == [row["path"] for row in tested]
    assert [row["target"] for row in predicted] == [row["target"] for row in tested]
    assert [row["prediction"] for row in predicted] == [row["prediction"] for row in tested]


def test_predict_dir_lists_every_file(fitted_run: tuple[Path, Path], tmp_path: Path) -> None:
    config, run_dir = fitted_run
    tested = {row["path"].split(":", 1)[1]: row for row in _read_rows(run_dir / "predictions" / "test.csv")}
    images = Path(json.loads((run_dir / "manifest.json").read_text())["roots"]["data_dir"])
    folder = tmp_path / "new"
    # The test images again, without classes, two levels deep, plus a broken file and a text file.
    for number, relative in enumerate(sorted(tested)):
        target = folder / ("deeper" if number % 2 else "") / f"photo_{number}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((images / relative).read_bytes())
    (folder / "deeper" / "broken.jpg").write_text("not an image\n")
    (folder / "notes.txt").write_text("not an image either\n")

    assert run_in_process("predict", "-c", str(config), "--data.predict_dir", str(folder)) == 0

    rows = {row["path"]: row for row in _read_rows(run_dir / "predictions" / "predict.csv")}
    assert len(rows) == len(tested) + 1
    broken = rows.pop("predict_dir:deeper/broken.jpg")
    assert broken["error"] == "not a recognised image format"
    assert broken["prediction"] == ""
    classes = json.loads((run_dir / "metrics.json").read_text())["classes"]
    for number, relative in enumerate(sorted(tested)):
        row = rows[f"predict_dir:{'deeper/' if number % 2 else ''}photo_{number}.png"]
        assert row["target"] == ""
        assert row["error"] == ""
        assert row["prediction"] == tested[relative]["prediction"]
        assert row["predicted_class"] == classes[int(row["prediction"])]
        assert _probabilities(row) == pytest.approx(_probabilities(tested[relative]), abs=1e-5)


def test_predict_dir_missing_exits_with_one_line(fitted_run: tuple[Path, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    config, _ = fitted_run
    missing = tmp_path / "nowhere"

    assert run_in_process("predict", "-c", str(config), "--data.predict_dir", str(missing)) == 2

    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (f"heldout: error: data.predict_dir {missing} was not found; expected a folder of images "
                     "(subfolders are included).")


def test_report_notes_mixed_checkpoints(fitted_run: tuple[Path, Path]) -> None:
    config, run_dir = fitted_run
    assert run_in_process("test", "-c", str(config), "--ckpt_path", "last") == 0

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert Path(metrics["val_checkpoint"]).name == "best.ckpt"
    assert Path(metrics["test_checkpoint"]).name == "last.ckpt"
    notes = json.loads((run_dir / "report.json").read_text())["notes"]
    [note] = [note for note in notes if note.startswith("Validation predictions come from ")]
    assert "last.ckpt" in note


@pytest.mark.parametrize(("subcommand", "name", "damage", "reason"), [
    ("test", "last", "truncate", "the file is damaged, perhaps cut short while it was written or copied"),
    ("fit", "last", "text", "the file was not written by torch.save"),
    # metrics.json of the copy still names the original run's intact best.ckpt.
    ("test", "best", "truncate", "the file is damaged, perhaps cut short while it was written or copied"),
])
def test_damaged_run_checkpoint_one_line(fitted_run: tuple[Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture, subcommand: str, name: str,
                                         damage: str, reason: str) -> None:
    config, run_dir = fitted_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    checkpoint = copy / "checkpoints" / f"{name}.ckpt"
    if damage == "truncate":
        checkpoint.write_bytes(checkpoint.read_bytes()[:4000])
    else:
        checkpoint.write_text("hello\n")

    status = run_in_process(subcommand, "-c", str(config), "--trainer.default_root_dir", str(copy),
                            "--ckpt_path", name)

    assert status == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith(f"heldout: error: Cannot load --ckpt_path {name} ({checkpoint}) as a "
                                "checkpoint: ")
    assert reason in error[-1]
    assert "Traceback" not in "\n".join(error)


@pytest.mark.parametrize(("subcommand", "name", "overrides", "expected"), [
    ("test", "best", ["--model.init_args.variant", "large"],
     "was trained with model.init_args variant='small', but the model is configured with variant='large'. "
     "Pass --model.init_args.variant small to match the checkpoint"),
    ("fit", "last", ["--model.init_args.width_mult", "1.0", "--trainer.max_epochs", "3"],
     "was trained with model.init_args width_mult=0.5, but the model is configured with width_mult=1.0. "
     "Pass --model.init_args.width_mult 0.5 to match the checkpoint"),
])
def test_other_architecture_checkpoint_one_line(fitted_run: tuple[Path, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture, subcommand: str, name: str,
                                                overrides: list[str], expected: str) -> None:
    config, run_dir = fitted_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)

    status = run_in_process(subcommand, "-c", str(config), "--trainer.default_root_dir", str(copy),
                            "--ckpt_path", name, *overrides)

    assert status == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith(f"heldout: error: The checkpoint {copy / 'checkpoints' / f'{name}.ckpt'} ")
    assert expected in error[-1]
    assert "Traceback" not in "\n".join(error)


def test_moved_run_uses_own_best(fitted_run: tuple[Path, Path], tmp_path: Path) -> None:
    config, run_dir = fitted_run
    moved = tmp_path / "moved"
    shutil.copytree(run_dir, moved)
    (moved / "predictions" / "test.csv").unlink()
    # The original run folder is gone: metrics.json names a file that no longer exists.
    metrics = json.loads((moved / "metrics.json").read_text())
    metrics["best_checkpoint"] = str(tmp_path / "original" / "checkpoints" / "best.ckpt")
    (moved / "metrics.json").write_text(json.dumps(metrics))

    status = run_in_process("test", "-c", str(config), "--trainer.default_root_dir", str(moved),
                            "--ckpt_path", "best")

    assert status == 0
    assert (moved / "predictions" / "test.csv").is_file()


def test_damaged_metrics_json_one_line(fitted_run: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    config, run_dir = fitted_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "metrics.json").write_text('{"best_epoch": 1,')

    status = run_in_process("test", "-c", str(config), "--trainer.default_root_dir", str(copy))

    assert status == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"heldout: error: {copy / 'metrics.json'} is not valid JSON (")


def test_evaluate_without_manifest_one_line(fitted_run: tuple[Path, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    config, run_dir = fitted_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    for name in ("manifest.csv", "manifest.json"):
        (copy / name).unlink()

    status = run_in_process("test", "-c", str(config), "--trainer.default_root_dir", str(copy))

    assert status == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"heldout: error: Run folder {copy} has checkpoints but no manifest.csv")
    assert not (copy / "manifest.csv").exists()


def test_predict_dir_empty_string_one_line(fitted_run: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    config, _ = fitted_run

    assert run_in_process("predict", "-c", str(config), "--data.predict_dir", "") == 2

    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == "heldout: error: data.predict_dir is empty; expected the path of a folder of images."


def test_fast_dev_run_skips_evaluation_after_fit(image_folder: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", image_folder, tmp_path / "run",
                          **{"trainer.fast_dev_run": True})

    assert run_in_process("fit", "-c", str(config)) == 0
    assert not (tmp_path / "run" / "predictions" / "test.csv").exists()


def test_fit_refuses_used_run_folder(fitted_run: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    config, _ = fitted_run
    assert run_in_process("fit", "-c", str(config)) == 2
    assert "--ckpt_path last" in capsys.readouterr().err


def test_fit_resumes_from_last(fitted_run: tuple[Path, Path]) -> None:
    config, run_dir = fitted_run
    assert run_in_process("fit", "-c", str(config), "--ckpt_path", "last", "--trainer.max_epochs", "3") == 0
    history = (run_dir / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1", "2"]
    assert (run_dir / "config.resumed-1.yaml").is_file()


def test_fit_without_config_uses_default_model(image_folder: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    status = run_in_process("fit", "--data.data_dir", str(image_folder), "--trainer.default_root_dir", str(run_dir),
                            "--data.image_size", "32", "--data.num_workers", "0", "--trainer.max_epochs", "1",
                            "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
                            "--test_after_fit", "false", "--write_report", "false")

    assert status == 0
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


def test_train_count_is_images_seen(image_folder: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "config.yaml", image_folder, run_dir,
                          **{"trainer.max_epochs": 1, "trainer.limit_train_batches": 2})

    assert run_in_process("fit", "-c", str(config)) == 0

    # Two batches of 8 out of 42 training images.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train/images"] == 16
    assert metrics["num_samples"]["train"] == 42
    train = json.loads((run_dir / "report.json").read_text())["splits"]["train"]
    assert train["images"] == 16
    assert train["correct"] == round(metrics["train/acc"] * 16)


def test_print_config_shows_linked_classes(image_folder: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    config = write_config(tmp_path / "config.yaml", image_folder, tmp_path / "run")
    assert run_in_process("fit", "-c", str(config), "--model.init_args.dropout", "0.3", "--print_config") == 0
    printed = capsys.readouterr().out
    assert "dropout: 0.3" in printed
    assert "early_stopping:" in printed


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--data.init_args.data_dir", "{missing}"], "Data folder not found"),
        (["--data.init_args.data_dir", "{flat}"], "no class subfolders"),
        (["--data.init_args.data_dir", "{tiny_class}"], "'class_2' has 2"),
        (["--data.init_args.val_fraction", "0.5", "--data.init_args.test_fraction", "0.5"],
         "leaves nothing for training"),
        (["--early_stopping.monitor", "val/accuracy"], "early_stopping.monitor is 'val/accuracy'"),
        (["--model.init_args.dropoutt", "0.3"], "'dropoutt' is not accepted"),
        (["--trainer.max_epochz", "3"], "unrecognized arguments"),
    ],
)
def test_cli_bad_input_exits_with_one_line(image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                           arguments: list[str], expected: str) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes((image_folder / "class_0" / "img_001.png").read_bytes())
    tiny_class = tmp_path / "tiny_class"
    for source in sorted(image_folder.rglob("*.png")):
        if source.parent.name != "class_2" or source.name in ("img_001.png", "img_002.png"):
            target = tiny_class / source.relative_to(image_folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    places = {"missing": tmp_path / "missing", "flat": flat, "tiny_class": tiny_class}
    arguments = [argument.format(**places) for argument in arguments]
    config = write_config(tmp_path / "config.yaml", image_folder, tmp_path / "run")

    assert run_in_process("fit", "-c", str(config), *arguments) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("heldout: error: ")
    assert expected in error[-1]
    assert "Traceback" not in "\n".join(error)
