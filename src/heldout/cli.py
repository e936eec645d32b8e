"""The ``heldout`` command: Lightning's CLI for fit/validate/test/predict, plus ``report`` and ``audit``."""

from __future__ import annotations

import argparse
import itertools
import logging
import re
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from heldout.callbacks import (
    EpochSeed,
    InterruptCheckpoint,
    PredictionWriter,
    RunSummary,
    UnreadableFileRecorder,
)
from heldout.callbacks.run_summary import METRICS_FILE, read_metrics
from heldout.checkpoint_io import with_atomic_checkpoint_io
from heldout.data.datamodule import ImageFolderDataModule
from heldout.data.manifest import MANIFEST_FILE, MANIFEST_META_FILE
from heldout.errors import CheckpointError, ConfigError, HeldoutError
from heldout.model.checkpoint import check_lightning_checkpoint
from heldout.model.classifier import LOGGED_METRICS, MobileNetClassifier
from heldout.report import ReportSettings, build_report
from heldout.summary import format_summary

log = logging.getLogger(__name__)

CHECKPOINT_FOLDER = "checkpoints"
CONFIG_FILE = "config.yaml"


def first_free_name(folder: Path, stem: str, suffix: str = "", *, always_numbered: bool = False) -> str:
    """Return the first name in ``folder`` not taken yet: ``stem + suffix``, then ``stem-2 + suffix`` and so on.

    With ``always_numbered`` the names are ``stem-1 + suffix``, ``stem-2 + suffix`` and so on.
    """
    candidates = (f"{stem}-{number}{suffix}" if always_numbered or number > 1 else f"{stem}{suffix}"
                  for number in itertools.count(1))
    return next(name for name in candidates if not (folder / name).exists())


class RunFolderConfigCallback(SaveConfigCallback):
    """Save the resolved config as ``config.yaml`` in the run folder, keeping any earlier one.

    A resumed fit writes ``config.resumed-N.yaml`` beside the first, and validate, test and predict write
    ``config.STAGE.yaml`` (``config.test.yaml``, then ``config.test-2.yaml``), so no config is overwritten.
    """

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.already_saved or trainer.global_rank != 0:
            return
        folder = Path(trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CONFIG_FILE
        if path.exists():
            stage = getattr(stage, "value", stage)  # Lightning passes a TrainerFn, a str enum
            stem = "config.resumed" if stage == "fit" else f"config.{stage}"
            path = folder / first_free_name(folder, stem, ".yaml", always_numbered=stage == "fit")
        self.parser.save(self.config, path, overwrite=False, multifile=self.multifile)
        self.already_saved = True


class HeldoutCLI(LightningCLI):
    """LightningCLI with early stopping, best/last checkpoints and the run-folder files always on."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults({"early_stopping.monitor": "val/loss", "early_stopping.mode": "min",
                             "early_stopping.patience": 10})
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.monitor": "val/loss", "checkpoint.mode": "min",
                             "checkpoint.filename": "best", "checkpoint.save_last": False,
                             "checkpoint.save_top_k": 1})
        parser.add_argument("--test_after_fit", type=bool, default=True,
                            help="After fit, evaluate the best checkpoint on the test split.")
        parser.add_argument("--write_report", type=bool, default=True,
                            help="After fit and test, write report.md, report.json and plots into the run folder.")
        parser.add_class_arguments(ReportSettings, "report")
        # Without a config, the model is MobileNetV3 at its defaults rather than a missing argument.
        parser.set_defaults({"model": {"class_path": "heldout.model.MobileNetClassifier"}})
        parser.link_arguments("data.class_names", "model.init_args.class_names", apply_on="instantiate")

    # Configuration checks ----------------------------------------------------------------------------

    def _parse_ckpt_path(self) -> None:
        # LightningCLI (2.6) loads the hyperparameters of --ckpt_path while it parses the arguments, before
        # any hook runs, and a file it cannot load would end in a traceback. Check the file first.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path not in ("best", "last"):
            check_lightning_checkpoint(ckpt_path)
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        for key in ("early_stopping", "checkpoint"):
            monitor = config[key].monitor
            if monitor is not None and monitor not in LOGGED_METRICS:
                raise ConfigError(f"{key}.monitor is {monitor!r}, which is never logged; expected one of "
                                  f"{', '.join(LOGGED_METRICS)}. Set --{key}.monitor val/loss, for example.")
        if config.trainer.default_root_dir is None:
            raise ConfigError("trainer.default_root_dir is not set; give the run folder with "
                              "--trainer.default_root_dir runs/NAME.")

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
        root = Path(config["default_root_dir"])
        config["default_root_dir"] = str(root)
        if config.get("logger") in (None, True):
            config["logger"] = [CSVLogger(save_dir=root, name="logs", version=self._csv_log_version(root)),
                                TensorBoardLogger(save_dir=root, name="logs", version="tensorboard")]
        for callback in callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
                callback.dirpath = str(root / CHECKPOINT_FOLDER)
        # Lightning 2.6 updates the main callback's last.ckpt only in epochs that also save a best
        # checkpoint, so a callback without a monitor writes last.ckpt after every epoch.
        last = ModelCheckpoint(dirpath=root / CHECKPOINT_FOLDER, filename="last", monitor=None, save_top_k=1,
                               enable_version_counter=False)
        callbacks = [*callbacks, last, UnreadableFileRecorder(), RunSummary(), PredictionWriter(),
                     EpochSeed(), InterruptCheckpoint(root / CHECKPOINT_FOLDER)]
        config["plugins"] = with_atomic_checkpoint_io(config.get("plugins"))
        return super()._instantiate_trainer(config, callbacks)

    def _csv_log_version(self, root: Path) -> str:
        """Return the CSV log folder under ``logs/``: the first fit writes ``logs/metrics.csv`` directly.

        Lightning's CSV logger deletes the ``metrics.csv`` it finds in its folder, so a later command on the
        same run folder (test, predict, a resumed fit) writes to its own folder, such as ``logs/test-2``.
        """
        logs = root / "logs"
        if self.subcommand == "fit" and not (logs / "metrics.csv").exists():
            return ""
        return first_free_name(logs, str(self.subcommand))

    # Subcommand hooks --------------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return Path(self.trainer.default_root_dir)

    def _subcommand_config(self) -> dict[str, Any]:
        return self.config_init[self.subcommand]

    def before_fit(self) -> None:
        ckpt_path = self._subcommand_config().get("ckpt_path")
        checkpoints = self.run_dir / CHECKPOINT_FOLDER
        if ckpt_path is None and checkpoints.is_dir() and any(checkpoints.glob("*.ckpt")):
            raise ConfigError(f"Run folder {self.run_dir} already contains checkpoints of an earlier fit. Resume it "
                              "with --ckpt_path last, or start a new run with another --trainer.default_root_dir.")
        if ckpt_path is not None:
            self._subcommand_config()["ckpt_path"] = self._resolve_checkpoint(ckpt_path)

    def after_fit(self) -> None:
        if self.trainer.interrupted:
            return
        if self.trainer.fast_dev_run:
            log.info("fast_dev_run writes no checkpoint, so the best checkpoint is not evaluated after fit.")
        elif self._subcommand_config().get("test_after_fit", True):
            # Validation runs again on the best checkpoint to write its per-sample predictions.
            self.trainer.validate(self.model, datamodule=self.datamodule, ckpt_path="best", verbose=False)
            if self.datamodule.has_split("test"):
                self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path="best")
                self._write_report()
        self._print_summary()

    def _before_evaluation(self) -> None:
        config = self._subcommand_config()
        config["ckpt_path"] = self._resolve_checkpoint(config.get("ckpt_path") or "best")
        # Images from their own folder cannot overlap the training split, but a split drawn anew can.
        split = "val" if self.subcommand == "validate" else "test"
        own_folder = getattr(self.datamodule, f"{split}_dir", None) or (
            self.subcommand == "predict" and getattr(self.datamodule, "predict_dir", None))
        if not own_folder and not (self.run_dir / MANIFEST_FILE).is_file() and \
                any((self.run_dir / CHECKPOINT_FOLDER).glob("*.ckpt")):
            raise ConfigError(f"Run folder {self.run_dir} has checkpoints but no {MANIFEST_FILE}, so the split "
                              "they were trained on is unknown and a new split could put training images in "
                              f"{self.subcommand}. Restore {MANIFEST_FILE} and {MANIFEST_META_FILE} from the "
                              "run, or evaluate on separate folders with --data.val_dir and --data.test_dir.")

    before_validate = before_test = before_predict = _before_evaluation

    def after_test(self) -> None:
        self._write_report()
        self._print_summary()

    def _write_report(self) -> None:
        config = self._subcommand_config()
        if self.trainer.global_rank != 0 or not config.get("write_report", True):
            return
        try:
            path = build_report(self.run_dir, config.get("report"))
        except HeldoutError as error:
            log.warning("No report written: %s", error)
            return
        log.info("Wrote the validation report to %s (rebuild it with: heldout report %s)", path, self.run_dir)

    def _resolve_checkpoint(self, ckpt_path: str) -> str:
        """Return the file for ``ckpt_path`` after checking that it loads as a Lightning checkpoint.

        ``best`` and ``last`` become the files of the run folder, so they work in a new process.

        Raises:
            CheckpointError: the file is missing, cannot be loaded safely, or is not a Lightning checkpoint.
        """
        if ckpt_path not in ("best", "last"):
            check_lightning_checkpoint(ckpt_path)
            return ckpt_path
        candidates = self._run_checkpoint_candidates(ckpt_path)
        candidate = next((path for path in candidates if path.is_file()), None)
        if candidate is None:
            looked_for = " and ".join(str(path) for path in candidates)
            raise CheckpointError(f"No {ckpt_path!r} checkpoint in run folder {self.run_dir} (looked for "
                                  f"{looked_for}). Train first with heldout fit, point "
                                  "--trainer.default_root_dir at the run folder, or pass --ckpt_path PATH.")
        if self.run_dir.resolve() not in candidate.resolve().parents:
            log.warning("Using the best checkpoint %s named in %s, which is outside run folder %s.",
                        candidate, self.run_dir / METRICS_FILE, self.run_dir)
        check_lightning_checkpoint(candidate, name=f"--ckpt_path {ckpt_path} ({candidate})")
        return str(candidate)

    def _run_checkpoint_candidates(self, ckpt_path: str) -> list[Path]:
        """Return the files that ``best`` or ``last`` may name, in the order to try them.

        ``metrics.json`` stores the best checkpoint's path as the fit wrote it, which in a copied or moved run
        folder is the original run's file. A file of the same name in this run folder comes first.
        """
        folder = self.run_dir / CHECKPOINT_FOLDER
        stored = read_metrics(self.run_dir).get("best_checkpoint") if ckpt_path == "best" else None
        if stored is None:
            return [folder / f"{ckpt_path}.ckpt"]
        local = folder / Path(stored).name
        return [local] if Path(stored).resolve() == local.resolve() else [local, Path(stored)]

    def _print_summary(self) -> None:
        if self.trainer.global_rank == 0:
            sys.stdout.write(format_summary(read_metrics(self.run_dir), self.run_dir) + "\n")


def _run_lightning_cli(argv: list[str] | None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    HeldoutCLI(MobileNetClassifier, ImageFolderDataModule, subclass_mode_model=True, subclass_mode_data=True,
               save_config_callback=RunFolderConfigCallback, seed_everything_default=42,
               trainer_defaults={"default_root_dir": "runs/heldout", "max_epochs": 50}, args=argv,
               auto_configure_optimizers=False, parser_kwargs={"exit_on_error": False})


# Lines of jsonargparse's nested Union messages that carry no information for the user.
_BOILERPLATE = re.compile(r"^(Does not validate|Subtypes:|Errors:|- Expected a <class 'NoneType'>|Given value|"
                          r"- Problem with given class_path)")


def condense_parse_error(message: str) -> str:
    """Reduce a jsonargparse error, which nests one message per Union member, to its one specific line."""
    keys = re.findall(r'Parser key "([^"]+)"', message)
    details = [line.strip() for line in message.splitlines()
               if line.strip() and not line.strip().startswith("Parser key") and not _BOILERPLATE.match(line.strip())]
    detail = details[0].lstrip("- ") if details else message.splitlines()[0]
    where = f"config key {'.'.join(keys)}: " if keys else ""
    return (f"invalid command line or config: {where}{detail}. Run 'heldout SUBCOMMAND --help' for the valid "
            "keys and types, or 'heldout fit -c CONFIG --print_config' to see the resolved config.")


def main(argv: list[str] | None = None) -> None:
    """Run ``heldout``; a user error ends with one line on stderr and exit status 2."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        if arguments and arguments[0] == "report":
            from heldout.report.command import main as report_main

            sys.exit(report_main(arguments[1:]))
        if arguments and arguments[0] == "audit":
            from heldout.audit.command import main as audit_main

            sys.exit(audit_main(arguments[1:]))
        _run_lightning_cli(None if argv is None else arguments)
    except argparse.ArgumentError as error:
        sys.stderr.write(f"heldout: error: {condense_parse_error(str(error))}\n")
        sys.exit(2)
    except Exception as error:
        # jsonargparse wraps errors raised while it builds the model and data module, so look for ours
        # along the chain of causes.
        cause = _find_user_error(error)
        if cause is None:
            raise
        sys.stderr.write(f"heldout: error: {_one_line(cause)}\n")
        sys.exit(2)


def _one_line(error: HeldoutError) -> str:
    """Return the message of ``error``, or, for one raised again from a DataLoader worker, its original message.

    PyTorch raises a worker's exception again in the main process with the worker's whole traceback as the
    message, and the original message is that traceback's last line, after ``module.ClassName: ``.
    """
    lines = [line for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and "Original Traceback" in lines[1]:
        return lines[-1].split(": ", 1)[-1]
    return str(error)


def _find_user_error(error: BaseException | None) -> HeldoutError | None:
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, HeldoutError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
