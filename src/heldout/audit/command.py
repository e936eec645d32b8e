"""The ``heldout audit`` command: audit an image folder for leakage and write the findings."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from heldout.argument_parser import OneLineArgumentParser
from heldout.audit.audit import run_audit
from heldout.audit.groups import groups_from_csv, groups_from_regex
from heldout.audit.hashing import DEFAULT_THRESHOLD
from heldout.audit.index import HASH_BITS
from heldout.data.manifest import read_manifest
from heldout.data.scan import FolderScan, scan_image_folder
from heldout.errors import ConfigError, HeldoutError

log = logging.getLogger(__name__)


def _build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="heldout audit",
        description="Find exact and near-duplicate images, label conflicts and split imbalance in an image "
                    "folder laid out as DATA_DIR/<class>/<image>.")
    parser.add_argument("data_dir", metavar="DATA_DIR", help="image folder laid out as DATA_DIR/<class>/<image>")
    parser.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD,
                        help="maximum Hamming distance in bits (of 64) between the perceptual hashes of "
                             "near-duplicates (default: %(default)s)")
    parser.add_argument("--out", default="audit", help="folder for audit.json and the pairs figure "
                                                       "(default: %(default)s)")
    parser.add_argument("--group-regex", help=r"regex with a named capture (?P<group>...) searched in each "
                                              "path relative to DATA_DIR, such as '(?P<group>patient\\d+)'")
    parser.add_argument("--group-csv", help="CSV file with a path column and a group column")
    parser.add_argument("--group-column", default="group", help="group column of --group-csv "
                                                                "(default: %(default)s)")
    parser.add_argument("--path-column", default="path", help="path column of --group-csv, relative to "
                                                              "DATA_DIR (default: %(default)s)")
    parser.add_argument("--manifest", metavar="RUN_FOLDER",
                        help="run folder whose manifest.csv assigns the splits to audit for leakage")
    parser.add_argument("--workers", type=int, default=None, help="hashing processes (default: CPU count)")
    return parser


def _splits_from_manifest(folder: str, scan: FolderScan) -> list[str]:
    manifest = read_manifest(folder)
    by_path = {row.path: row.split for row in manifest.rows if row.source == "data_dir"}
    missing = [sample.path for sample in scan.samples if sample.path not in by_path]
    if missing:
        raise ConfigError(f"--manifest {folder} assigns no split to {len(missing)} image(s) of {scan.root}, such "
                          f"as {missing[0]!r}. Pass the run folder whose split was drawn from this data folder.")
    return [by_path[sample.path] for sample in scan.samples]


def _run(arguments: argparse.Namespace) -> int:
    if not 0 <= arguments.threshold < HASH_BITS:
        raise ConfigError(f"Expected --threshold to be between 0 and {HASH_BITS - 1} bits, but got "
                          f"{arguments.threshold}.")
    if arguments.group_regex is not None and arguments.group_csv is not None:
        raise ConfigError("Expected either --group-regex or --group-csv, but got both. Keep one of them.")
    scan = scan_image_folder(arguments.data_dir, min_classes=1)
    paths = [sample.path for sample in scan.samples]
    groups = None
    if arguments.group_regex is not None:
        groups = groups_from_regex(paths, arguments.group_regex)
    elif arguments.group_csv is not None:
        groups = groups_from_csv(paths, scan.root, arguments.group_csv, group_column=arguments.group_column,
                                 path_column=arguments.path_column)
    splits = _splits_from_manifest(arguments.manifest, scan) if arguments.manifest else None

    report = run_audit(scan, splits=splits, groups=groups, threshold=arguments.threshold, out_dir=arguments.out,
                       num_workers=arguments.workers)
    print("\n".join(report.summary_lines()))  # noqa: T201
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``heldout audit DATA_DIR [options]`` and return the exit status: 0, or 2 for invalid input."""
    arguments = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return _run(arguments)
    except HeldoutError as error:
        print(f"heldout: error: {error}", file=sys.stderr)  # noqa: T201
        return 2


if __name__ == "__main__":
    sys.exit(main())
