"""Summarize the data-side files of a run: files skipped as unreadable and the leakage audit."""

from __future__ import annotations

from typing import Any

import pandas as pd

# Top-level audit keys whose counts are reported. The audit format belongs to another module and may
# change, so keys are matched by these words instead of by exact name.
_AUDIT_KEY_WORDS = ("duplicate", "exact", "near", "leak", "overlap", "cross")


# Totals in the ``counts`` mapping of heldout's own audit.json that mean leakage between splits. Its pair
# lists are cut at a maximum length and include pairs within one split, so they are not counted.
_AUDIT_LEAKAGE_COUNTS = ("cross_split_pairs", "clusters_across_splits", "label_conflicts")


def count_audit_findings(audit: Any) -> dict[str, int]:
    """Count the leakage findings of an audit.

    heldout's audit.json has a ``counts`` mapping, from which the cross-split and label-conflict totals are
    taken. For other shapes, the top-level keys that mention duplicates or leaks are counted:

    A list counts its items, an integer counts as itself, and a mapping with an integer ``count`` counts
    as that. Other mappings are opened one level, giving keys like ``cross_split.exact``. Anything else,
    including an audit that is not a JSON object, is left out.

    Example:
        >>> count_audit_findings({"exact_duplicates": [{"a": 1}, {"a": 2}], "near": {"count": 3}, "ok": True})
        {'exact_duplicates': 2, 'near': 3}
    """
    if not isinstance(audit, dict):
        return {}
    totals = audit.get("counts")
    if isinstance(totals, dict):
        return {key: int(totals[key]) for key in _AUDIT_LEAKAGE_COUNTS if isinstance(totals.get(key), int)}
    counts: dict[str, int] = {}
    for key, value in audit.items():
        if not any(word in str(key).lower() for word in _AUDIT_KEY_WORDS):
            continue
        count = _count(value)
        if count is not None:
            counts[str(key)] = count
        elif isinstance(value, dict):
            for inner_key, inner_value in value.items():
                inner_count = _count(inner_value)
                if inner_count is not None:
                    counts[f"{key}.{inner_key}"] = inner_count
    return counts


def leakage_sentence(counts: dict[str, int]) -> str | None:
    """Return a sentence for the verdict when the audit found duplicates, else ``None``."""
    found = {key: count for key, count in counts.items() if count > 0}
    if not found:
        return None
    listed = ", ".join(f"{key}: {count}" for key, count in found.items())
    return (
        f"The leakage audit found duplicates across splits or label conflicts ({listed}), which can make "
        f"validation and test "
        f"accuracy optimistic."
    )


def count_skipped(skipped: pd.DataFrame | None) -> dict[str, int]:
    """Count the unreadable files left out of the run, per source folder."""
    if skipped is None or skipped.empty:
        return {}
    return {str(source): int(count) for source, count in skipped.groupby("source").size().items()}


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        inner = value.get("count")
        if isinstance(inner, int) and not isinstance(inner, bool):
            return inner
    return None
