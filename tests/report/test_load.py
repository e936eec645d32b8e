import json

import pytest

from heldout.errors import HeldoutError
from heldout.report.load import RunFolderError, load_run

from .run_folder import uniform_spec, write_run


@pytest.fixture
def small_run(tmp_path):
    return write_run(tmp_path / "run", val=uniform_spec(3, 20, 0.8), test=uniform_spec(3, 20, 0.8))


def test_load_run_reads_every_file(small_run):
    run = load_run(small_run)
    assert run.classes == ["class_a", "class_b", "class_c"]
    assert len(run.val) == 60
    assert run.test.probabilities.shape == (60, 3)
    assert run.history is not None
    assert run.history["val/acc"].isna().sum() == 1
    assert run.roots["test_dir"].endswith("missing_test")
    assert run.num_samples("train") == 5000
    assert len(run.skipped) == 1


def test_load_run_error_is_user_error():
    assert issubclass(RunFolderError, HeldoutError)


def test_load_run_missing_folder(tmp_path):
    with pytest.raises(RunFolderError, match="not found or not a folder.*heldout fit"):
        load_run(tmp_path / "absent")


def test_load_run_not_a_run_folder(tmp_path):
    with pytest.raises(RunFolderError, match="is not a run folder: metrics.json not found"):
        load_run(tmp_path)


def test_load_run_without_test_predictions(small_run):
    (small_run / "predictions" / "test.csv").unlink()
    with pytest.raises(
        RunFolderError, match=r"Test predictions .*test.csv not found.*heldout test -c CONFIG"
    ):
        load_run(small_run)


def test_load_run_without_val_predictions(small_run):
    (small_run / "predictions" / "val.csv").unlink()
    with pytest.raises(
        RunFolderError, match=r"Validation predictions .*val.csv not found: run `heldout validate -c CONFIG"
    ):
        load_run(small_run)


def test_load_run_invalid_metrics_json(small_run):
    (small_run / "metrics.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="Invalid JSON in .*metrics.json at line 1"):
        load_run(small_run)


def test_load_run_metrics_not_an_object(small_run):
    (small_run / "metrics.json").write_text("[1, 2]")
    with pytest.raises(RunFolderError, match="contain a JSON object, but got a JSON list"):
        load_run(small_run)


def test_load_run_missing_probability_column(small_run):
    path = small_run / "predictions" / "test.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(",".join(line.split(",")[:-1]) for line in lines) + "\n")
    with pytest.raises(RunFolderError, match=r"lacks columns \['prob_2'\] for 3 classes"):
        load_run(small_run)


def test_load_run_empty_prediction_table(small_run):
    path = small_run / "predictions" / "val.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(RunFolderError, match="has no rows. Rerun `heldout validate -c CONFIG"):
        load_run(small_run)


def test_load_run_class_index_out_of_range(small_run):
    path = small_run / "predictions" / "test.csv"
    header, first, *rest = path.read_text().splitlines()
    cells = first.split(",")
    cells[1] = "7"
    path.write_text("\n".join([header, ",".join(cells), *rest]) + "\n")
    with pytest.raises(RunFolderError, match=r"`target` values from 0 to 7, but the run has 3 classes"):
        load_run(small_run)


def test_load_run_non_numeric_prediction(small_run):
    path = small_run / "predictions" / "test.csv"
    header, first, *rest = path.read_text().splitlines()
    cells = first.split(",")
    cells[2] = "cat"
    path.write_text("\n".join([header, ",".join(cells), *rest]) + "\n")
    with pytest.raises(RunFolderError, match="`prediction` value that is not a class index"):
        load_run(small_run)


def test_load_run_probability_out_of_range(small_run):
    path = small_run / "predictions" / "val.csv"
    header, first, *rest = path.read_text().splitlines()
    cells = first.split(",")
    cells[3] = "1.7"
    path.write_text("\n".join([header, ",".join(cells), *rest]) + "\n")
    with pytest.raises(RunFolderError, match=r"probabilities that are not numbers in \[0, 1\]"):
        load_run(small_run)


def test_load_run_class_names_from_manifest(small_run):
    metrics = json.loads((small_run / "metrics.json").read_text())
    del metrics["classes"]
    (small_run / "metrics.json").write_text(json.dumps(metrics))
    assert load_run(small_run).classes == ["class_a", "class_b", "class_c"]


def test_load_run_class_names_from_columns(small_run):
    metrics = json.loads((small_run / "metrics.json").read_text())
    del metrics["classes"]
    (small_run / "metrics.json").write_text(json.dumps(metrics))
    (small_run / "manifest.json").unlink()
    run = load_run(small_run)
    assert run.classes == ["class_0", "class_1", "class_2"]
    assert any("classes are shown by index" in note for note in run.notes)


def test_load_run_optional_files_absent(small_run):
    for name in ("history.csv", "manifest.csv", "manifest.json", "skipped.csv"):
        (small_run / name).unlink()
    run = load_run(small_run)
    assert run.history is None
    assert run.manifest is None
    assert run.roots == {}
    assert run.skipped is None
    assert run.audit is None


def test_load_run_unreadable_audit_becomes_note(small_run):
    (small_run / "audit").mkdir()
    (small_run / "audit" / "audit.json").write_text("{broken")
    run = load_run(small_run)
    assert run.audit is None
    assert any("audit/audit.json could not be read" in note for note in run.notes)
