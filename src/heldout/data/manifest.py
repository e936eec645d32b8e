"""The split manifest: which file went to which split, written once and reused for the whole run."""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from heldout.atomic_files import write_csv_atomic
from heldout.errors import DataError

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.csv"
MANIFEST_META_FILE = "manifest.json"
SKIPPED_FILE = "skipped.csv"
_COLUMNS = ("path", "class", "split", "group", "source", "size", "mtime_ns")


@dataclass(frozen=True)
class ManifestRow:
    """One image in the split.

    ``path`` is relative to the folder named by ``source`` (``data_dir``, ``val_dir`` or ``test_dir``);
    ``size`` and ``mtime_ns`` record the file as it was when the split was written.
    """

    path: str
    label: str
    split: str
    group: str
    source: str
    size: int
    mtime_ns: int


@dataclass
class Manifest:
    """A split with what it was drawn from: folders, classes, seed and fractions."""

    rows: list[ManifestRow]
    roots: dict[str, str]
    classes: list[str]
    settings: dict[str, object] = field(default_factory=dict)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (source, path, reason)

    def absolute_path(self, row: ManifestRow) -> Path:
        return Path(self.roots[row.source]) / row.path

    def rows_for(self, split: str) -> list[ManifestRow]:
        return [row for row in self.rows if row.split == split]


def file_stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def write_manifest(manifest: Manifest, folder: str | os.PathLike[str]) -> Path:
    """Write ``manifest.csv``, ``manifest.json`` and ``skipped.csv`` into ``folder``; return the CSV path.

    Files are written under a temporary name and renamed, so a crash never leaves half a manifest.
    """
    folder_path = Path(folder)
    folder_path.mkdir(parents=True, exist_ok=True)
    csv_path = folder_path / MANIFEST_FILE

    write_csv_atomic(csv_path, _COLUMNS,
                      ([row.path, row.label, row.split, row.group, row.source, row.size, row.mtime_ns]
                       for row in manifest.rows))
    write_skipped(manifest, folder_path)
    meta = {"roots": manifest.roots, "classes": manifest.classes, "settings": manifest.settings,
            "num_samples": {split: len(manifest.rows_for(split)) for split in ("train", "val", "test")}}
    temporary = folder_path / (MANIFEST_META_FILE + ".tmp")
    temporary.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(temporary, folder_path / MANIFEST_META_FILE)
    return csv_path


def write_skipped(manifest: Manifest, folder: str | os.PathLike[str]) -> Path:
    """Write ``skipped.csv``, the files left out as unreadable with the reason, into ``folder``."""
    path = Path(folder) / SKIPPED_FILE
    write_csv_atomic(path, ("source", "path", "reason"), manifest.skipped)
    return path


def read_manifest(folder: str | os.PathLike[str]) -> Manifest:
    """Read a manifest written by :func:`write_manifest`.

    Raises:
        DataError: the manifest is missing a column or its metadata file.
    """
    folder_path = Path(folder)
    csv_path = folder_path / MANIFEST_FILE
    meta_path = folder_path / MANIFEST_META_FILE
    if not meta_path.is_file():
        raise DataError(f"Manifest metadata {meta_path} not found next to {csv_path}; delete {csv_path} "
                        "to draw a new split.")
    meta = json.loads(meta_path.read_text())
    rows: list[ManifestRow] = []
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in _COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"Manifest {csv_path} lacks the column(s) {', '.join(missing)}; delete it to draw "
                            "a new split.")
        for record in reader:
            rows.append(ManifestRow(record["path"], record["class"], record["split"], record["group"],
                                    record["source"], int(record["size"]), int(record["mtime_ns"])))
    skipped: list[tuple[str, str, str]] = []
    skipped_path = folder_path / SKIPPED_FILE
    if skipped_path.is_file():
        with skipped_path.open(newline="") as handle:
            skipped = [(r["source"], r["path"], r["reason"]) for r in csv.DictReader(handle)]
    return Manifest(rows, meta["roots"], meta["classes"], meta.get("settings", {}), skipped)


@dataclass
class FolderChanges:
    """Differences between the files a manifest lists and the files on disk now."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.modified)

    def summary(self) -> str:
        parts = []
        for name, paths in asdict(self).items():
            if paths:
                parts.append(f"{len(paths)} {name} (for example {paths[0]})")
        return ", ".join(parts)


def compare_with_disk(manifest: Manifest, current: dict[str, set[str]]) -> FolderChanges:
    """Compare the manifest with the image files now found in each source folder.

    ``current`` maps a source name to the relative paths found there now, including files that the
    pre-flight check skipped.
    """
    changes = FolderChanges()
    listed: dict[str, set[str]] = {source: set() for source in manifest.roots}
    for row in manifest.rows:
        listed.setdefault(row.source, set()).add(row.path)
        path = manifest.absolute_path(row)
        try:
            if file_stat(path) != (row.size, row.mtime_ns):
                changes.modified.append(f"{row.source}:{row.path}")
        except OSError:
            changes.removed.append(f"{row.source}:{row.path}")
    for source, path, _reason in manifest.skipped:
        listed.setdefault(source, set()).add(path)
    for source, paths in current.items():
        for path in sorted(paths - listed.get(source, set())):
            changes.added.append(f"{source}:{path}")
    return changes
