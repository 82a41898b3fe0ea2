# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The demo runs the night runner on a simulated three-filter night and agrees with its truth."""

from pathlib import Path

import numpy as np
import pytest

from astrophot import read_frame
from astrophot.cli.main import main
from astrophot.pipeline import run_demo

SHAPE = (300, 400)


@pytest.mark.slow
def test_demo_runs_the_night_and_matches_truth(tmp_path):
    demo = run_demo(tmp_path / "demo", shape=SHAPE, n_lights=3)
    night = demo.night
    assert night.filters == ("Ha", "Red", "V")
    assert demo.night.root == demo.outdir / "night" and demo.run.output == demo.outdir / "products"
    assert len(demo.calibrated) == len(demo.solved) == len(night.lights) == 9
    assert set(demo.masters) == {"bias", "dark", "flat Ha", "flat Red", "flat V"}
    for path in demo.calibrated:
        assert Path(path).exists() and Path(path).with_suffix(".asdf").exists()

    # the deliberately defocused frame, and only it, is rejected
    rejected = {Path(f["file"]).name for f in demo.run.frames if f.get("accepted") is False}
    assert rejected == {p.name for p in night.bad_lights} and len(rejected) == 1

    # a good frame's solution agrees with its true WCS
    frame = next(f for f in demo.run.frames if f.get("accepted"))
    solved = read_frame(frame["products"]["solved"])
    truth = night.truth_for(Path(frame["file"]).name)
    ny, nx = solved.data.shape
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
    x, y = solved.wcs.world_to_pixel(truth.wcs.pixel_to_world(gx, gy))
    assert np.max(np.hypot(x - gx, y - gy)) < 0.5

    # a stack per filter, the line image and the colour picture, each checked against the truth
    assert sorted(demo.stacks) == ["Ha", "Red", "V"]
    assert demo.line.name == "line-M31-Ha.fits" and demo.line.exists()
    assert sorted(p.suffix for p in demo.color) == [".png", ".tiff"]
    checks = {check.name: check for check in demo.checks}
    assert sorted(checks) == sorted(
        [
            "read noise",
            "masters",
            "quality",
            "astrometry",
            "stack Ha",
            "stack Red",
            "stack V",
            "continuum scale",
            "line image",
            "colour balance",
        ]
    )
    assert all(check.ok for check in demo.checks), demo.summary()
    assert checks["read noise"].truth == pytest.approx(
        float(getattr(night.detector.read_noise_adu, "value", night.detector.read_noise_adu))
    )
    assert checks["read noise"].measured == pytest.approx(checks["read noise"].truth, rel=0.05)
    assert checks["quality"].measured == rejected
    for filt in night.filters:
        assert checks[f"stack {filt}"].measured["offset"] < 0.5
        assert checks[f"stack {filt}"].measured["flux_ratio"] == pytest.approx(1.0, abs=0.05)
    # the continuum scale: the Ha/R zero points (3 mag apart) and the stacks' reference transparencies
    k = checks["continuum scale"]
    assert k.measured == pytest.approx(read_frame(demo.line).scale)
    assert 0.9 * 10**-1.2 < k.truth <= 1.1 * 10**-1.2
    assert k.measured == pytest.approx(k.truth, rel=0.03)
    assert checks["line image"].truth == 0 and checks["line image"].measured < 0.05
    # grey stars: R and V balance alike, Ha about 10**1.2 times more
    balance = checks["colour balance"]
    assert balance.measured == pytest.approx(balance.truth, rel=0.05)
    assert balance.truth[0] == pytest.approx(1 / k.truth)

    # the summary says where the night report is
    assert demo.report == demo.outdir / "products" / "report" / "night.html" and demo.report.exists()
    summary = demo.summary()
    assert summary.splitlines()[-1] == f"night report: {demo.report}"
    assert "[OFF]" not in summary and "continuum scale k" in summary

    # a check compares: the Ha stack measured against the R stack's truth is off (1/16 of the flux)
    from astrophot.pipeline._demo_checks import _references, _stack

    references = _references(night, demo.run)
    check = _stack(night, "Ha", demo.stacks["Ha"], references["Red"])
    assert not check.ok and check.measured["flux_ratio"] < 0.1 and str(check).startswith("[OFF]")


def test_demo_cli_without_solving(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "d"), "--shape", "160", "240", "--n-lights", "3", "--no-solve"]) == 0
    out = capsys.readouterr().out
    assert "calibrated frames: 9" in out and "solved frames:     0" in out
    assert "[ok] read noise" in out and "[ok] quality: rejected" in out
    assert "stack: skipped" in out  # nothing on the sky to stack
    assert (
        out.rstrip().splitlines()[-1]
        == f"night report: {tmp_path / 'd' / 'products' / 'report' / 'night.html'}"
    )


def test_demo_cli_exits_1_when_a_check_is_off(tmp_path, monkeypatch, capsys):
    from astrophot.pipeline import demo as demo_module
    from astrophot.pipeline.demo import DemoCheck, DemoResult

    def fake(outdir, **options):
        check = DemoCheck("read noise", 9.0, 8.57, False, "read noise 9.00 ADU vs truth 8.57 ADU")
        return DemoResult(outdir=Path(outdir), checks=[check])

    monkeypatch.setattr(demo_module, "run_demo", fake)
    assert main(["demo", str(tmp_path / "d")]) == 1
    assert "[OFF] read noise 9.00 ADU vs truth 8.57 ADU" in capsys.readouterr().out
