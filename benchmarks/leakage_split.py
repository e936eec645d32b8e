"""Show that planted near-duplicates inflate validation accuracy under a naive split and not under heldout's.

The data folder contains ``--sources`` demo digits, each with 3 variants: shifted by 1-2 px, brightened or
darkened by up to 30 levels, and re-saved as JPEG at quality 70-95. Files get random names in class
folders, so no name reveals its source. A separate test folder holds ``--test-digits`` other digits,
untouched and without variants.

Two runs with the same training settings use that test folder as their test split:
(a) naive: a stratified split with near-duplicate grouping off (``near_duplicate_threshold: null``), so
    a digit's variants land in train and validation alike;
(b) leakage-aware: the default split, which keeps images within 4 bits of perceptual hash in one split.
For each run the script prints validation and test accuracy with 95% Clopper-Pearson intervals, whether
validation lies within the test interval, and the leakage audit's count of pairs across splits.

Run: python benchmarks/leakage_split.py [--work /tmp/heldout-bench/leakage-split]
The last line printed holds the headline figures of both runs.
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import numpy as np

from fit_runs import RunResult, clopper_pearson, demo_config, fit, format_accuracy, save_digits, shuffled_digits
from planted_duplicates import rebrightened, shifted

VARIANTS_PER_SOURCE = 3


def build_planted_folder(folder: Path, images: np.ndarray, labels: np.ndarray, seed: int) -> int:
    """Write each digit and its 3 variants under random names in class folders; return the file count."""
    rng = np.random.default_rng(seed)
    names = rng.permutation(len(images) * (1 + VARIANTS_PER_SOURCE))
    written = 0

    def save(pixels: np.ndarray, label: int, suffix: str, **options: object) -> None:
        nonlocal written
        save_digits(folder, pixels[None], np.array([label]), [f"{names[written]:06d}{suffix}"], **options)
        written += 1

    for image, label in zip(images, labels, strict=True):
        save(image, label, ".png")
        save(shifted(image, rng), label, ".png")
        save(rebrightened(image, rng), label, ".png")
        save(image, label, ".jpg", quality=int(rng.integers(70, 96)))
    return written


def train(name: str, work: Path, data_dir: Path, test_dir: Path, arguments: argparse.Namespace,
          data: dict[str, object]) -> RunResult:
    config = demo_config(
        work / name / "run",
        data={"data_dir": str(data_dir), "test_dir": str(test_dir), "image_size": 28, "num_workers": 0,
              "val_fraction": 0.15, **data},
        model={"width_mult": arguments.width_mult},
        trainer={"max_epochs": arguments.epochs},
    )
    return fit(config, work / name / "config.yaml")


def print_run(title: str, run: RunResult) -> dict[str, float | bool | int | None]:
    """Print a run's figures and return the ones the last line needs."""
    val, val_low, val_high, val_images = run.accuracy("val")
    test, test_low, test_high, test_images = run.accuracy("test")
    # Cross-check the report's interval against SciPy's exact binomial interval on the same counts.
    correct = run.report["splits"]["val"]["correct"]
    scipy_low, scipy_high = clopper_pearson(correct, val_images)
    interval_agrees = math.isclose(scipy_low, val_low, abs_tol=1e-9) and math.isclose(scipy_high, val_high,
                                                                                      abs_tol=1e-9)
    within = test_low <= val <= test_high
    counts = run.audit["counts"] if run.audit is not None else {}
    print(f"== {title}: {run.folder} ({run.seconds:.0f} s, best epoch {run.metrics.get('best_epoch')}, "
          f"last epoch {run.metrics.get('stopped_epoch')})")
    print(f"  validation accuracy {format_accuracy(val, val_low, val_high)} on {val_images} images "
          f"(SciPy Clopper-Pearson agrees: {interval_agrees})")
    print(f"  untouched test accuracy {format_accuracy(test, test_low, test_high)} on {test_images} images")
    print(f"  validation - test: {(val - test) * 100:+.1f} pp; validation within the test interval: {within}")
    print(f"  audit: {counts.get('cross_split_pairs')} near-duplicate pairs across splits, "
          f"{counts.get('clusters_across_splits')} clusters spanning splits, "
          f"{counts.get('near_duplicate_pairs')} near-duplicate pairs in all")
    print(f"  causes: {', '.join(run.causes)}")
    print(f"  verdict: {run.verdict}")
    return {"val": val, "test": test, "within": within, "pairs": counts.get("cross_split_pairs")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/heldout-bench/leakage-split"),
                        help="folder for the images, configs and run folders; emptied first")
    parser.add_argument("--sources", type=int, default=500, help="digits that get planted variants")
    parser.add_argument("--test-digits", type=int, default=600, help="other digits in the untouched test folder")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of both runs")
    parser.add_argument("--width-mult", type=float, default=1.0, help="MobileNetV3 width multiplier")
    arguments = parser.parse_args()

    if arguments.work.exists():
        shutil.rmtree(arguments.work)
    images, labels, _ = shuffled_digits()
    sources = slice(0, arguments.sources)
    others = slice(arguments.sources, arguments.sources + arguments.test_digits)

    data_dir = arguments.work / "planted"
    test_dir = arguments.work / "untouched-test"
    files = build_planted_folder(data_dir, images[sources], labels[sources], seed=0)
    test_names = [f"{index:06d}.png" for index in range(arguments.test_digits)]
    save_digits(test_dir, images[others], labels[others], test_names)
    print(f"{files} files in {data_dir} ({arguments.sources} digits with {VARIANTS_PER_SOURCE} variants each); "
          f"{arguments.test_digits} other digits in {test_dir}; {arguments.epochs} epochs, "
          f"width {arguments.width_mult}")

    naive = train("naive", arguments.work, data_dir, test_dir, arguments,
                  {"near_duplicate_threshold": None, "leakage_check": "warn"})
    naive_figures = print_run("(a) naive stratified split", naive)
    aware = train("aware", arguments.work, data_dir, test_dir, arguments, {})
    aware_figures = print_run("(b) leakage-aware split (near_duplicate_threshold 4)", aware)

    print(" | ".join(
        f"{name}: val {figures['val']:.1%} test {figures['test']:.1%} "
        f"gap {(figures['val'] - figures['test']) * 100:+.1f} pp within test CI {figures['within']} "
        f"cross-split pairs {figures['pairs']}"
        for name, figures in (("naive", naive_figures), ("leakage-aware", aware_figures))))


if __name__ == "__main__":
    main()
