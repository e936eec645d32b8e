import pytest

from heldout.audit.groups import cluster_pairs, groups_from_csv, groups_from_regex, name_groups
from heldout.errors import ConfigError

PATHS = ["cat/p1_a.png", "cat/p1_b.png", "dog/p2_a.png", "dog/other.png"]


def test_cluster_pairs_joins_chains():
    assert cluster_pairs(5, [0, 3], [1, 1]).tolist() == [0, 0, 1, 0, 2]


def test_regex_groups_and_unmatched():
    assert groups_from_regex(PATHS, r"(?P<group>p\d+)_") == ["p1", "p1", "p2", None]


@pytest.mark.parametrize(("pattern", "message"), [
    (r"(?P<patient>p\d+)", "has no named capture 'group'"),  # capture under another name
    (r"(?P<group>p\d+", "Invalid --group-regex"),  # unbalanced bracket
    (r"(?P<group>zzz)", "matches none of the 4 image paths"),
])
def test_regex_errors(pattern, message):
    with pytest.raises(ConfigError, match=message):
        groups_from_regex(PATHS, pattern)


def test_csv_groups(tmp_path):
    for path in PATHS:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    table = tmp_path / "groups.csv"
    table.write_text("path,subject\ncat/p1_a.png,s1\n./cat/p1_b.png,s1\ndog/p2_a.png,s2\n")
    assert groups_from_csv(PATHS, tmp_path, table, group_column="subject") == ["s1", "s1", "s2", None]


def test_csv_missing_column(tmp_path):
    table = tmp_path / "groups.csv"
    table.write_text("path,subject\ncat/p1_a.png,s1\n")
    with pytest.raises(ConfigError, match="has no column 'group'; its columns are 'path', 'subject'"):
        groups_from_csv(PATHS, tmp_path, table, group_column="group")


def test_csv_path_not_in_folder(tmp_path):
    table = tmp_path / "groups.csv"
    table.write_text("path,group\ncat/missing.png,s1\n")
    with pytest.raises(ConfigError, match="names 1 file\\(s\\) not found under .*'cat/missing.png'"):
        groups_from_csv(PATHS, tmp_path, table, group_column="group")


def test_csv_file_not_found(tmp_path):
    with pytest.raises(ConfigError, match="groups.csv not found"):
        groups_from_csv(PATHS, tmp_path, tmp_path / "groups.csv", group_column="group")


def test_name_groups_merges_and_stays_unique():
    paths = ["a.png", "b.png", "c.png", "d.png", "e.png"]
    names = name_groups(paths, ["s1", None, "s2", None, None], [1, 3], [2, 4])
    assert names[0] == "s1"
    assert names[1] == names[2] == "s2"
    assert names[3] == names[4] == "near-duplicates:d.png"
    assert len(set(names)) == 3
    assert name_groups(paths, [None] * 5, [], []) == [f"image:{path}" for path in paths]
