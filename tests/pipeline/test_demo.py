# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The demo runs every stage on a simulated night and agrees with its truth."""

from pathlib import Path

import numpy as np
import pytest

from astrophot import read_frame
from astrophot.cli.main import main
from astrophot.pipeline import run_demo


@pytest.mark.slow
def test_demo_runs_the_pipeline_and_matches_truth(tmp_path):
    result = run_demo(tmp_path / "demo", shape=(300, 400), n_lights=3)
    night = result.night
    assert len(result.calibrated) == len(night.lights) == 6
    assert set(result.masters) == {"bias", "dark", "flat Ha", "flat Red", "bad pixels"}
    for path in [*result.masters.values(), *result.calibrated]:
        assert Path(path).exists() and Path(path).with_suffix(".asdf").exists()

    cal = read_frame(result.calibrated[0])
    functions = [step.function for step in cal.provenance.steps]
    assert functions == [
        "astrophot.calibrate_frame",
        "astrophot.fix_bad_pixels",
        "astrophot.reject_cosmic_rays",
        "astrophot.add_metadata",
    ]
    roles = {a.reference.role for a in cal.provenance.ancestors()}
    assert {"raw", "bias", "dark", "flat", "bad_pixels"} <= roles

    # the deliberately defocused frame, and only it, is rejected
    rejected = {Path(str(row["file"])).name for row in result.quality if not row["accepted"]}
    from astrophot.instruments.itelescope import output_name

    assert rejected == {output_name(p.name, prefix="cal") for p in night.bad_lights}

    # every frame is solved and agrees with the true WCS
    assert len(result.solved) == len(night.lights)
    solved = read_frame(result.solved[0])
    by_output = {output_name(p.name, prefix="cal").replace("cal-", "nav-", 1): p for p in night.lights}
    truth = night.truth_for(by_output[Path(result.solved[0]).name])
    ny, nx = solved.data.shape
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
    x, y = solved.wcs.world_to_pixel(truth.wcs.pixel_to_world(gx, gy))
    assert np.max(np.hypot(x - gx, y - gy)) < 0.5
    assert (tmp_path / "demo" / "quality" / "quality.html").exists()


def test_demo_cli_without_solving(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "d"), "--shape", "200", "300", "--n-lights", "2", "--no-solve"]) == 0
    out = capsys.readouterr().out
    assert "calibrated frames: 4" in out
    assert "read noise" in out
