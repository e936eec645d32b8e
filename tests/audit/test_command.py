from heldout.audit.command import main
from tests.cli_helpers import run_in_process

from .images import smooth_image, write_image


def test_command_writes_findings(tmp_path, capsys):
    for seed in range(3):
        write_image(tmp_path / "data" / "a" / f"{seed}.png", smooth_image(seed))
        write_image(tmp_path / "data" / "b" / f"{seed}.png", smooth_image(50 + seed))
    assert main([str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--workers", "1"]) == 0
    assert "Audited 6 images" in capsys.readouterr().out
    assert (tmp_path / "out" / "audit.json").is_file()


def test_command_missing_folder_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("heldout: error: Data folder not found")
    assert "\n" not in error


def test_command_bad_csv_column(tmp_path, capsys):
    write_image(tmp_path / "data" / "a" / "0.png", smooth_image(0))
    (tmp_path / "groups.csv").write_text("file,group\na/0.png,g\n")
    status = main([str(tmp_path / "data"), "--group-csv", str(tmp_path / "groups.csv")])
    assert status == 2
    assert "has no column 'path'" in capsys.readouterr().err


def test_heldout_audit_error_prefix(tmp_path, capsys):
    assert run_in_process("audit", str(tmp_path / "missing")) == 2
    error = capsys.readouterr().err
    assert error.startswith("heldout: error: Data folder not found")
    assert error.count("\n") == 1


def test_heldout_audit_usage_error_one_line(tmp_path, capsys):
    assert run_in_process("audit", str(tmp_path), "--threshold", "x") == 2
    error = capsys.readouterr().err
    assert error == ("heldout: error: argument --threshold: invalid int value: 'x'. Run "
                     "'heldout audit --help' for the options.\n")
