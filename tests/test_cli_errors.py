"""Bad configs, checkpoints and data folders given to the ``heldout`` command: one line, exit status 2.

Commands run in this process through :func:`heldout.cli.main`, because starting Python, torch and
Lightning in a subprocess takes longer than the tiny training runs here.
"""

from __future__ import annotations

import csv
import hashlib
import os
import pickle
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from heldout.cli import main
from heldout.model.classifier import MobileNetClassifier

pytestmark = [
    # Lightning 2.6 calls a torch pytree API that torch 2.10 and later deprecate with a FutureWarning.
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning"),
    # main() is given its arguments while pytest's own are in sys.argv, which LightningCLI warns about.
    pytest.mark.filterwarnings("ignore:LightningCLI's args parameter is intended to run from within Python"),
]

# 3 classes of 6 images: 11 or 12 train images, so 3 training steps per epoch.
COMMON = ["--model", "heldout.model.MobileNetClassifier", "--data", "heldout.data.ImageFolderDataModule",
          "--data.image_size", "32", "--data.batch_size", "4", "--data.num_workers", "0",
          "--data.cache_memory_gb", "0", "--data.val_fraction", "0.17", "--data.test_fraction", "0.17",
          "--data.augment", "[]", "--trainer.enable_progress_bar", "false",
          "--trainer.enable_model_summary", "false", "--trainer.log_every_n_steps", "1",
          "--trainer.num_sanity_val_steps", "0"]


def run_heldout(arguments: list[str]) -> int:
    """Run ``heldout ARGUMENTS`` and return its exit status."""
    try:
        main(arguments)
    except SystemExit as exit_request:
        return 0 if exit_request.code is None else int(exit_request.code)
    return 0


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """Return the one ``heldout: error:`` line on stderr, asserting that there is exactly one."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("heldout: error:")]
    assert len(lines) == 1, lines
    return lines[0]


def fit_arguments(data: Path, run: Path, *extra: str) -> list[str]:
    return ["fit", *COMMON, "--data.data_dir", str(data), "--trainer.default_root_dir", str(run), *extra]


def checkpoint_step(path: Path) -> tuple[int, int]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return checkpoint["epoch"], checkpoint["global_step"]


def hash_tree(root: Path) -> dict[str, str]:
    """Map every file and folder below ``root`` to a digest of its contents and modification time."""
    digests = {}
    for path in sorted(root.rglob("*")):
        stat = path.stat()
        content = path.read_bytes() if path.is_file() else b"folder"
        digests[path.relative_to(root).as_posix()] = f"{hashlib.sha256(content).hexdigest()}:{stat.st_mtime_ns}"
    return digests


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory,
                write_class_folders: Callable[..., Path]) -> tuple[Path, Path]:
    """Return ``(data folder, run folder)`` of a one-epoch fit on cat, dog and eel images."""
    root = tmp_path_factory.mktemp("trained")
    data = write_class_folders(root / "data")
    run = root / "run"
    status = run_heldout(fit_arguments(data, run, "--trainer.max_epochs", "1", "--test_after_fit", "false"))
    assert status == 0
    return data, run


# Config and data errors ----------------------------------------------------------------------------------


def _write_other_variant_weights(folder: Path) -> Path:
    from torchvision.models import mobilenet_v3_large

    path = folder / "large.pt"
    torch.save(mobilenet_v3_large(num_classes=3).state_dict(), path)
    return path


def _fill_places(text: str, places: dict[str, Path]) -> str:
    """Replace each ``{name}`` in ``text`` with its path; other braces, as in YAML flow maps, stay."""
    for name, path in places.items():
        text = text.replace(f"{{{name}}}", str(path))
    return text


@pytest.mark.parametrize(("extra", "expected"), [
    (["--model.optimizer", "torch.optim.AdamW", "--model.optimizer.lr", "-0.1"],
     "Invalid optimizer setting (model.optimizer.init_args): Invalid learning rate: -0.1."),
    (["--model.optimizer", "torch.optim.AdamW", "--model.optimizer.weight_decay", "-1"],
     "Invalid weight_decay value: -1.0"),
    (["--data.batch_size", "0"], "Expected data.batch_size to be a positive integer, but got 0."),
    (["--data.image_size", "0"], "Expected data.image_size to be a positive integer, but got 0."),
    (["--data.image_size", "16"], "Expected data.image_size to be at least 32 pixels, but got 16: "),
    (["--data.val_fraction", "1.5"], "Expected data.val_fraction to be between 0 and 1 (exclusive), but got 1.5."),
    (["--data.test_fraction", "0"], "Expected data.test_fraction to be between 0 and 1 (exclusive), but got 0.0."),
    (["--data.augment", "[{name: GausNoise}]"], "has no transform named 'GausNoise'. Did you mean GaussNoise?"),
    # Albumentations 2.x warns about and then ignores this 1.x argument name.
    (["--data.augment", "[{name: GaussNoise, var_limit: [10, 50]}]"],
     "data.augment[0]: GaussNoise does not accept the argument(s) var_limit"),
    (["--data.augment", "[{name: RandomCrop, height: 64, width: 64}]"],
     "data.augment[0]: RandomCrop failed on a 32x32 image (data.image_size): "),
    (["--data.augment", "[{name: CenterCrop, height: 16, width: 16}]"],
     "data.augment[0]: CenterCrop turns a 32x32 image into 16x16, but augmentation must keep data.image_size."),
    (["--data.near_duplicate_threshold", "-3"],
     "Expected data.near_duplicate_threshold to be between 0 and 63 bits, but got -3."),
    (["--data.group_regex", "("], "Invalid data.group_regex '(': missing ), unterminated subpattern"),
    (["--model.init_args.weights", "missing.pt"], "Weights file not found: missing.pt."),
    (["--model.init_args.weights", "{other_variant}"], "do not fit mobilenet_v3_small"),
    (["--model.init_args.weights", "{text_file}"],
     "Cannot load weights file {text_file}: the file was not written by torch.save"),
    (["--model.init_args.weights", "{folder}"],
     "model.weights {folder} is a folder, but a weights file is expected."),
])
def test_cli_rejects_bad_config(tmp_path: Path, write_class_folders: Callable[..., Path],
                                capsys: pytest.CaptureFixture[str], extra: list[str], expected: str) -> None:
    data = write_class_folders(tmp_path / "data")
    places = {"other_variant": tmp_path / "large.pt", "text_file": tmp_path / "notes.ckpt",
              "folder": tmp_path / "weights"}
    if "{other_variant}" in extra:
        _write_other_variant_weights(tmp_path)
    places["text_file"].write_text("hello\n")
    places["folder"].mkdir()
    extra = [_fill_places(argument, places) for argument in extra]

    status = run_heldout(fit_arguments(data, tmp_path / "run", *extra))

    assert status == 2
    assert _fill_places(expected, places) in error_line(capsys)
    assert not (tmp_path / "run" / "manifest.csv").exists()


@pytest.mark.parametrize(("counts", "expected"), [
    ({"only": 4}, "has 1 class(es) with images ('only'), expected at least 2."),
    ({"cat": 6, "dog": 6, "eel": 1}, "'eel' has 1; each class needs at least 3 images (one per split)."),
])
def test_cli_rejects_unsplittable_folder(tmp_path: Path, write_class_folders: Callable[..., Path],
                                         capsys: pytest.CaptureFixture[str], counts: dict[str, int],
                                         expected: str) -> None:
    data = write_class_folders(tmp_path / "data", counts)

    status = run_heldout(fit_arguments(data, tmp_path / "run"))

    assert status == 2
    assert expected in error_line(capsys)


def test_cli_fail_policy_lists_bad_files(tmp_path: Path, write_class_folders: Callable[..., Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = write_class_folders(tmp_path / "data")
    (data / "cat" / "zero.jpg").write_bytes(b"")
    (data / "dog" / "notes.jpg").write_text("not an image\n")

    status = run_heldout(fit_arguments(data, tmp_path / "run", "--data.on_bad_file", "fail"))

    line = error_line(capsys)
    assert status == 2
    assert "2 unreadable image file(s) found (data.on_bad_file=fail)" in line
    assert f"{data / 'cat' / 'zero.jpg'}: empty file (0 bytes)" in line
    assert f"{data / 'dog' / 'notes.jpg'}: not a recognised image format" in line


# Checkpoints ----------------------------------------------------------------------------------------------


def _test_arguments(data: Path, run: Path, checkpoint: str) -> list[str]:
    return ["test", *COMMON, "--data.data_dir", str(data), "--trainer.default_root_dir", str(run),
            "--ckpt_path", checkpoint]


class _CreateMarkerFile:
    """A pickled object that, when unpickled by a full pickle load, creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("option", ["--ckpt_path", "--model.init_args.weights"])
def test_cli_pickled_payload_not_executed(tmp_path: Path, trained_run: tuple[Path, Path],
                                          capsys: pytest.CaptureFixture[str], option: str) -> None:
    data, _ = trained_run
    marker = tmp_path / "code-ran"
    payload = tmp_path / "payload.ckpt"
    payload.write_bytes(pickle.dumps({"state_dict": _CreateMarkerFile(marker)}))
    arguments = _test_arguments(data, tmp_path / "run", str(payload) if option == "--ckpt_path" else "last")
    if option != "--ckpt_path":
        arguments = fit_arguments(data, tmp_path / "run", option, str(payload))

    status = run_heldout(arguments)

    line = error_line(capsys)
    assert not marker.exists()
    assert status == 2
    assert str(payload) in line
    assert "torch.load with weights_only=True failed" in line


@pytest.mark.parametrize(("checkpoint", "expected"), [
    ("missing.ckpt", "Checkpoint not found: --ckpt_path {folder}/missing.ckpt."),
    ("best", "No 'best' checkpoint in run folder {folder}/run (looked for {folder}/run/checkpoints/best.ckpt)"),
])
def test_cli_missing_checkpoint(tmp_path: Path, trained_run: tuple[Path, Path],
                                capsys: pytest.CaptureFixture[str], checkpoint: str, expected: str) -> None:
    data, _ = trained_run
    argument = checkpoint if checkpoint == "best" else str(tmp_path / checkpoint)

    status = run_heldout(_test_arguments(data, tmp_path / "run", argument))

    assert status == 2
    assert expected.format(folder=tmp_path) in error_line(capsys)


@pytest.mark.parametrize(("kind", "expected"), [
    ("text", "Cannot load --ckpt_path {path} as a checkpoint: the file was not written by torch.save (it is "
             "neither a zip archive nor a pickle). Pass a .ckpt file written by heldout fit"),
    ("truncated", "Cannot load --ckpt_path {path} as a checkpoint: the file is damaged, perhaps cut short "
                  "while it was written or copied (RuntimeError: PytorchStreamReader failed reading zip "
                  "archive"),
    ("run_folder", "--ckpt_path {path} is a folder, but a checkpoint file is expected. Pass a .ckpt file "
                   "such as {path}/checkpoints/best.ckpt, or best / last"),
    ("empty_folder", "--ckpt_path {path} is a folder, but a checkpoint file is expected. Pass a .ckpt file, "
                     "or best / last"),
])
def test_cli_unreadable_checkpoint(tmp_path: Path, trained_run: tuple[Path, Path],
                                   capsys: pytest.CaptureFixture[str], kind: str, expected: str) -> None:
    data, run = trained_run
    path = tmp_path / "given.ckpt"
    if kind == "text":
        path.write_text("hello\n")
    elif kind == "truncated":
        path.write_bytes((run / "checkpoints" / "best.ckpt").read_bytes()[:4000])
    elif kind == "run_folder":
        path = tmp_path / "copied_run"
        (path / "checkpoints").mkdir(parents=True)
        (path / "checkpoints" / "best.ckpt").write_bytes((run / "checkpoints" / "best.ckpt").read_bytes())
    else:
        path = tmp_path / "d1"
        path.mkdir()

    status = run_heldout(_test_arguments(data, tmp_path / "run", str(path)))

    assert status == 2
    assert expected.format(path=path) in error_line(capsys)


def test_cli_state_dict_as_checkpoint(tmp_path: Path, trained_run: tuple[Path, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = trained_run
    weights = tmp_path / "weights.pt"
    torch.save({"features.0.0.weight": torch.zeros(1)}, weights)

    status = run_heldout(_test_arguments(data, tmp_path / "run", str(weights)))

    assert status == 2
    assert "is not a Lightning checkpoint" in error_line(capsys)


def test_cli_other_script_checkpoint(tmp_path: Path, trained_run: tuple[Path, Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = trained_run
    weights = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"features.0.0.weight": torch.zeros(1)}, "epoch": 3}, weights)

    status = run_heldout(_test_arguments(data, tmp_path / "run", str(weights)))

    assert status == 2
    assert "was not written by Lightning" in error_line(capsys)


def test_cli_checkpoint_class_mismatch(tmp_path: Path, trained_run: tuple[Path, Path],
                                       write_class_folders: Callable[..., Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _, run = trained_run
    other = write_class_folders(tmp_path / "other", {"cat": 6, "dog": 6, "fox": 6, "gnu": 6})

    status = run_heldout(_test_arguments(other, tmp_path / "run", str(run / "checkpoints" / "best.ckpt")))

    line = error_line(capsys)
    assert status == 2
    assert "added in the data: fox, gnu; missing from the data: eel" in line
    assert "Use the data the model was trained on, or train a new model." in line


# Interrupted and diverging training -----------------------------------------------------------------------


def _raise_at_step(step: int, error: BaseException) -> Callable[..., Any]:
    original = MobileNetClassifier.training_step

    def training_step(self: MobileNetClassifier, batch: Any, batch_idx: int) -> Any:
        if self.global_step == step:
            raise error
        return original(self, batch, batch_idx)

    return training_step


def test_cli_resumes_after_interrupt(tmp_path: Path, write_class_folders: Callable[..., Path],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the middle of epoch 1 leaves last.ckpt and the logs, and fit --ckpt_path last goes on."""
    data = write_class_folders(tmp_path / "data")
    (data / "cat" / "zero.jpg").write_bytes(b"")
    (data / "dog" / ".DS_Store").write_bytes(b"\x00\x01")
    (data / ".ipynb_checkpoints").mkdir()
    (data / ".ipynb_checkpoints" / "x.png").write_bytes(b"")
    before = hash_tree(data)
    run = tmp_path / "run"
    sigint_handler = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(MobileNetClassifier, "training_step", _raise_at_step(4, KeyboardInterrupt()))

    try:
        status = run_heldout(fit_arguments(data, run, "--trainer.max_epochs", "2", "--test_after_fit", "false"))
    finally:
        # Lightning ignores further Ctrl-C while it shuts down; give pytest its handler back.
        signal.signal(signal.SIGINT, sigint_handler)

    assert status == 1
    assert checkpoint_step(run / "checkpoints" / "last.ckpt") == (1, 4)
    with (run / "logs" / "metrics.csv").open(newline="") as handle:
        logged_epochs = {row["epoch"] for row in csv.DictReader(handle)}
    assert "0" in logged_epochs

    monkeypatch.undo()
    status = run_heldout(fit_arguments(data, run, "--trainer.max_epochs", "2", "--test_after_fit", "false",
                                       "--ckpt_path", "last"))

    assert status == 0
    assert checkpoint_step(run / "checkpoints" / "last.ckpt")[1] == 6
    with (run / "history.csv").open(newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1"]
    assert (run / "config.resumed-1.yaml").is_file()
    assert hash_tree(data) == before


def test_cli_stops_on_nan_loss(trained_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A loss that becomes NaN stops the run and leaves last.ckpt as the last finished epoch wrote it."""
    data, run = trained_run
    last = run / "checkpoints" / "last.ckpt"
    saved = last.read_bytes()
    original_forward = MobileNetClassifier.forward

    def forward(self: MobileNetClassifier, images: torch.Tensor) -> torch.Tensor:
        logits = original_forward(self, images)
        return logits * float("nan") if self.training and self.global_step >= 4 else logits

    monkeypatch.setattr(MobileNetClassifier, "forward", forward)

    status = run_heldout(fit_arguments(data, run, "--trainer.max_epochs", "3", "--ckpt_path", "last"))

    line = error_line(capsys)
    assert status == 2
    assert "Training loss became nan at epoch 1, step 4 (batch 1)" in line
    assert "lower the learning rate" in line
    assert last.read_bytes() == saved


def test_cli_warns_num_workers_above_cores(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    from heldout.data.datamodule import ImageFolderDataModule

    workers = (os.cpu_count() or 1) + 1

    with pytest.warns(UserWarning, match=f"data.num_workers={workers} is above the .* CPU cores of this machine"):
        ImageFolderDataModule(str(write_class_folders(tmp_path / "data")), num_workers=workers)


def test_cli_worker_error_one_line() -> None:
    """An error raised again from a DataLoader worker prints its own message, not the worker traceback."""
    from heldout.cli import _one_line
    from heldout.data.decode import ImageDecodeError

    error = ImageDecodeError("Caught ImageDecodeError in DataLoader worker process 0.\n"
                             "Original Traceback (most recent call last):\n"
                             '  File "dataset.py", line 104, in __getitem__\n'
                             "heldout.data.decode.ImageDecodeError: Cannot decode image /d/cat/0.png: file not found\n")

    assert _one_line(error) == "Cannot decode image /d/cat/0.png: file not found"
