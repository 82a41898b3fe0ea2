# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot prepare DIR [--dry-run]``."""

import zipfile

import pytest

from astrophot.cli.main import build_parser, main

RAW = "raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-300-001.fit"


@pytest.fixture
def download(tmp_path):
    night = tmp_path / "my night"
    night.mkdir()
    with zipfile.ZipFile(night / "lights.zip", "w") as zf:
        zf.writestr(RAW, b"light")
    return tmp_path


def test_prepare_is_registered():
    args = build_parser().parse_args(["prepare", "somewhere", "--dry-run"])
    assert args.command == "prepare" and args.directory == "somewhere" and args.dry_run


def test_prepare_dry_run_then_real(download, capsys):
    assert main(["prepare", "--dry-run", str(download)]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "my night -> my_night" in out and RAW in out
    assert (download / "my night").is_dir() and not (download / "my_night").exists()

    assert main(["prepare", str(download)]) == 0
    out = capsys.readouterr().out
    assert "renamed: 1" in out and "extracted: 1 from 1 archive(s)" in out
    assert (download / "my_night" / RAW).read_bytes() == b"light"

    assert main(["prepare", str(download)]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_prepare_reports_a_corrupt_archive_with_exit_code_1(tmp_path, capsys):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["prepare", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "errors: 1" in out and "broken.zip: not a readable zip archive" in out


def test_prepare_missing_directory_is_one_line_on_stderr(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such directory" in err and "Traceback" not in err


def test_prepare_limits_from_the_command_line(tmp_path, capsys):
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.fit", b"\0" * (8 * 2**20))
    assert main(["prepare", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bomb.zip: entry 'zeros.fit' expands" in out and "decompression bomb" in out
    assert main(["prepare", "--max-size", "0.001", "--max-ratio", "1e6", str(tmp_path)]) == 1
    assert "max_size=1073741 bytes" in capsys.readouterr().out
    assert main(["prepare", "--max-ratio", "1e6", str(tmp_path)]) == 0
    assert (tmp_path / "zeros.fit").stat().st_size == 8 * 2**20
