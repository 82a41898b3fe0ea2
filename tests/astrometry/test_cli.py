# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot solve`` and its seed name ``ap_astrometry``."""

import re

import numpy as np
import pytest
from astropy.table import QTable

from astrophot.cli.main import main
from astrophot.frames import SolvedFrame
from astrophot.io import read_frame, write_frame

from ._fields import grid_error, simulated_field


@pytest.fixture
def light(tmp_path):
    frame, truth, stars = simulated_field("1.5deg")
    path = write_frame(frame, tmp_path / "raw-T20-jdoe-Cygnus_Loop-20211005-040000-Red-BIN1-E-300-001.fit")
    return path, truth, stars


def test_solve_writes_a_solved_frame(light, capsys):
    path, truth, _ = light
    assert main(["solve", str(path), "--scale", "9", "--backend", "matcher", "--catalog", "demo"]) == 0
    out = path.with_name("nav-T20-jdoe-Cygnus_Loop-20211005-040000-Red-BIN1-E-300-001.fits")
    solved = read_frame(out)
    assert isinstance(solved, SolvedFrame)
    assert grid_error(solved.wcs, truth.wcs, solved.data.shape) < 0.1
    assert {"ra", "dec"} <= set(solved.stars.colnames)
    assert solved.provenance.steps[-1].function == "astrophot.solve_astrometry"
    printed = capsys.readouterr().out
    assert "matcher" in printed
    # the printed scale is the fitted one: the truth is 9"/px
    scale = float(re.search(r"([0-9.]+) arcsec/pix", printed).group(1))
    assert abs(scale - 9.0) < 1e-3
    # a rerun keeps the up-to-date product; solved another way it is not replaced without --overwrite
    stamp = out.stat().st_mtime_ns
    assert main(["solve", str(path), "--scale", "9", "--backend", "matcher", "--catalog", "demo"]) == 0
    assert "up to date" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == stamp
    assert main(["solve", str(path), "--scale", "9.01", "--backend", "matcher", "--catalog", "demo"]) == 1
    err = capsys.readouterr().err
    assert "exists, not up to date" in err and "'scale'" in err and "--overwrite" in err
    assert out.stat().st_mtime_ns == stamp


def test_star_table_with_fits_convention_columns(light, tmp_path):
    path, truth, stars = light
    # an .xyls / AP_XYPOS-style table: upper-case X, Y are 1-based
    table = QTable({"X": stars["x"].value + 1.0, "Y": stars["y"].value + 1.0, "flux": stars["flux"].value})
    table.write(tmp_path / "stars.fits")
    out = tmp_path / "solved.fits"
    args = ["solve", str(path), "-o", str(out), "--stars", str(tmp_path / "stars.fits"), "--scale", "9"]
    assert main([*args, "--backend", "matcher", "--catalog", "demo", "--ra", "312.75", "--dec", "30.67"]) == 0
    solved = read_frame(out)
    assert grid_error(solved.wcs, truth.wcs, solved.data.shape) < 0.1
    assert solved.solution["hint"]["sources"]["center"] == "argument"


def test_failure_is_one_line_and_exit_1(light, tmp_path, capsys):
    path, _, _ = light
    rng = np.random.default_rng(2)
    QTable({"x": rng.uniform(0, 599, 80), "y": rng.uniform(0, 399, 80), "flux": rng.uniform(1, 2, 80)}).write(
        tmp_path / "random.ecsv"
    )
    code = main(
        ["solve", str(path), "-o", str(tmp_path / "x.fits"), "--stars", str(tmp_path / "random.ecsv"),
         "--scale", "9", "--backend", "matcher", "--catalog", "demo", "--time-limit", "10"]
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("astrophot solve: error:") and "tried: matcher" in err[0]
    assert not (tmp_path / "x.fits").exists()


def test_seed_alias(light, tmp_path):
    from astrophot.cli.main import ap_astrometry

    path, truth, _ = light
    out = tmp_path / "nav.fits"
    with pytest.raises(SystemExit) as info:
        ap_astrometry(
            [str(path), "-o", str(out), "--user_scale", "9", "--backend", "matcher", "--catalog", "demo"]
        )
    assert info.value.code == 0
    assert grid_error(read_frame(out).wcs, truth.wcs, (400, 600)) < 0.1
