"""Thresholds that decide what the report calls a problem."""

from __future__ import annotations

from dataclasses import dataclass

from heldout.errors import ConfigError


@dataclass(frozen=True)
class ReportSettings:
    """Thresholds and sampling settings for the report.

    Accuracy gaps and recall drops are fractions (0.05 means 5 percentage points). A gap counts as a
    finding only when it exceeds its threshold and the significance test rejects equal accuracy.

    Args:
        confidence_level: Coverage of every confidence interval in the report.
        significance_level: Two-sided p-value below which a gap is called significant.
        overfit_gap: Train accuracy minus validation accuracy above which the model is called overfitted.
        val_test_gap: Absolute difference between validation and test accuracy above which validation
            is called not representative of the test data.
        min_val_images: Minimum number of validation images for validation accuracy to be judged.
        max_val_interval_width: Widest validation accuracy interval (upper minus lower bound) that is
            still precise enough to judge.
        class_recall_drop: Drop in a class's recall from validation to test above which the class is
            called failing.
        min_class_support: Minimum number of images a class needs in validation and in test to be judged.
        max_failing_class_fraction: Largest fraction of the judged classes that may fail for the
            failure to count as concentrated in a few classes.
        ece_limit: Expected calibration error on the test split above which the model is called poorly
            calibrated.
        calibration_bins: Number of equal-width confidence bins for the calibration error and the
            reliability diagram.
        bootstrap_resamples: Number of bootstrap resamples behind the F1 and loss intervals.
        seed: Seed of the bootstrap resampling.
        gallery_size: Number of most confident test mistakes shown as images.
    """

    confidence_level: float = 0.95
    significance_level: float = 0.05
    overfit_gap: float = 0.05
    val_test_gap: float = 0.03
    min_val_images: int = 100
    max_val_interval_width: float = 0.10
    class_recall_drop: float = 0.15
    min_class_support: int = 10
    max_failing_class_fraction: float = 0.34
    ece_limit: float = 0.10
    calibration_bins: int = 15
    bootstrap_resamples: int = 1000
    seed: int = 0
    gallery_size: int = 16

    def __post_init__(self) -> None:
        for name in ("confidence_level", "significance_level", "max_failing_class_fraction"):
            _check_open_unit_interval(name, getattr(self, name))
        for name in (
            "overfit_gap",
            "val_test_gap",
            "max_val_interval_width",
            "class_recall_drop",
            "ece_limit",
        ):
            _check_fraction(name, getattr(self, name))
        for name in ("min_val_images", "min_class_support", "gallery_size"):
            _check_integer(name, getattr(self, name), minimum=0)
        for name in ("calibration_bins", "bootstrap_resamples"):
            _check_integer(name, getattr(self, name), minimum=1)
        _check_integer("seed", self.seed, minimum=0)


def _check_open_unit_interval(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected `report.{name}` to be a float, but got {value!r}.")
    if not 0.0 < value < 1.0:
        raise ConfigError(f"Expected `report.{name}` to be between 0 and 1 (exclusive), but got {value}.")


def _check_fraction(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected `report.{name}` to be a float, but got {value!r}.")
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"Expected `report.{name}` to be a fraction between 0 and 1, but got {value}.")


def _check_integer(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Expected `report.{name}` to be an int, but got {value!r}.")
    if value < minimum:
        raise ConfigError(f"Expected `report.{name}` to be at least {minimum}, but got {value}.")
