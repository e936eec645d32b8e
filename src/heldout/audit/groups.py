"""Group samples: connected components of pairs, a regex on the path, or a CSV column."""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from heldout.errors import ConfigError, DataError

log = logging.getLogger(__name__)

GROUP_CAPTURE = "group"


def cluster_pairs(num_items: int, first: Sequence[int], second: Sequence[int]) -> np.ndarray:
    """Return a cluster id per item, where items joined by a pair, directly or through others, share one.

    This is the result union-find gives, computed as the connected components of the pair graph with
    ``scipy.sparse.csgraph``. Ids run from 0 in order of each cluster's first item.
    """
    first_array = np.asarray(first, dtype=np.int64)
    second_array = np.asarray(second, dtype=np.int64)
    graph = coo_matrix((np.ones(len(first_array), dtype=np.int8), (first_array, second_array)),
                       shape=(num_items, num_items))
    _, labels = connected_components(graph, directed=False)
    # Renumber so the ids do not depend on scipy's traversal order.
    _, first_seen = np.unique(labels, return_index=True)
    renumber = np.empty(len(first_seen), dtype=np.int64)
    renumber[np.argsort(np.argsort(first_seen))] = np.arange(len(first_seen))
    return renumber[labels]


@dataclass(frozen=True)
class OptionNames:
    """Names of the grouping settings in messages: the flags of ``heldout audit`` or the data config keys."""

    threshold: str
    group_regex: str
    group_csv: str
    column_hint: str  # how to name the CSV columns


AUDIT_FLAGS = OptionNames("--threshold", "--group-regex", "--group-csv",
                          "Name the columns with --path-column and --group-column.")
DATA_KEYS = OptionNames("data.near_duplicate_threshold", "data.group_regex", "data.group_csv",
                        "Name the path column 'path' and the group column with data.group_column.")


def compile_group_regex(pattern: str, names: OptionNames = AUDIT_FLAGS) -> re.Pattern[str]:
    """Compile a grouping regex and check that it has the named capture ``(?P<group>...)``.

    Raises:
        ConfigError: the regex is invalid or has no capture named ``group``.
    """
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ConfigError(f"Invalid {names.group_regex} {pattern!r}: {error}. Expected a Python regular expression "
                          r"with a named capture, such as '(?P<group>patient\d+)'.") from None
    if GROUP_CAPTURE not in compiled.groupindex:
        raise ConfigError(f"{names.group_regex} {pattern!r} has no named capture '{GROUP_CAPTURE}'. Wrap the part of "
                          r"the path that names the group in (?P<group>...), such as '(?P<group>patient\d+)'.")
    return compiled


def groups_from_regex(paths: Sequence[str], pattern: str, names: OptionNames = AUDIT_FLAGS) -> list[str | None]:
    """Return the ``group`` capture of ``re.search(pattern, path)`` per relative path, None where no match.

    Raises:
        ConfigError: the regex is invalid, has no ``group`` capture, or matches none of the paths.
    """
    compiled = compile_group_regex(pattern, names)
    groups: list[str | None] = []
    for path in paths:
        match = compiled.search(path)
        groups.append(match.group(GROUP_CAPTURE) if match and match.group(GROUP_CAPTURE) else None)
    unmatched = [path for path, group in zip(paths, groups, strict=True) if group is None]
    if paths and len(unmatched) == len(paths):
        raise ConfigError(f"{names.group_regex} {pattern!r} matches none of the {len(paths)} image paths, such as "
                          f"{paths[0]!r}. The regex is searched in the path relative to the data folder; fix it "
                          "so its (?P<group>...) capture matches part of those paths.")
    if unmatched:
        log.warning("%s %r matches no group in %d of %d paths, such as %r; each of those images "
                    "is its own group.", names.group_regex, pattern, len(unmatched), len(paths), unmatched[0])
    return groups


def _normalise_path(value: str, root: Path) -> str:
    text = value.strip().replace("\\", "/")
    path = Path(text)
    if path.is_absolute():
        try:
            return path.resolve().relative_to(root).as_posix()
        except ValueError:
            return text
    return PurePosixPath(text).as_posix().removeprefix("./")


def _read_group_table(csv_file: Path, path_column: str, group_column: str,
                      names: OptionNames) -> list[tuple[str, str]]:
    try:
        with csv_file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            missing = [name for name in (path_column, group_column) if name not in columns]
            if missing:
                listed = ", ".join(repr(name) for name in columns) or "none (the file is empty)"
                raise ConfigError(f"{names.group_csv} {csv_file} has no column {missing[0]!r}; its columns are "
                                  f"{listed}. {names.column_hint}")
            return [(row[path_column] or "", row[group_column] or "") for row in reader]
    except FileNotFoundError:
        raise ConfigError(f"{names.group_csv} {csv_file} not found. Pass an existing CSV file with a "
                          f"{path_column!r} column and a {group_column!r} column.") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"{names.group_csv} {csv_file} cannot be read as a UTF-8 CSV file: {error}.") from None


def groups_from_csv(paths: Sequence[str], root: str | os.PathLike[str], csv_file: str | os.PathLike[str], *,
                    group_column: str, path_column: str = "path",
                    names: OptionNames = AUDIT_FLAGS) -> list[str | None]:
    """Return the group per relative path from a CSV table, None for paths the table does not list.

    Paths in the table are relative to ``root`` (absolute paths inside ``root`` also work). Rows naming a
    file that exists under ``root`` but is not in ``paths``, such as an unreadable image left out of the
    split, are skipped.

    Raises:
        ConfigError: the file is missing or unreadable, a column is missing, a row has an empty group,
            or rows name files that do not exist under ``root``.
    """
    root_path = Path(root).resolve()
    table_file = Path(csv_file).expanduser()
    rows = _read_group_table(table_file, path_column, group_column, names)
    wanted = set(paths)
    table: dict[str, str] = {}
    not_found: list[str] = []
    for line, (raw_path, group) in enumerate(rows, start=2):
        path = _normalise_path(raw_path, root_path)
        if not group.strip():
            raise ConfigError(f"{names.group_csv} {table_file} line {line}: empty {group_column!r} for path {raw_path!r}. "
                              "Give every row a group name, or remove the row.")
        if path in wanted:
            table[path] = group.strip()
        elif not (root_path / path).is_file():
            not_found.append(raw_path)
    if not_found:
        raise ConfigError(f"{names.group_csv} {table_file} names {len(not_found)} file(s) not found under {root_path}, "
                          f"such as {not_found[0]!r}. Expected paths relative to the data folder in the "
                          f"{path_column!r} column; fix the paths or remove those rows.")

    groups = [table.get(path) for path in paths]
    unlisted = [path for path, group in zip(paths, groups, strict=True) if group is None]
    if unlisted:
        log.warning("%s %s lists no group for %d of %d images, such as %r; each of those images is "
                    "its own group.", names.group_csv, table_file, len(unlisted), len(paths), unlisted[0])
    return groups


def name_groups(paths: Sequence[str], declared: Sequence[str | None], first: Sequence[int],
                second: Sequence[int]) -> list[str]:
    """Merge declared groups with near-duplicate pairs and return a unique group name per sample.

    Samples sharing a declared name, or joined by a pair, end up in one group. A group is named after
    its first declared name in sorted order; a group without one is ``near-duplicates:<first path>``
    when it has several images and ``image:<path>`` for a single image.

    Raises:
        DataError: ``paths`` and ``declared`` differ in length.
    """
    if len(paths) != len(declared):
        raise DataError(f"Expected one declared group per path, but got {len(declared)} groups for "
                        f"{len(paths)} paths.")
    first_all = list(first)
    second_all = list(second)
    anchor: dict[str, int] = {}
    for index, name in enumerate(declared):
        if name is None:
            continue
        if name in anchor:
            first_all.append(anchor[name])
            second_all.append(index)
        else:
            anchor[name] = index
    clusters = cluster_pairs(len(paths), first_all, second_all)

    declared_name: dict[int, str] = {}
    members: dict[int, list[int]] = {}
    for index, cluster in enumerate(clusters.tolist()):
        members.setdefault(cluster, []).append(index)
        name = declared[index]
        if name is not None and (cluster not in declared_name or name < declared_name[cluster]):
            declared_name[cluster] = name
    names: list[str] = []
    for cluster in clusters.tolist():
        if cluster in declared_name:
            names.append(declared_name[cluster])
        elif len(members[cluster]) > 1:
            names.append(f"near-duplicates:{paths[members[cluster][0]]}")
        else:
            names.append(f"image:{paths[members[cluster][0]]}")
    return names
