import json

import numpy as np
import pytest

from heldout.audit import make_group_function, run_audit
from heldout.audit.audit import AUDIT_FILE, PAIRS_FIGURE
from heldout.data.scan import scan_image_folder
from heldout.errors import ConfigError

from .images import smooth_image, write_image


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "data"
    for seed in range(6):
        write_image(root / "cat" / f"c{seed}.png", smooth_image(seed))
        write_image(root / "dog" / f"d{seed}.png", smooth_image(100 + seed))
    write_image(root / "cat" / "copy_of_c0.bmp", smooth_image(0))
    write_image(root / "dog" / "c1_brighter.png", np.clip(smooth_image(1).astype(int) + 20, 0, 255).astype(np.uint8))
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG truncated")
    return root


def test_run_audit_findings(folder, tmp_path):
    scan = scan_image_folder(folder)
    splits = ["val" if sample.path in {"cat/copy_of_c0.bmp", "dog/d0.png"} else "train" for sample in scan.samples]
    report = run_audit(scan, splits=splits, out_dir=tmp_path / "out", num_workers=1, progress=False)

    assert report.unreadable == [{"path": "dog/broken.png", "reason": report.unreadable[0]["reason"]}]
    assert report.exact_duplicate_sets == [["cat/c0.png", "cat/copy_of_c0.bmp"]]
    cross = {(pair["a"], pair["b"]) for pair in report.cross_split_pairs}
    assert cross == {("cat/c0.png", "cat/copy_of_c0.bmp")}
    conflicts = {(pair["a"], pair["b"]) for pair in report.label_conflicts}
    assert conflicts == {("cat/c1.png", "dog/c1_brighter.png")}
    assert report.counts["near_duplicate_pairs"] == 2
    assert report.balance is not None
    assert report.balance.counts["val"] == {"cat": 1, "dog": 1}

    written = json.loads((tmp_path / "out" / AUDIT_FILE).read_text())
    assert written["counts"]["label_conflicts"] == 1
    assert (tmp_path / "out" / PAIRS_FIGURE).stat().st_size > 0


def test_make_group_function_near_duplicates(folder):
    scan = scan_image_folder(folder)
    groups = make_group_function(num_workers=1, progress=False)(scan)
    by_path = dict(zip((sample.path for sample in scan.samples), groups, strict=True))
    assert by_path["cat/c0.png"] == by_path["cat/copy_of_c0.bmp"]
    assert by_path["cat/c1.png"] == by_path["dog/c1_brighter.png"]
    assert by_path["cat/c2.png"] != by_path["cat/c3.png"]
    assert len(set(groups)) == len(scan.samples) - 2


def test_make_group_function_regex_merges_near_duplicates(folder):
    scan = scan_image_folder(folder)
    groups = make_group_function(group_regex=r"^(?P<group>\w+)/", num_workers=1, progress=False)(scan)
    # c1.png (cat) and its brighter copy (dog) join the two class groups into one.
    assert len(set(groups)) == 1


def test_make_group_function_rejects_bad_regex_early():
    with pytest.raises(ConfigError, match="no named capture 'group'"):
        make_group_function(group_regex=r"(\w+)/")
