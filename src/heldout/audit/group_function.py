"""Build the function that assigns a group per sample before the data is split."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from heldout.audit.groups import (
    AUDIT_FLAGS,
    OptionNames,
    compile_group_regex,
    groups_from_csv,
    groups_from_regex,
    name_groups,
)
from heldout.audit.hashing import DEFAULT_THRESHOLD, hash_images
from heldout.audit.index import HASH_BITS, find_close_pairs
from heldout.data.scan import FolderScan
from heldout.errors import ConfigError


def make_group_function(*, threshold: int | None = DEFAULT_THRESHOLD, group_regex: str | None = None,
                        group_csv: str | os.PathLike[str] | None = None, group_column: str = "group",
                        path_column: str = "path", num_workers: int | None = None,
                        progress: bool = True, names: OptionNames = AUDIT_FLAGS) -> Callable[[FolderScan], list[str]]:
    """Return a callable that gives a group name per sample, in ``scan.samples`` order.

    Groups come from ``group_regex`` (the ``(?P<group>...)`` capture searched in each relative path) or
    from ``group_csv`` (columns ``path_column`` and ``group_column``). With ``threshold`` set, images whose
    perceptual hashes differ in at most that many bits are joined as well, so near-duplicates never cross
    a split even when they carry different declared groups; ``threshold=None`` uses the declared groups
    alone. Images in no group get a unique name of their own. Unreadable images are never joined.

    Raises:
        ConfigError: both ``group_regex`` and ``group_csv`` are given, neither they nor a threshold are,
            the threshold is outside 0..63, or the regex is invalid (checked here, before any scan).
    """
    if group_regex is not None and group_csv is not None:
        raise ConfigError(f"Expected either {names.group_regex} or {names.group_csv}, but got both. Keep one of them.")
    if threshold is None and group_regex is None and group_csv is None:
        raise ConfigError(f"Expected {names.threshold}, {names.group_regex} or {names.group_csv}, but got none; "
                          "with none of them every image would be its own group.")
    if threshold is not None and not 0 <= threshold < HASH_BITS:
        raise ConfigError(f"Expected {names.threshold} to be between 0 and {HASH_BITS - 1} bits, but got {threshold}.")
    if group_regex is not None:
        compile_group_regex(group_regex, names)

    def group_samples(scan: FolderScan) -> list[str]:
        paths = [sample.path for sample in scan.samples]
        if group_regex is not None:
            declared = groups_from_regex(paths, group_regex, names)
        elif group_csv is not None:
            declared = groups_from_csv(paths, scan.root, Path(group_csv), group_column=group_column,
                                       path_column=path_column, names=names)
        else:
            declared = [None] * len(paths)
        if threshold is None:
            return name_groups(paths, declared, [], [])
        hashes = hash_images([scan.root / path for path in paths], num_workers=num_workers, progress=progress)
        readable = hashes.readable
        pairs = find_close_pairs(hashes.phashes[readable], threshold)
        return name_groups(paths, declared, readable[pairs.first], readable[pairs.second])

    return group_samples
