import subprocess
import sys

import pytest

from heldout.report.command import main
from tests.cli_helpers import run_in_process

from .run_folder import uniform_spec, write_run


@pytest.fixture
def small_run(tmp_path):
    return write_run(tmp_path / "run", val=uniform_spec(3, 20, 0.8), test=uniform_spec(3, 20, 0.8))


def test_command_writes_report(small_run, capsys):
    assert main([str(small_run), "--bootstrap_resamples", "50", "--gallery_size", "0"]) == 0
    assert capsys.readouterr().out.strip() == f"Wrote {small_run / 'report.md'}"
    assert (small_run / "report.json").is_file()


def test_command_passes_settings(small_run):
    main([str(small_run), "--min_val_images", "1000", "--bootstrap_resamples", "50", "--gallery_size", "0"])
    assert "Too few validation images" in (small_run / "report.md").read_text()


def test_command_not_a_run_folder(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith(f"heldout: error: {tmp_path} is not a run folder: metrics.json not found.")
    assert "heldout fit -c CONFIG" in error
    assert "Traceback" not in error


def test_command_without_test_predictions(small_run, capsys):
    (small_run / "predictions" / "test.csv").unlink()
    assert main([str(small_run)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "test.csv not found: run `heldout test -c CONFIG --ckpt_path best`" in error


def test_command_invalid_setting(small_run, capsys):
    assert main([str(small_run), "--confidence_level", "1.5"]) == 2
    assert "Expected `report.confidence_level` to be between 0 and 1" in capsys.readouterr().err


def test_command_help_describes_settings(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--ece_limit FLOAT Expected calibration error on the test split above which" in help_text


def test_command_runs_as_module(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "heldout.report.command", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("heldout: error: ")
    assert "Traceback" not in result.stderr


def test_heldout_report_error_prefix(tmp_path, capsys):
    assert run_in_process("report", str(tmp_path)) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"heldout: error: {tmp_path} is not a run folder")
    assert error.count("\n") == 1


def test_heldout_report_usage_error_one_line(capsys):
    assert run_in_process("report") == 2
    error = capsys.readouterr().err
    assert error == ("heldout: error: the following arguments are required: RUN_DIR. Run "
                     "'heldout report --help' for the options.\n")
