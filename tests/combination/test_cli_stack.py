# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot stack``: solved frames in, one stack (or one per filter) out."""

import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from astrophot import StackedFrame, read_frame, stack_frames, write_frame
from astrophot.cli.main import main
from astrophot.datasets import make_dithered_frames


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Four Luminance and three Ha dithered frames on disk."""
    root = tmp_path_factory.mktemp("stack-cli")
    paths = {}
    for name, n, seed in (("Luminance", 4, 1), ("Ha", 3, 2)):
        frames, _ = make_dithered_frames(n, shape=(50, 60), filter_name=name, seed=seed)
        for i, frame in enumerate(frames):
            path = root / f"{name}_{i}.fits"
            write_frame(frame, path)
            paths.setdefault(name, []).append(str(path))
    return root, paths


def test_stack_subprocess_matches_the_library(files):
    root, paths = files
    out = root / "lum.fits"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-m", "astrophot.cli.main", "stack", *paths["Luminance"], "-o", str(out),
         "--rejection", "percentile", "--weights", "exptime"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "[4/4] read" in proc.stderr  # progress lines
    assert "100% of 50 rows combined" in proc.stderr
    with fits.open(out) as hdul:
        assert hdul[0].header["NCOMBINE"] == 4 and hdul[0].header["EXPTIME"] == 240.0
        assert {"COVERAGE", "EXPOSURE", "WEIGHT", "REJLOW", "REJHIGH"} <= {h.name for h in hdul}
    stack = read_frame(out)
    expected = stack_frames(
        [read_frame(p) for p in paths["Luminance"]], rejection="percentile", weights="exptime"
    )
    np.testing.assert_allclose(stack.data, expected.data, rtol=1e-6, equal_nan=True)
    assert stack.provenance.steps[-1].function == "astrophot.stack_frames"


def test_by_filter_and_errors(files, capsys):
    root, paths = files
    every = paths["Luminance"] + paths["Ha"]
    assert main(["stack", *every, "-o", str(root / "night.fits"), "--by-filter", "--rejection", "none"]) == 0
    for name, n in (("Luminance", 4), ("Ha", 3)):
        stack = read_frame(root / f"night-{name}.fits")
        assert isinstance(stack, StackedFrame) and stack.header["NCOMBINE"] == n
    # without --by-filter, the filters are named in one error line
    assert main(["stack", *every, "-o", str(root / "mixed.fits")]) == 1
    err = capsys.readouterr().err
    assert "different filters" in err and "Ha_0.fits" in err and "--by-filter" in err
    assert not (root / "mixed.fits").exists()
    assert main(["stack", *paths["Ha"], "-o", paths["Ha"][0]]) == 1
    assert "is an input" in capsys.readouterr().err
