# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot resample``: files in, resampled frames on one grid out."""

import numpy as np
import pytest

from astrophot import ResampledFrame, SolvedFrame, read_frame, write_frame
from astrophot.cli.main import main
from astrophot.datasets import make_solved_frame


@pytest.fixture
def two_frames(tmp_path):
    paths = []
    for seed, offset in ((1, (0.0, 0.0)), (2, (15.0, 8.0))):
        frame, _ = make_solved_frame(shape=(60, 70), n_stars=4, seed=seed, offset=offset)
        path = tmp_path / f"f{seed}.fits"
        write_frame(frame, path)
        paths.append(str(path))
    return paths


def test_optimal_grid_for_all_frames(two_frames, tmp_path):
    out = tmp_path / "out"
    assert main(["resample", *two_frames, "--optimal", "--kernel", "bilinear", "-o", str(out)]) == 0
    results = [read_frame(out / "f1.fits"), read_frame(out / "f2.fits")]
    assert all(isinstance(r, ResampledFrame) for r in results)
    assert results[0].shape == results[1].shape
    assert results[0].header["APKERNEL"] == "bilinear"
    # the two frames are offset: their weights cover different parts of the one grid
    assert not np.array_equal(results[0].weight > 0, results[1].weight > 0)


def test_target_frame_and_errors(two_frames, tmp_path, capsys):
    out = tmp_path / "onto"
    assert (
        main(["resample", two_frames[1], "--target", two_frames[0], "--conserve", "flux", "-o", str(out)])
        == 0
    )
    result = read_frame(out / "f2.fits")
    assert result.shape == (60, 70) and result.header["APCONSRV"] == "flux"
    plain = tmp_path / "plain.fits"
    write_frame(SolvedFrame(np.ones((20, 20), np.float32), unit="electron"), plain)
    assert main(["resample", str(plain), "--target", two_frames[0], "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "plain.fits" in err and "solve it first" in err
    with pytest.raises(SystemExit):
        main(["resample", two_frames[0], "--kernel", "sinc", "--optimal", "-o", str(out)])
