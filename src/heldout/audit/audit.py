"""Audit a scanned image folder for duplicates, near-duplicates, label conflicts and split balance."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from heldout.audit.balance import SplitBalance, split_balance
from heldout.audit.figures import plot_pairs
from heldout.audit.groups import cluster_pairs
from heldout.audit.hashing import DEFAULT_THRESHOLD, hash_images
from heldout.audit.index import find_close_pairs
from heldout.data.scan import FolderScan
from heldout.errors import DataError

log = logging.getLogger(__name__)

AUDIT_FILE = "audit.json"
PAIRS_FIGURE = "closest_pairs.png"
# Pairs listed per finding in audit.json; the counts always cover all of them.
MAX_LISTED_PAIRS = 1000
PAIRS_IN_FIGURE = 12


@dataclass
class AuditReport:
    """Findings of :func:`run_audit`; pair lists are sorted by distance and cut at ``MAX_LISTED_PAIRS``.

    Each pair is a dict with ``a``, ``b`` (paths relative to ``root``), ``distance`` (Hamming bits of
    the perceptual hashes), ``exact`` (same decoded pixels), ``label_a``, ``label_b`` and, with splits,
    ``split_a``, ``split_b``.
    """

    root: str
    threshold: int
    num_images: int
    unreadable: list[dict[str, str]]
    exact_duplicate_sets: list[list[str]]
    counts: dict[str, int]
    near_duplicate_pairs: list[dict[str, object]]
    cross_split_pairs: list[dict[str, object]]
    label_conflicts: list[dict[str, object]]
    largest_cluster: list[str]
    balance: SplitBalance | None = None
    declared_groups: int | None = None
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary_lines(self) -> list[str]:
        """Return a short human-readable summary, one finding per line."""
        counts = self.counts
        lines = [f"Audited {self.num_images} images in {self.root} (near-duplicate threshold {self.threshold} bits)."]
        if self.unreadable:
            lines.append(f"Unreadable images left out: {len(self.unreadable)}, such as {self.unreadable[0]['path']} "
                         f"({self.unreadable[0]['reason']}).")
        lines.append(f"Exact duplicates: {counts['exact_duplicate_images']} images in "
                     f"{len(self.exact_duplicate_sets)} sets of identical pixels.")
        lines.append(f"Near-duplicate pairs: {counts['near_duplicate_pairs']} (exact pairs included), in "
                     f"{counts['clusters']} clusters; the largest has {len(self.largest_cluster)} images.")
        lines.append(f"Label conflicts (same or near-identical image under two classes): {counts['label_conflicts']}.")
        if self.balance is not None:
            lines.append(f"Pairs across splits (leakage): {counts['cross_split_pairs']} pairs, "
                         f"{counts['clusters_across_splits']} clusters span more than one split.")
            if self.balance.p_value is not None:
                lines.append(f"Split balance: chi-square {self.balance.statistic:.2f}, dof {self.balance.dof}, "
                             f"p = {self.balance.p_value:.3g} (small p means the splits differ in class mix).")
        if self.declared_groups is not None:
            lines.append(f"Declared groups: {self.declared_groups}; near-duplicate pairs in different groups: "
                         f"{counts['cross_group_pairs']} (a split by these groups alone would separate them).")
        for name, path in self.files.items():
            lines.append(f"Wrote {name}: {path}")
        return lines


def _pair_record(scan: FolderScan, splits: Sequence[str] | None, digests: Sequence[str | None], first: int,
                 second: int, distance: int) -> dict[str, object]:
    a, b = scan.samples[first], scan.samples[second]
    record: dict[str, object] = {"a": a.path, "b": b.path, "distance": int(distance),
                                 "exact": digests[first] == digests[second], "label_a": a.label, "label_b": b.label}
    if splits is not None:
        record["split_a"], record["split_b"] = splits[first], splits[second]
    return record


def _exact_duplicate_sets(scan: FolderScan, digests: Sequence[str | None]) -> list[list[str]]:
    by_digest: dict[str, list[str]] = defaultdict(list)
    for sample, digest in zip(scan.samples, digests, strict=True):
        if digest is not None:
            by_digest[digest].append(sample.path)
    return sorted((paths for paths in by_digest.values() if len(paths) > 1), key=lambda paths: (-len(paths), paths))


def _check_length(scan: FolderScan, values: Sequence[object] | None, what: str) -> None:
    if values is not None and len(values) != len(scan.samples):
        raise DataError(f"Expected one entry per sample of {scan.root}, but got {len(values)} {what} "
                        f"for {len(scan.samples)} samples.")


def run_audit(scan: FolderScan, *, splits: Sequence[str] | None = None, groups: Sequence[str | None] | None = None,
              threshold: int = DEFAULT_THRESHOLD,
              out_dir: str | Path | None = None, num_workers: int | None = None,
              progress: bool = True) -> AuditReport:
    """Hash every image of ``scan`` and report duplicates, near-duplicates, label conflicts and balance.

    ``splits`` gives a split name per sample in ``scan.samples`` order; without it, nothing is reported
    about splits. ``groups`` gives a declared group per sample (None for none), and pairs whose images are
    in different declared groups are counted, because a group split would not keep them together. Two
    images are near-duplicates when their perceptual hashes differ in at most ``threshold`` bits.
    Unreadable images are reported and left out. With ``out_dir``, ``audit.json`` and a PNG of the
    closest pairs (across splits when splits are given) are written there.

    Raises:
        DataError: ``splits`` or ``groups`` does not have one entry per sample.
        ValueError: ``threshold`` is outside 0..63.
    """
    _check_length(scan, splits, "split names")
    _check_length(scan, groups, "groups")
    hashes = hash_images([scan.root / sample.path for sample in scan.samples], num_workers=num_workers,
                         progress=progress)
    readable = hashes.readable
    found = find_close_pairs(hashes.phashes[readable], threshold)
    first, second, distance = readable[found.first], readable[found.second], found.distance
    order = np.lexsort((second, first, distance))
    first, second, distance = first[order], second[order], distance[order]

    labels = [sample.label for sample in scan.samples]
    cross = np.zeros(len(first), dtype=bool) if splits is None else np.array(
        [splits[i] != splits[j] for i, j in zip(first.tolist(), second.tolist(), strict=True)], dtype=bool)
    across_groups = np.zeros(len(first), dtype=bool) if groups is None else np.array(
        [groups[i] is None or groups[i] != groups[j] for i, j in zip(first.tolist(), second.tolist(), strict=True)],
        dtype=bool)
    conflict = np.array([labels[i] != labels[j] for i, j in zip(first.tolist(), second.tolist(), strict=True)],
                        dtype=bool)

    def records(mask: np.ndarray) -> list[dict[str, object]]:
        chosen = np.flatnonzero(mask)[:MAX_LISTED_PAIRS]
        return [_pair_record(scan, splits, hashes.digests, int(first[k]), int(second[k]), int(distance[k]))
                for k in chosen]

    clusters = cluster_pairs(len(scan.samples), first, second)
    sizes = np.bincount(clusters)
    largest = np.flatnonzero(clusters == int(np.argmax(sizes)))
    spanning = 0
    if splits is not None:
        split_sets: dict[int, set[str]] = defaultdict(set)
        for index, cluster in enumerate(clusters.tolist()):
            if sizes[cluster] > 1:
                split_sets[cluster].add(splits[index])
        spanning = sum(1 for names in split_sets.values() if len(names) > 1)

    exact_sets = _exact_duplicate_sets(scan, hashes.digests)
    report = AuditReport(
        root=str(scan.root), threshold=threshold, num_images=len(scan.samples),
        unreadable=[{"path": scan.samples[index].path, "reason": reason} for index, reason in hashes.failed.items()],
        exact_duplicate_sets=exact_sets,
        counts={"exact_duplicate_images": sum(len(paths) for paths in exact_sets),
                "near_duplicate_pairs": len(first), "clusters": int((sizes > 1).sum()),
                "cross_split_pairs": int(cross.sum()), "clusters_across_splits": spanning,
                "label_conflicts": int(conflict.sum()), "cross_group_pairs": int(across_groups.sum())},
        near_duplicate_pairs=records(np.ones(len(first), dtype=bool)),
        cross_split_pairs=records(cross), label_conflicts=records(conflict),
        largest_cluster=[scan.samples[index].path for index in largest] if len(largest) > 1 else [],
        balance=split_balance(labels, splits) if splits is not None else None,
        declared_groups=len({group for group in groups if group is not None}) if groups is not None else None)
    if out_dir is not None:
        _write_outputs(report, scan.root, Path(out_dir))
    return report


def _write_outputs(report: AuditReport, root: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    shown = report.cross_split_pairs if report.balance is not None else report.near_duplicate_pairs
    figure = plot_pairs(root, shown[:PAIRS_IN_FIGURE], out_dir / PAIRS_FIGURE)
    report.files = {"findings": str(out_dir / AUDIT_FILE), "closest pairs": str(figure)}
    (out_dir / AUDIT_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    log.info("Wrote the audit to %s", out_dir / AUDIT_FILE)
