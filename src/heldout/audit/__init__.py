"""Leakage audit: exact and near-duplicate images, label conflicts, split balance and grouping."""

from heldout.audit.audit import DEFAULT_THRESHOLD, AuditReport, run_audit
from heldout.audit.group_function import make_group_function

__all__ = ["DEFAULT_THRESHOLD", "AuditReport", "make_group_function", "run_audit"]
