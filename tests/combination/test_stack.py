# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""stack_frames and the shared combination driver against simulated frames with known truth."""

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

from astrophot import StackedFrame, read_frame, stack_frames, write_frame
from astrophot.combination import _combine
from astrophot.datasets import make_dithered_frames


@pytest.fixture(scope="module")
def aligned():
    """Four frames on one pixel grid: the driver's planes have closed forms."""
    return make_dithered_frames(
        4,
        shape=(60, 80),
        dither=0.0,
        rotation=0.0,
        cosmic_rays=0.0,
        satellite=None,
        exposure=[30, 60, 60, 90],
    )


def test_driver_on_one_grid_equals_the_weighted_mean(aligned):
    frames, truth = aligned
    wcs, shape = frames[0].wcs.celestial, frames[0].shape
    inputs = _combine.prepare_inputs(frames, wcs, shape)
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    result = _combine.combine_frames(inputs, wcs, shape, weights=weights, rejection="none", band_rows=7)
    assert result.n_bands == 9
    rates = np.stack([f.data / t for f, t in zip(frames, truth.exposure, strict=True)])
    expected = np.tensordot(weights, rates, axes=1) / weights.sum()
    np.testing.assert_allclose(result.data, expected, rtol=1e-5, atol=1e-6)
    var = np.stack([(f.uncertainty.array / t) ** 2 for f, t in zip(frames, truth.exposure, strict=True)])
    expected_var = np.tensordot(weights**2, var, axes=1) / weights.sum() ** 2
    np.testing.assert_allclose(result.variance, expected_var, rtol=1e-4)
    assert np.all(result.coverage == 4) and np.all(result.exposure == 240.0)
    assert np.all(result.weight == 10.0) and not result.rejected_low.any()
    assert [r["exposure"] for r in result.records] == [30.0, 60.0, 60.0, 90.0]


def test_driver_background_hook(aligned):
    frames, _ = aligned
    wcs, shape = frames[0].wcs.celestial, frames[0].shape
    inputs = _combine.prepare_inputs(frames[:2], wcs, shape)
    plain = _combine.combine_frames(inputs, wcs, shape, rejection="none")
    planes = np.array([[0.5, 0.01, -0.02], [-0.5, -0.01, 0.02]])
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    with_planes = _combine.combine_frames(inputs, wcs, shape, rejection="none", background=planes)
    # the two planes cancel in the mean of two frames of equal weight
    np.testing.assert_allclose(with_planes.data, plain.data, atol=2e-5)
    one = _combine.combine_frames(inputs, wcs, shape, rejection="none", background=[1.0, 0.0])
    np.testing.assert_allclose(one.data, plain.data - 0.5, atol=2e-5)

    def model(k, rows):
        return (k + 1) * 0.001 * x[rows]

    called = _combine.combine_frames(inputs, wcs, shape, rejection="none", background=model)
    np.testing.assert_allclose(called.data, plain.data - 0.0015 * x, atol=2e-5)
    with pytest.raises(ValueError, match="background must be"):
        _combine.combine_frames(inputs, wcs, shape, background=np.zeros((2, 2)))


def test_stacked_frame_round_trip(tmp_path, aligned):
    frames, _ = aligned
    stack = stack_frames(frames, rejection="none")
    assert isinstance(stack, StackedFrame) and stack.unit == u.electron / u.s
    assert stack.header["EXPTIME"] == 240.0 and stack.header["NCOMBINE"] == 4
    assert "total exposure" in stack.header.comments["EXPTIME"]
    path = tmp_path / "stack.fits"
    write_frame(stack, path)
    with fits.open(path) as hdul:
        names = [hdu.name for hdu in hdul]
        assert {"UNCERT", "COVERAGE", "EXPOSURE", "WEIGHT", "REJLOW", "REJHIGH", "FRAMES"} <= set(names)
        np.testing.assert_array_equal(hdul["EXPOSURE"].data, stack.exposure_map)
        assert "frames that contributed" in str(hdul["COVERAGE"].header["COMMENT"])
    back = read_frame(path)
    assert isinstance(back, StackedFrame)
    np.testing.assert_array_equal(back.coverage, stack.coverage)
    np.testing.assert_array_equal(back.data, stack.data)
    assert back.combination["frames"][2]["file"] == frames[2].name
    assert back.combination["frames"][2]["exposure"] == 60.0
    assert back.provenance.steps[-1].function == "astrophot.stack_frames"
    assert len(back.provenance.steps[-1].inputs) == 4
