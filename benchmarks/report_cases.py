"""Train two runs that must each trip one verdict of the validation report, and check the report's contents.

(a) Overfitting: a few hundred training digits, no augmentation, weight decay, dropout or label smoothing,
    and early stopping out of reach, trained for many epochs. The verdict must name overfitting.
(b) Shifted test domain: train and validation from ordinary digits, and a separate test folder of other
    digits with inverted intensities (255 - pixel). The verdict must say that validation is not
    representative of test, with a validation-test gap beyond the test accuracy's confidence interval.

Both runs also check that the report holds every section and that the plots it lists exist.

Run: python benchmarks/report_cases.py [--work /tmp/heldout-bench/report-cases]
The last line printed holds the headline figures of both runs.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from fit_runs import RunResult, demo_config, fit, format_accuracy, save_digits, shuffled_digits

REPORT_SECTIONS = ("## Verdict", "## Scores by split", "## Gaps between splits", "## Per class", "## Calibration",
                   "## Learning curves", "## Confusion matrices", "## Most confident test mistakes",
                   "## Images per class and split", "## Data checks", "## Thresholds")
EXPECTED_PLOTS = ("learning_curves", "confusion_val", "confusion_test", "reliability", "class_counts", "mistakes")


def overfitting_run(work: Path, images: np.ndarray, labels: np.ndarray, ids: np.ndarray, epochs: int) -> RunResult:
    """Train on about 300 of 750 digits (about 225 validation, 225 test) with every regularizer off."""
    data_dir = work / "overfit" / "digits"
    count = 750
    save_digits(data_dir, images[:count], labels[:count], [f"{index:05d}.png" for index in ids[:count]])
    config = demo_config(
        work / "overfit" / "run",
        data={"data_dir": str(data_dir), "image_size": 28, "num_workers": 0, "val_fraction": 0.3,
              "test_fraction": 0.3, "augment": []},
        model={"dropout": 0.0, "label_smoothing": 0.0},
        optimizer={"weight_decay": 0.0},
        trainer={"max_epochs": epochs},
        early_stopping={"patience": 1000},
    )
    return fit(config, work / "overfit" / "config.yaml")


def shifted_domain_run(work: Path, images: np.ndarray, labels: np.ndarray, ids: np.ndarray, epochs: int) -> RunResult:
    """Train on 2,000 digits (15% to validation) and test on 500 other digits with inverted intensities."""
    data_dir = work / "shifted" / "digits"
    test_dir = work / "shifted" / "inverted-test"
    train = slice(750, 2750)
    test = slice(2750, 3250)
    save_digits(data_dir, images[train], labels[train], [f"{index:05d}.png" for index in ids[train]])
    save_digits(test_dir, 255 - images[test], labels[test], [f"{index:05d}.png" for index in ids[test]])
    config = demo_config(
        work / "shifted" / "run",
        data={"data_dir": str(data_dir), "test_dir": str(test_dir), "image_size": 28, "num_workers": 0,
              "val_fraction": 0.15},
        trainer={"max_epochs": epochs},
    )
    return fit(config, work / "shifted" / "config.yaml")


def check_report_contents(run: RunResult) -> list[str]:
    """Return the problems found: missing report sections, and plots that are not listed or not on disk."""
    problems = [f"section {section!r} missing from report.md" for section in REPORT_SECTIONS
                if section not in run.report_markdown]
    plots = run.report["plots"]
    for name in EXPECTED_PLOTS:
        path = plots.get(name)
        if path is None:
            problems.append(f"plot {name} not written")
        elif not (run.folder / path).is_file():
            problems.append(f"plot {name} listed as {path} but not on disk")
        elif Path(path).name not in run.report_markdown:
            problems.append(f"plot {path} not shown in report.md")
    return problems


def print_run(title: str, run: RunResult) -> None:
    metrics = run.metrics
    print(f"== {title}: {run.folder} ({run.seconds:.0f} s, best epoch {metrics.get('best_epoch')}, "
          f"last epoch {metrics.get('stopped_epoch')})")
    for split in ("train", "val", "test"):
        value, low, high, count = run.accuracy(split)
        print(f"  {split:5s} accuracy {format_accuracy(value, low, high)} on {count} images")
    for name, gap in run.report["gaps"].items():
        print(f"  gap {name}: {gap['difference'] * 100:+.1f} pp, p = {gap['p_value']:.2g}, "
              f"significant {gap['significant']}")
    print(f"  causes: {', '.join(run.causes)}")
    print(f"  verdict: {run.verdict}")
    written = sorted(path.name for path in (run.folder / "report").glob("*.png"))
    print(f"  plots written under report/: {', '.join(written)}")
    problems = check_report_contents(run)
    print(f"  report contents: {'all sections and plots present' if not problems else '; '.join(problems)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/heldout-bench/report-cases"),
                        help="folder for the images, configs and run folders; emptied first")
    parser.add_argument("--overfit-epochs", type=int, default=40, help="epochs of the overfitting run")
    parser.add_argument("--shifted-epochs", type=int, default=8, help="epochs of the shifted-domain run")
    arguments = parser.parse_args()

    if arguments.work.exists():
        shutil.rmtree(arguments.work)
    images, labels, ids = shuffled_digits()

    overfit = overfitting_run(arguments.work, images, labels, ids, arguments.overfit_epochs)
    print_run("(a) overfitting: 300 training digits, all regularization off", overfit)
    shifted = shifted_domain_run(arguments.work, images, labels, ids, arguments.shifted_epochs)
    print_run("(b) shifted test domain: test digits inverted", shifted)

    # The gap must exceed the test interval: validation accuracy lies outside test's 95% interval.
    val, _, _, _ = shifted.accuracy("val")
    test, test_low, test_high, _ = shifted.accuracy("test")
    beyond_interval = not test_low <= val <= test_high
    print(f"  validation {val:.1%} outside the test interval [{test_low:.1%}, {test_high:.1%}]: {beyond_interval}")

    train_a, _, _, _ = overfit.accuracy("train")
    val_a, _, _, _ = overfit.accuracy("val")
    test_a, _, _, _ = overfit.accuracy("test")
    named_overfitting = "overfitting" in overfit.causes
    named_shift = "val_not_representative" in shifted.causes
    print(f"overfit: train {train_a:.1%} val {val_a:.1%} test {test_a:.1%} names overfitting {named_overfitting} | "
          f"shifted: val {val:.1%} test {test:.1%} gap {(val - test) * 100:+.1f} pp beyond test CI "
          f"{beyond_interval} names val_not_representative {named_shift}")


if __name__ == "__main__":
    main()
