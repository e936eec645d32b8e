"""Format figures for the report's sentences and tables."""

from __future__ import annotations

import math

from heldout.report.summary import Estimate


def format_accuracy(estimate: Estimate, confidence: float) -> str:
    """Format an accuracy as a percentage with its interval, e.g. ``81.2% (95% CI 78.0% to 84.1%)``."""
    if estimate.value is None:
        return "(not recorded)"
    if estimate.low is None or estimate.high is None:
        return f"{estimate.value:.1%}"
    return f"{estimate.value:.1%} ({confidence:.0%} CI {estimate.low:.1%} to {estimate.high:.1%})"


def format_points(fraction: float) -> str:
    """Format a difference of two fractions in percentage points."""
    if math.isinf(fraction):
        return "unbounded"
    return f"{fraction * 100:.1f} percentage points"


def format_p(p_value: float | None) -> str:
    """Format a p-value as ``p = 0.012`` or ``p < 0.001``."""
    if p_value is None:
        return "p not available"
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"
