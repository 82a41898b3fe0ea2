# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot simulate``."""

import astropy.units as u

from astrophot import read_frame
from astrophot.cli import main as cli
from astrophot.datasets import load_night


def test_simulate_writes_a_night_and_its_truth(tmp_path, capsys):
    out = tmp_path / "night"
    argv = [
        "simulate",
        str(out),
        "--shape",
        "60",
        "80",
        "--n-lights",
        "2",
        "--filters",
        "OIII",
        "--n-bias",
        "2",
        "--n-darks",
        "2",
        "--n-flats",
        "1",
        "--seed",
        "4",
        "--exposure",
        "120",
        "--bad-frames",
        "clouded",
        "--dark-bias-subtracted",
    ]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 lights 80x60" in printed and "(bad: clouded)" in printed
    night = load_night(out)
    assert [night.truth_for(p).bad_reason for p in night.lights] == [None, "clouded"]
    frame = read_frame(night.lights[0])
    assert frame.exposure_time == 120 * u.s and frame.filter == "OIII"
    assert read_frame(night.masters["dark"]).bias_subtracted is True
    assert night.detector.seed == 4


def test_simulate_refuses_to_overwrite_and_reports_one_line(tmp_path, capsys):
    argv = ["simulate", str(tmp_path), "--shape", "30", "40", "--n-lights", "1", "--filters", "Red"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already there" in err[0]
    assert cli.main(["simulate", str(tmp_path / "t05"), "--telescope", "T05", "--shape", "30", "40"]) == 1
    assert "plate scale unknown" in capsys.readouterr().err
