# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The analysis subcommands and their seed aliases."""

import numpy as np
import pytest
from astropy.table import QTable

from astrophot import read_frame, write_frame
from astrophot.cli.main import main

from ._truthcal import calibrate_from_truth


@pytest.fixture(scope="module")
def frame_path(tmp_path_factory):
    from astrophot.datasets import make_raw_frame

    raw, truth = make_raw_frame(shape=(200, 300), fwhm=2.5, seed=2)
    path = tmp_path_factory.mktemp("cli") / "cal.fits"
    write_frame(calibrate_from_truth(raw, truth), path)
    return path, truth


def test_find_stars(tmp_path, frame_path, capsys):
    path, truth = frame_path
    out = tmp_path / "stars.ecsv"
    reg = tmp_path / "stars.reg"
    assert main(["find-stars", str(path), str(out), "--ds9", str(reg), "-m", "40"]) == 0
    stars = QTable.read(out)
    assert len(stars) == 40
    assert stars.meta["source_file"] == str(path)
    assert stars.meta["psf"]["fwhm"] == pytest.approx(truth.psf.fwhm, rel=0.05)
    assert reg.read_text().count("circle(") == 40
    # refuses to overwrite, one line on stderr
    capsys.readouterr()
    assert main(["find-stars", str(path), str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists" in err[0]
    assert main(["find-stars", str(path), str(out), "--overwrite", "--format", "ecsv"]) == 0


def test_find_stars_default_name_and_fits(tmp_path, frame_path):
    path, _ = frame_path
    local = tmp_path / "frame.fits"
    write_frame(read_frame(path), local)
    assert main(["find-stars", str(local)]) == 0
    assert (tmp_path / "frame.stars.ecsv").exists()
    fits_out = tmp_path / "stars.fits"
    assert main(["find-stars", str(local), str(fits_out)]) == 0
    assert len(QTable.read(fits_out)) > 20


def test_background(tmp_path, frame_path):
    path, truth = frame_path
    bkg, rms, sub = tmp_path / "bkg.fits", tmp_path / "rms.fits", tmp_path / "sub.fits"
    code = main(
        ["background", str(path), str(bkg), "--rms", str(rms), "--subtracted", str(sub), "--box-size", "32"]
    )
    assert code == 0
    background = read_frame(bkg)
    assert background.frame_type == "CalibratedFrame"
    assert np.median(background.data) == pytest.approx(truth.sky_level, rel=0.02)
    assert np.median(read_frame(rms).data) == pytest.approx(np.sqrt(truth.sky_level + 100), rel=0.06)
    subtracted = read_frame(sub)
    np.testing.assert_allclose(subtracted.data, read_frame(path).data - background.data, atol=1e-3)
    functions = [s.function for s in subtracted.provenance.steps]
    assert functions[-1] == "astrophot.subtract_background"


def test_imarith(tmp_path, frame_path):
    path, _ = frame_path
    frame = read_frame(path)
    diff = tmp_path / "diff.fits"
    assert main(["imarith", str(path), "-", str(path), str(diff)]) == 0
    result = read_frame(diff)
    assert np.all(result.data == 0)
    np.testing.assert_allclose(result.uncertainty.array, np.sqrt(2) * frame.uncertainty.array, rtol=1e-6)
    rate = tmp_path / "rate.fits"
    assert main(["imarith", str(path), "DIV", "300 s", str(rate)]) == 0
    assert str(read_frame(rate).unit) == "electron / s"
    with pytest.raises(SystemExit) as exit_info:
        from astrophot.cli.main import ap_imarith

        ap_imarith([str(path), "mul", "2", str(tmp_path / "twice.fits")])
    assert exit_info.value.code == 0
    assert main(["imarith", str(path), "pow", "2", str(tmp_path / "x.fits")]) == 1
    assert main(["imarith", str(path), "+", "2 furlongs", str(tmp_path / "y.fits")]) == 1
    assert main(["imarith", str(path), "+", "2", str(path)]) == 1  # never over an input


def test_quality(tmp_path, frame_path, capsys):
    path, _ = frame_path
    folder = tmp_path / "frames"
    folder.mkdir()
    frame = read_frame(path)
    for i in range(3):
        write_frame(frame, folder / f"f{i}.fits")
    outdir = tmp_path / "report"
    assert main(["quality", str(folder), "-o", str(outdir), "--max-fwhm", "100"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("ok ") == 3 and "report:" in printed
    assert (outdir / "quality.html").exists() and (outdir / "quality.csv").exists()
    assert main(["quality", str(folder), "-o", str(outdir), "--max-fwhm", "1"]) == 1  # exists
    assert main(["quality", str(folder), "-o", str(outdir), "--max-fwhm", "1", "--overwrite"]) == 0
    assert capsys.readouterr().out.count("REJECTED") == 3
    assert main(["quality", str(tmp_path / "missing"), "-o", str(outdir)]) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["quality", str(empty), "-o", str(outdir)]) == 1
