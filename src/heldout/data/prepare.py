"""Create the split manifest once (pre-flight check, then split) or reuse the one a run folder holds."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from heldout.data.manifest import (
    MANIFEST_FILE,
    MANIFEST_META_FILE,
    SKIPPED_FILE,
    Manifest,
    ManifestRow,
    compare_with_disk,
    file_stat,
    read_manifest,
    write_manifest,
    write_skipped,
)
from heldout.data.preflight import find_bad_images
from heldout.data.scan import FolderScan, Sample, scan_image_folder
from heldout.data.split import TEST, TRAIN, VAL, stratified_split
from heldout.errors import DataError

log = logging.getLogger(__name__)

DATA_DIR, VAL_DIR, TEST_DIR = "data_dir", "val_dir", "test_dir"
# Splits that come whole from a separate folder.
_FOLDER_SPLITS = {VAL_DIR: VAL, TEST_DIR: TEST}
# At most this many bad files are named in an error message; the full list goes to a file.
_MAX_LISTED = 20

# Assigns a group name to each sample so that related images stay in one split; None means no groups.
GroupFunction = Callable[[FolderScan], list[str]]


def scan_sources(roots: Mapping[str, str | Path]) -> dict[str, FolderScan]:
    """Scan ``data_dir`` and the optional ``val_dir``/``test_dir`` and check that their classes agree.

    Raises:
        DataError: a folder is missing, has no classes, or a separate folder has a class ``data_dir`` lacks.
    """
    scans = {DATA_DIR: scan_image_folder(roots[DATA_DIR])}
    known = set(scans[DATA_DIR].classes)
    for source in (VAL_DIR, TEST_DIR):
        if roots.get(source) is None:
            continue
        scan = scan_image_folder(roots[source], min_classes=1)
        unknown = sorted(set(scan.classes) - known)
        if unknown:
            raise DataError(f"--data.{source} {scan.root} has class folder(s) {', '.join(unknown)} that "
                            f"--data.data_dir {scans[DATA_DIR].root} lacks; both must use the same class names.")
        scans[source] = scan
    return scans


def _check_files(scans: Mapping[str, FolderScan], on_bad_file: Literal["skip", "fail"],
                 report_folder: Path | None) -> list[tuple[str, str, str]]:
    """Run the pre-flight check over every source; return ``(source, path, reason)`` for bad files."""
    paths = [(source, sample.path, scan.root / sample.path) for source, scan in scans.items()
             for sample in scan.samples]
    bad = find_bad_images([absolute for _, _, absolute in paths])
    found = [(source, relative, bad[absolute]) for source, relative, absolute in paths if absolute in bad]
    if not found:
        return []

    listed = "; ".join(f"{scans[source].root / path}: {reason}" for source, path, reason in found[:_MAX_LISTED])
    more = f"; and {len(found) - _MAX_LISTED} more" if len(found) > _MAX_LISTED else ""
    if on_bad_file == "fail":
        raise DataError(f"{len(found)} unreadable image file(s) found (data.on_bad_file=fail): {listed}{more}. "
                        "Fix or remove them, or set --data.on_bad_file skip to train without them.")
    where = f" (full list in {report_folder / SKIPPED_FILE})" if report_folder else ""
    log.warning("Skipping %d unreadable image file(s)%s: %s%s", len(found), where, listed, more)
    return found


def _good_samples(scan: FolderScan, source: str, skipped: list[tuple[str, str, str]]) -> list[Sample]:
    bad = {path for bad_source, path, _ in skipped if bad_source == source}
    return [sample for sample in scan.samples if sample.path not in bad]


def _row(scan: FolderScan, source: str, sample: Sample, split: str, group: str) -> ManifestRow:
    size, mtime_ns = file_stat(scan.root / sample.path)
    return ManifestRow(sample.path, sample.label, split, group, source, size, mtime_ns)


def create_manifest(scans: Mapping[str, FolderScan], *, val_fraction: float, test_fraction: float, seed: int,
                    on_bad_file: Literal["skip", "fail"], report_folder: Path | None = None,
                    group_samples: GroupFunction | None = None) -> Manifest:
    """Check every image, then split the good ones; separate ``val_dir``/``test_dir`` folders are used whole."""
    skipped = _check_files(scans, on_bad_file, report_folder)
    data_scan = scans[DATA_DIR]
    good = _good_samples(data_scan, DATA_DIR, skipped)
    classes = sorted({sample.label for sample in good})
    if len(classes) < 2:
        raise DataError(f"After leaving out unreadable files, --data.data_dir {data_scan.root} has "
                        f"{len(classes)} class(es) with images; a classifier needs at least 2.")
    lost = sorted(set(data_scan.classes) - set(classes))
    if lost:
        log.warning("Left out class(es) %s: every image in them is unreadable.", ", ".join(lost))

    index = {name: position for position, name in enumerate(classes)}
    good_scan = FolderScan(data_scan.root, classes, good)
    groups = group_samples(good_scan) if group_samples else [""] * len(good)
    assignment = stratified_split([index[s.label] for s in good], classes, val_fraction=val_fraction,
                                  test_fraction=test_fraction, seed=seed, split_val=VAL_DIR not in scans,
                                  split_test=TEST_DIR not in scans, groups=groups if group_samples else None)
    rows = [_row(data_scan, DATA_DIR, s, split, group) for s, split, group in zip(good, assignment, groups,
                                                                                  strict=True)]
    for source, split in _FOLDER_SPLITS.items():
        if source in scans:
            rows.extend(_row(scans[source], source, s, split, "")
                        for s in _good_samples(scans[source], source, skipped) if s.label in index)

    roots = {source: str(scan.root) for source, scan in scans.items()}
    return Manifest(rows, roots, classes, _split_settings(seed, val_fraction, test_fraction), skipped)


def _split_settings(seed: int, val_fraction: float, test_fraction: float) -> dict[str, object]:
    """Return the settings a manifest records about how its split was drawn."""
    return {"seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction}


def _reuse_manifest(folder: Path, scans: Mapping[str, FolderScan], on_bad_file: Literal["skip", "fail"] = "skip",
                    settings: Mapping[str, object] | None = None) -> Manifest:
    manifest = read_manifest(folder)
    changed = [f"data.{key} is {value} but the split was drawn with {manifest.settings[key]}"
               for key, value in (settings or {}).items()
               if key in manifest.settings and manifest.settings[key] != value]
    if changed:
        log.warning("Reusing the split in %s as it is, although %s. To draw a new split, delete %s and %s, or "
                    "use another --trainer.default_root_dir.", folder / MANIFEST_FILE, "; ".join(changed),
                    MANIFEST_FILE, MANIFEST_META_FILE)
    for source, scan in scans.items():
        if manifest.roots.get(source) != str(scan.root):
            raise DataError(f"The split in {folder / MANIFEST_FILE} was drawn with --data.{source} "
                            f"{manifest.roots.get(source)}, but the config now gives {scan.root}. Use a new "
                            "--trainer.default_root_dir for a different dataset, or delete the manifest to "
                            "draw a new split.")
    current = {source: {sample.path for sample in scan.samples} for source, scan in scans.items()}
    changes = compare_with_disk(manifest, current)
    if changes:
        log.warning("The data folder changed since the split in %s was written: %s. The split is kept: "
                    "removed files are left out, added files are not used. Delete the manifest to draw a new "
                    "split.", folder / MANIFEST_FILE, changes.summary())
        removed = set(changes.removed)
        manifest.rows = [row for row in manifest.rows if f"{row.source}:{row.path}" not in removed]
        if changes.modified:
            _recheck_modified(manifest, set(changes.modified), on_bad_file, folder)
    return manifest


def audit_split(manifest: Manifest, *, threshold: int, check: Literal["warn", "fail"],
                out_dir: Path | None) -> None:
    """Look for exact and near-duplicate images across the splits; warn or raise when some are found.

    The findings, with a PNG of the closest cross-split pairs, go to ``out_dir`` (``audit/`` in the run
    folder), where the report reads them.
    """
    from heldout.audit import run_audit  # imported here because hashing pulls in SciPy's FFT

    samples = [Sample(str(manifest.absolute_path(row)), row.label) for row in manifest.rows]
    combined = FolderScan(Path("/"), list(manifest.classes), samples)
    report = run_audit(combined, splits=[row.split for row in manifest.rows], threshold=threshold,
                       out_dir=out_dir, progress=len(samples) >= 2000)
    cross, conflicts = report.counts["cross_split_pairs"], report.counts["label_conflicts"]
    where = f" Details in {out_dir}." if out_dir is not None else ""
    if conflicts:
        example = report.label_conflicts[0]
        log.warning("Found %d label conflict(s): near-identical images under two classes, for example %s (%s) and "
                    "%s (%s), %s bits apart.%s Check those labels; on small or simple images some pairs are "
                    "merely similar.", conflicts, example["a"], example["label_a"], example["b"], example["label_b"],
                    example["distance"], where)
    if cross == 0:
        log.info("Leakage check: no exact or near-duplicate images across the splits.")
        return
    example = report.cross_split_pairs[0]
    message = (f"Leakage check found {cross} exact or near-duplicate image pair(s) across splits, for example "
               f"{example['a']} ({example.get('split_a')}) and {example['b']} ({example.get('split_b')}), "
               f"{example['distance']} bits apart.{where} Validation accuracy may overstate test accuracy: group "
               "related images with data.group_regex or data.group_csv, or remove the duplicates.")
    if check == "fail":
        raise DataError(message + " (data.leakage_check=fail; set it to warn to train anyway.)")
    log.warning(message)


def _recheck_modified(manifest: Manifest, modified: set[str], on_bad_file: Literal["skip", "fail"],
                      folder: Path) -> None:
    """Run the pre-flight check again on files changed since the split was written, and apply the policy.

    Bad files are dropped from ``manifest.rows`` and added to ``skipped.csv`` under ``skip``.

    Raises:
        DataError: a changed file is unreadable and ``on_bad_file`` is ``fail``.
    """
    rows = [row for row in manifest.rows if f"{row.source}:{row.path}" in modified]
    bad = find_bad_images([manifest.absolute_path(row) for row in rows])
    found = [(row.source, row.path, bad[manifest.absolute_path(row)]) for row in rows
             if manifest.absolute_path(row) in bad]
    if not found:
        return
    listed = "; ".join(f"{manifest.roots[source]}/{path}: {reason}" for source, path, reason in found[:_MAX_LISTED])
    more = f"; and {len(found) - _MAX_LISTED} more" if len(found) > _MAX_LISTED else ""
    if on_bad_file == "fail":
        raise DataError(f"{len(found)} image file(s) changed since the split in {folder / MANIFEST_FILE} was "
                        f"written and are now unreadable (data.on_bad_file=fail): {listed}{more}. Restore or "
                        "fix them, or set --data.on_bad_file skip to train without them.")
    dropped = {(source, path) for source, path, _ in found}
    manifest.rows = [row for row in manifest.rows if (row.source, row.path) not in dropped]
    # manifest.csv keeps the row, so a later run finds the same file again: list it in skipped.csv once.
    already = {(source, path) for source, path, _ in manifest.skipped}
    manifest.skipped = [*manifest.skipped, *(entry for entry in found if entry[:2] not in already)]
    write_skipped(manifest, folder)
    log.warning("Skipping %d image file(s) that changed since the split was written and are now unreadable "
                "(full list in %s): %s%s", len(found), folder / SKIPPED_FILE, listed, more)


def load_or_create_manifest(roots: Mapping[str, str | Path | None], folder: Path | None, *, val_fraction: float,
                            test_fraction: float, seed: int, on_bad_file: Literal["skip", "fail"],
                            group_samples: GroupFunction | None = None,
                            leakage_check: Literal["warn", "fail", "off"] = "off",
                            duplicate_threshold: int = 4) -> Manifest:
    """Return the split that ``folder`` holds, or draw one and write it there.

    With ``folder`` None the split is drawn in memory and not written. A reused split is compared with the
    files on disk, and any change is reported.
    """
    scans = scan_sources({source: root for source, root in roots.items() if root is not None})
    if folder is not None and (folder / MANIFEST_FILE).is_file():
        log.info("Reusing the split in %s", folder / MANIFEST_FILE)
        return _reuse_manifest(folder, scans, on_bad_file, _split_settings(seed, val_fraction, test_fraction))

    manifest = create_manifest(scans, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                               on_bad_file=on_bad_file, report_folder=folder, group_samples=group_samples)
    if leakage_check != "off":
        audit_split(manifest, threshold=duplicate_threshold, check=leakage_check,
                    out_dir=None if folder is None else folder / "audit")
    if folder is not None:
        path = write_manifest(manifest, folder)
        counts = {split: len(manifest.rows_for(split)) for split in (TRAIN, VAL, TEST)}
        log.info("Wrote the split to %s: %s", path, ", ".join(f"{k} {v}" for k, v in counts.items()))
    return manifest
