import pandas as pd
import pytest

from heldout.report.data_checks import count_audit_findings, count_skipped, leakage_sentence


@pytest.mark.parametrize(
    ("audit", "expected"),
    [
        # Lists count their items, integers count as themselves.
        (
            {"exact_duplicates": [1, 2, 3], "near_duplicates": 2},
            {"exact_duplicates": 3, "near_duplicates": 2},
        ),
        # A mapping with a count, and a mapping opened one level.
        ({"leaks": {"count": 4}}, {"leaks": 4}),
        (
            {"cross_split": {"exact": [1], "near": [], "note": "x"}},
            {"cross_split.exact": 1, "cross_split.near": 0},
        ),
        # Keys without duplicate or leak words and values of other types are left out.
        ({"files": 100, "exact": True, "near": "many"}, {}),
        # Audits that are not JSON objects.
        ([1, 2], {}),
        (None, {}),
    ],
)
def test_count_audit_findings_shapes(audit, expected):
    assert count_audit_findings(audit) == expected


def test_leakage_sentence_only_when_found():
    assert leakage_sentence({"exact": 0}) is None
    assert leakage_sentence({"exact": 2, "near": 0}) == (
        "The leakage audit found duplicates across splits or label conflicts (exact: 2), which can make validation and test "
        "accuracy optimistic."
    )


def test_count_skipped_per_source():
    skipped = pd.DataFrame(
        {"source": ["data_dir", "data_dir", "test_dir"], "path": ["a", "b", "c"], "reason": "x"}
    )
    assert count_skipped(skipped) == {"data_dir": 2, "test_dir": 1}
    assert count_skipped(None) == {}


def test_count_audit_findings_uses_heldout_totals():
    audit = {"near_duplicate_pairs": [{"a": "x", "b": "y"}] * 1000, "cross_split_pairs": [{"a": "x"}] * 3,
             "counts": {"near_duplicate_pairs": 3538, "cross_split_pairs": 1067, "clusters_across_splits": 40,
                        "label_conflicts": 0}}
    assert count_audit_findings(audit) == {"cross_split_pairs": 1067, "clusters_across_splits": 40,
                                           "label_conflicts": 0}
    within_splits_only = {"near_duplicate_pairs": [{"a": "x"}] * 49,
                          "counts": {"near_duplicate_pairs": 49, "cross_split_pairs": 0, "label_conflicts": 0}}
    assert leakage_sentence(count_audit_findings(within_splits_only)) is None
