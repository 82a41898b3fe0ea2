# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot info``: a text header reader that agrees with astropy, and files named for what they are."""

import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from astrophot.cli.info import _headers


def _info(*paths):
    return subprocess.run(
        [sys.executable, "-m", "astrophot.cli.main", "info", *map(str, paths)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )


def test_header_reader_agrees_with_astropy(tmp_path, shared_data):
    files = sorted((shared_data / "panoptes").glob("*.fits")) + sorted((shared_data / "dss").glob("*.fits"))
    if not files:
        pytest.skip("no real FITS files in the shared data")
    for path in files[:6]:
        ours = _headers(path, limit=1)[0]
        header = fits.getheader(path, 0)
        for key in ("BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXPTIME", "DATE-OBS", "BZERO", "CTYPE1"):
            if key in header:
                expected = header[key]
                got = ours[key]
                if isinstance(expected, float):
                    assert got == pytest.approx(expected), (path, key)
                else:
                    assert got == expected, (path, key)


def test_extensions_found_past_the_data(tmp_path):
    path = tmp_path / "multi.fits"
    hdus = [
        fits.PrimaryHDU(np.zeros((7, 9), np.float32)),
        fits.ImageHDU(np.ones((3, 5), np.int16), name="DQ"),
    ]
    hdus[0].header["OBJECT"] = "it's M31"
    fits.HDUList(hdus).writeto(path)
    headers = _headers(path)
    assert [h.get("NAXIS1") for h in headers] == [9, 5]
    assert headers[0]["OBJECT"] == "it's M31"
    assert headers[1]["EXTNAME"] == "DQ"


def test_info_names_what_a_non_frame_file_is(tmp_path):
    table = Table({"x": [1.0, 2.0]})
    table.write(tmp_path / "stars.ecsv")
    table.write(tmp_path / "stars.fits")
    (tmp_path / "notes.fits").write_text("hello")
    proc = _info(tmp_path / "stars.ecsv", tmp_path / "stars.fits", tmp_path / "notes.fits")
    assert "ECSV table" in proc.stdout
    assert "FITS table (2 rows), not a frame" in proc.stdout
    assert "notes.fits: not a FITS file" in proc.stderr
    assert "ignore_missing_simple" not in proc.stderr + proc.stdout
    assert proc.returncode == 1  # the unreadable file is an error; the others were described
