# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``solve``, ``background`` and ``quality`` on many frames, in real subprocesses: every frame
processed, a bad one reported by name and exit 1 at the end, output folders created, inputs
never changed, up-to-date products kept on a rerun, results checked against the simulation's truth.
"""

import hashlib

import numpy as np
import pytest

from astrophot import read_frame, write_frame

from ..analysis._truthcal import calibrate_from_truth
from ..astrometry._fields import ROTATION, grid_error
from .test_batch import astrophot


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _corrupt(folder, name):
    path = folder / name
    path.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    return path


@pytest.fixture(scope="module")
def fields(tmp_path_factory):
    """Two calibrated lights of the Cygnus Loop (9 arcsec/px, real Tycho-2 stars) and their truths.

    Calibrated, not raw: solve_astrometry refuses a RawFrame (issue 10, defect 3).
    """
    from astrophot.datasets import make_raw_frame
    from astrophot.reduction import calibrate_frame

    folder = tmp_path_factory.mktemp("fields")
    out = []
    for seed in (3, 4):
        frame, truth = make_raw_frame(
            target="Cygnus Loop",
            shape=(400, 600),
            scale=9.0,
            rotation=ROTATION,
            synthetic_density=300.0,
            seed=seed,
        )
        frame = calibrate_frame(frame, unit="adu", gain=1.0, read_noise=8.0)
        name = f"cal-T20-jdoe-Cygnus_Loop-20211005-04000{seed}-Red-BIN1-E-300-001.fits"
        out.append((write_frame(frame, folder / name), truth[0]))
    return out


def test_solve_many_frames_into_a_new_folder_one_bad(fields, tmp_path):
    paths = [p for p, _ in fields]
    bad = _corrupt(tmp_path, "raw-broken.fit")
    before = {p: _digest(p) for p in [*paths, bad]}
    out = tmp_path / "solved" / "night"  # does not exist: created
    # the engine's package "not installed" (a stand-in that fails to import): said once per run
    stub = tmp_path / "stub" / "astrometry"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('not installed (test stand-in)')\n")
    args = ["--scale", "9", "--backend", "engine", "--backend", "matcher", "--catalog", "demo", "-o", out]
    proc = astrophot("solve", paths[0], bad, paths[1], *args, path_first=stub.parent)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("engine unavailable") == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("astrophot solve: error:")]
    assert len(errors) == 1 and "raw-broken.fit" in errors[0], proc.stderr
    assert "1 of 3 frames failed" in proc.stderr
    for path, truth in fields:
        solved = out / path.name.replace("cal-", "nav-")
        assert grid_error(read_frame(solved).wcs, truth.wcs, (400, 600)) < 0.1
        assert path.name in proc.stdout  # one result line per frame, naming it
    assert {p: _digest(p) for p in before} == before
    # a rerun keeps both products (up to date) and still reports the bad frame
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("nav-*.fits")}
    again = astrophot("solve", *paths, bad, *args)
    assert again.returncode == 1
    assert again.stderr.count("up to date, kept") == 2, again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("nav-*.fits")} == stamps


def test_solve_refuses_an_input_as_output_and_a_frame_of_another_kind(fields, tmp_path):
    path = fields[0][0]
    before = _digest(path)
    proc = astrophot("solve", path, "-o", path, "--overwrite", "--backend", "matcher", "--catalog", "demo")
    assert proc.returncode == 1 and "is an input" in proc.stderr
    assert _digest(path) == before
    other = tmp_path / "other.fits"
    other.write_bytes(path.read_bytes())  # a calibrated frame, not a solved one
    proc = astrophot("solve", path, "-o", other, "--overwrite", "--backend", "matcher", "--catalog", "demo")
    assert proc.returncode == 1 and "refusing to replace it with a SolvedFrame" in proc.stderr
    assert _digest(other) == before


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """Three calibrated frames of known sky level (e-), written by the truth's calibration."""
    from astrophot.datasets import make_raw_frame

    folder = tmp_path_factory.mktemp("calibrated")
    out = []
    for seed in (2, 3, 4):
        raw, truth = make_raw_frame(shape=(200, 300), fwhm=2.5, seed=seed)
        out.append((write_frame(calibrate_from_truth(raw, truth), folder / f"cal-{seed}.fits"), truth))
    return out


def test_background_many_frames_with_rms_and_subtracted(calibrated, tmp_path):
    paths = [p for p, _ in calibrated]
    before = {p: _digest(p) for p in paths}
    out = tmp_path / "sky"
    proc = astrophot("background", *paths, "-o", out, "--rms", "--subtracted", "--box-size", "32")
    assert proc.returncode == 0, proc.stderr
    for path, truth in calibrated:
        background = read_frame(out / f"bkg-{path.name}")
        assert np.median(background.data) == pytest.approx(truth.sky_level, rel=0.02)
        rms = read_frame(out / f"bkgrms-{path.name}")
        assert np.median(rms.data) == pytest.approx(np.sqrt(truth.sky_level + 100), rel=0.06)
        subtracted = read_frame(out / f"bkgsub-{path.name}")
        np.testing.assert_allclose(subtracted.data, read_frame(path).data - background.data, atol=1e-3)
        assert path.name in proc.stderr  # the log line names the frame
    assert {p: _digest(p) for p in paths} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries, no locks left
    again = astrophot("background", *paths, "-o", out, "--rms", "--subtracted", "--box-size", "32")
    assert again.returncode == 0 and again.stderr.count("up to date, kept") == 9, again.stderr
    # a file name for --rms goes with one frame only: said in the command line's words
    proc = astrophot("background", *paths, "--rms", tmp_path / "rms.fits")
    assert proc.returncode == 1 and "--rms FILE needs one frame" in proc.stderr
    # beside each frame by default
    proc = astrophot("background", paths[0])
    assert proc.returncode == 0, proc.stderr
    assert (paths[0].parent / f"bkg-{paths[0].name}").exists()


def test_quality_with_a_bad_frame_grades_the_others_and_exits_1(calibrated, tmp_path):
    paths = [p for p, _ in calibrated]
    bad = _corrupt(tmp_path, "cal-broken.fits")
    out = tmp_path / "report"
    proc = astrophot("quality", paths[0], bad, *paths[1:], "-o", out)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "cal-broken.fits" in errors[0], proc.stderr
    rows = (out / "quality.csv").read_text().splitlines()
    assert len(rows) == 1 + len(paths)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the one writer left no temporaries
    assert all(p.name in proc.stdout for p in paths)
    # a report already there is refused at once, before any frame is measured
    proc = astrophot("quality", *paths, "-o", out)
    assert proc.returncode == 1 and "use --overwrite" in proc.stderr
    assert "FWHM" not in proc.stderr


def test_issue_11_finding_13_unsolvable_and_fully_masked_frames(fields, calibrated, tmp_path):
    """Finding 13 as reported: 'solve unsolvable good' wrote nothing; 'quality DIR' with one fully
    masked frame wrote no report at all."""
    (good, truth), _ = fields
    noise = tmp_path / "cal-T20-jdoe-Cygnus_Loop-20211005-040009-Red-BIN1-E-300-001.fits"
    frame = read_frame(good)
    frame.data = np.random.default_rng(5).normal(1000, 10, frame.data.shape).astype(np.float32)  # no stars
    write_frame(frame, noise)
    args = [
        "--scale",
        "9",
        "--backend",
        "matcher",
        "--catalog",
        "demo",
        "--time-limit",
        "20",
        "-o",
        tmp_path / "s",
    ]
    proc = astrophot("solve", noise, good, *args)
    assert proc.returncode == 1 and noise.name in proc.stderr, proc.stderr
    solved = tmp_path / "s" / good.name.replace("cal-", "nav-")
    assert grid_error(read_frame(solved).wcs, truth.wcs, (400, 600)) < 0.1  # the good one still solved
    paths = [p for p, _ in calibrated]
    masked = read_frame(paths[0])
    masked.mask = np.ones(masked.data.shape, bool)
    folder = tmp_path / "night"
    folder.mkdir()
    for p in paths[1:]:
        write_frame(read_frame(p), folder / p.name)
    write_frame(masked, folder / "cal-masked.fits")
    proc = astrophot("quality", folder, "-o", tmp_path / "report")
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "cal-masked.fits: no unmasked pixels" in errors[0], proc.stderr
    rows = (tmp_path / "report" / "quality.csv").read_text().splitlines()
    assert len(rows) == 1 + len(paths) - 1  # the others graded, the report written
    assert (tmp_path / "report" / "quality.html").is_file()


def test_results_are_said_once_by_solve_quality_and_cosmic_rays(fields, calibrated, tmp_path):
    (path, _), _ = fields
    args = ["--scale", "9", "--backend", "matcher", "--catalog", "demo", "-o", tmp_path / "solved"]
    proc = astrophot("solve", path, *args)
    assert proc.returncode == 0, proc.stderr
    assert "centre" in proc.stdout and "centre" not in proc.stderr, proc.stderr  # stdout says it
    frames = [p for p, _ in calibrated]
    proc = astrophot("quality", *frames, "-o", tmp_path / "report")
    assert proc.returncode == 0, proc.stderr
    info = "\n".join(line for line in proc.stderr.splitlines() if " INFO " in line)
    assert "fwhm=" in proc.stdout and "FWHM" not in info, proc.stderr
    assert "report:" in proc.stdout and "quality.html" not in info, proc.stderr
    assert proc.stderr.count("measured (") == len(frames)  # progress, one line a frame
    proc = astrophot("cosmic-rays", frames[0], "-o", tmp_path / "clean")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "cosmic-ray pixels" in line]
    assert len(lines) == 1 and frames[0].name in lines[0] and "objlim" in lines[0], proc.stderr
