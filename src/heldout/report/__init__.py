"""A report on whether a run's validation accuracy is a fair estimate of its test accuracy."""

from heldout.report.build import build_report
from heldout.report.settings import ReportSettings

__all__ = ["ReportSettings", "build_report"]
