# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""stack_frames and the shared combination driver against simulated frames with known truth."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from astrophot import SolvedFrame, StackedFrame, read_frame, resample_frame, stack_frames, write_frame
from astrophot.combination import _combine, _core
from astrophot.datasets import make_dithered_frames
from astrophot.exceptions import AstrophotUserWarning, CombinationError, FrameMismatchError, FrameTypeError
from astrophot.frames import DQFlag


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


# ----------------------------------------------------------------------
# the "Must show", on simulated dithers with known truth
def _clean(frames, truth):
    """The same frames without their cosmic rays and trail (the same noise)."""
    out = []
    for frame, added in zip(frames, truth.outliers, strict=True):
        clean = SolvedFrame(
            frame.data - added,
            unit=frame.unit,
            uncertainty=frame.uncertainty,
            wcs=frame.wcs,
            meta=frame.header,
        )
        clean.source_path = frame.source_path
        out.append(clean)
    return out


@pytest.fixture(scope="module")
def night():
    """Eight dithered lights (sky varies), a satellite trail in the first, cosmic rays in all."""
    frames, truth = make_dithered_frames(
        8,
        shape=(150, 180),
        sky_rate=[2.0, 2.4, 1.8, 2.6, 2.2, 2.0, 2.5, 1.9],
        star_density=15000.0,
        mag_range=(12.0, 16.0),
        cosmic_rays=15.0,
        seed=7,
    )
    return frames, truth, stack_frames(frames), stack_frames(_clean(frames, truth))


def _on_grid(mask_or_values, frame, wcs, shape):
    """A frame's per-pixel truth at each output pixel (nearest input pixel), 0 outside."""
    x, y = _core.pixel_map(frame.wcs.celestial, wcs, shape, projection_error=0)
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    inside = (ix >= 0) & (iy >= 0) & (ix < frame.shape[1]) & (iy < frame.shape[0])
    out = np.zeros(shape, dtype=np.asarray(mask_or_values).dtype)
    out[inside] = np.asarray(mask_or_values)[iy[inside], ix[inside]]
    return out


def test_trail_and_cosmic_rays_are_gone_and_mapped(night):
    frames, truth, stack, clean = night
    assert stack.combination["rejection"] == "winsorized"
    hit = np.zeros(stack.shape, dtype=bool)
    for frame, added in zip(frames, truth.outliers, strict=True):
        # the pixels where a cosmic ray or the trail added more than 5 sigma of the frame's noise
        hit |= _on_grid(added > 5 * frame.uncertainty.array, frame, stack.wcs, stack.shape)
    trail = _on_grid(truth.trail[0], frames[0], stack.wcs, stack.shape)
    assert hit.sum() > 500 and trail.sum() > 250
    good = hit & np.isfinite(stack.data)
    residual = np.abs(stack.data - clean.data)[good] / stack.uncertainty.array[good]
    # measured: 99.5 % of 782 hit pixels within 3 sigma of the stack noise, 99.5 % marked
    assert np.mean(residual < 3) >= 0.99
    assert np.mean(stack.rejected_high[good] >= 1) >= 0.99  # marked in the rejection map
    # every trail pixel that 5 or more frames cover (of 3 values none can be 3 sigma from their mean)
    present = stack.coverage + stack.rejected_low + stack.rejected_high
    assert np.all(stack.rejected_high[trail & (present >= 5)] >= 1)
    assert (
        stack.combination["frames"][0]["rejected_fraction"]
        > stack.combination["frames"][1]["rejected_fraction"]
    )


def test_star_fluxes_unbiased(night):
    frames, truth, stack, _ = night
    expected = truth.expected[0] / truth.exposure[0]  # the reference frame's noiseless rates on the grid
    sky = truth.sky_rate[0]
    x, y = stack.wcs.all_world2pix(truth.stars["ra"].value, truth.stars["dec"].value, 0)
    yy, xx = np.mgrid[0 : stack.shape[0], 0 : stack.shape[1]]
    ratio, error = [], []
    for xi, yi, rate in zip(x, y, np.asarray(truth.stars["rate"]), strict=True):
        aperture = (xx - xi) ** 2 + (yy - yi) ** 2 <= 7**2
        inside = 10 <= xi < stack.shape[1] - 10 and 10 <= yi < stack.shape[0] - 10
        if (
            rate < 300
            or not inside
            or not np.all(stack.coverage[aperture] + stack.rejected_high[aperture] >= 7)
        ):
            continue
        flux = np.sum(stack.data[aperture]) - aperture.sum() * sky
        ratio.append(flux / (np.sum(expected[aperture]) - aperture.sum() * sky))
        error.append(np.sqrt(np.sum(stack.uncertainty.array[aperture] ** 2)) / flux)
    assert len(ratio) >= 30
    bias = np.average(np.array(ratio) - 1, weights=1 / np.array(error) ** 2)
    # measured: -0.02 % +/- 0.02 % (35 stars)
    assert abs(bias) < 0.001


def test_sky_noise_as_the_weights_predict(night):
    frames, truth, _, clean = night
    expected = truth.expected[0] / truth.exposure[0]
    sky = (expected - truth.sky_rate[0] < 0.02) & (clean.coverage == 8)
    assert sky.sum() > 5000
    measured = np.std(clean.data[sky] - expected[sky])
    predicted = np.sqrt(np.mean(clean.uncertainty.array[sky] ** 2))
    assert measured == pytest.approx(predicted, rel=0.03)
    # and from the frames themselves: each frame's noise on the grid, combined with the weights
    weights = np.array([r["weight"] for r in clean.combination["frames"]])
    scales = np.array([r["scale"] for r in clean.combination["frames"]])
    single = []
    for frame, exposure in zip(_clean(frames, truth), truth.exposure, strict=True):
        resampled = resample_frame(frame, (clean.wcs, clean.shape))
        single.append(np.nanstd((resampled.data / exposure)[sky]))
    from_weights = np.sqrt(np.sum((weights * scales * np.array(single)) ** 2)) / weights.sum()
    assert measured == pytest.approx(from_weights, rel=0.03)
    assert from_weights == pytest.approx(np.mean(single) / np.sqrt(8), rel=0.05)  # about 1/sqrt(N)


@pytest.mark.parametrize("n", [5, 8])
def test_pure_noise_loses_few_good_values(n):
    frames, _ = make_dithered_frames(
        n,
        shape=(80, 100),
        star_density=10.0,
        mag_range=(29.0, 30.0),
        cosmic_rays=0.0,
        satellite=None,
        seed=11,
    )
    rates = {}
    for rule in ("auto", "percentile", "sigma", "mad", "winsorized", "linear_fit", "gesd"):
        stack = stack_frames(frames, rejection=rule, sigma=3.0)
        present = stack.coverage.astype(int) + stack.rejected_low + stack.rejected_high
        rates[rule] = (stack.rejected_low.sum() + stack.rejected_high.sum()) / present.sum()
    # measured (8 frames of 100x120): auto 0.22 %, percentile 0.14, sigma 0, mad 0.19, winsorized 0.22,
    # linear_fit 0.14, gesd 0.27 % (before the consistency factors and gesd's alpha: up to 1.5 %)
    assert max(rates.values()) < 0.005, rates


@pytest.fixture(scope="module")
def dithers():
    """Five dithered frames of different exposures with a trail and cosmic rays."""
    return make_dithered_frames(5, shape=(60, 80), exposure=[30, 60, 90, 60, 120], seed=12)


@pytest.mark.parametrize(
    ("rule", "spread"), [("sigma", "pixel"), ("winsorized", "pixel"), ("sigma", "pooled")]
)
def test_sigma_and_winsorized_equal_astropy_sigma_clip(dithers, rule, spread):
    from astropy.stats import sigma_clip

    from .test_reject import _nanstd, _pooled, _winsorized_std

    frames, _ = dithers
    stack = stack_frames(
        frames,
        rejection=rule,
        sigma=(3.0, 2.5),
        normalize="none",
        weights="none",
        reject_options={"spread": spread},
    )
    inputs = _combine.prepare_inputs(frames, stack.wcs, stack.shape)
    values, _ = _combine.resample_rates(inputs, stack.wcs, stack.shape, slice(0, stack.shape[0]))
    stdfunc = {"sigma": _nanstd, "winsorized": _winsorized_std}[rule]
    data, coverage = stack.data, stack.coverage
    if spread == "pixel":  # each pixel on its own: the (slow) reference on every third row
        values, data, coverage = values[:, ::3], data[::3], coverage[::3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sigma_clip(
            values.astype(np.float64),
            sigma_lower=3.0,
            sigma_upper=2.5,
            maxiters=10,
            cenfunc="median",
            stdfunc=_pooled(stdfunc) if spread == "pooled" else stdfunc,
            axis=0,
            masked=True,
        )
    keep = ~ref.mask & np.isfinite(values)
    expected = np.ma.masked_array(values, ~keep).mean(axis=0).filled(np.nan)
    np.testing.assert_allclose(data, expected, rtol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(coverage, keep.sum(axis=0))
    assert stack.rejected_high.sum() > 50  # the trail and the cosmic rays


def test_coverage_and_exposure_are_the_dither_overlaps(dithers):
    frames, truth = dithers
    stack = stack_frames(frames, rejection="none", wcs="optimal")
    count = np.zeros(stack.shape, dtype=int)
    seconds = np.zeros(stack.shape)
    unsure = np.zeros(stack.shape, dtype=bool)
    for frame, exposure in zip(frames, truth.exposure, strict=True):
        x, y = _core.pixel_map(frame.wcs.celestial, stack.wcs, stack.shape, projection_error=0)
        ny, nx = frame.shape
        with np.errstate(invalid="ignore"):
            edge = np.minimum(np.minimum(x + 0.5, nx - 0.5 - x), np.minimum(y + 0.5, ny - 0.5 - y))
        edge = np.nan_to_num(edge, nan=-10.0)  # no position: far outside
        inside = edge > 1.0
        count += inside
        seconds += exposure * inside
        unsure |= np.abs(edge) <= 1.0  # within a pixel of the frame's edge: the kernel's call
    assert np.count_nonzero(~unsure) > 4000 and len(np.unique(count[~unsure])) >= 4
    np.testing.assert_array_equal(stack.coverage[~unsure], count[~unsure])
    np.testing.assert_allclose(stack.exposure_map[~unsure], seconds[~unsure])
    assert np.all(np.isnan(stack.data[stack.coverage == 0]))
    assert np.all(stack.flags[stack.coverage == 0] & int(DQFlag.NO_DATA))
    # with rejection, the kept and the rejected values add up to the frames that cover
    clipped = stack_frames(frames, wcs="optimal")
    total = clipped.coverage.astype(int) + clipped.rejected_low + clipped.rejected_high
    np.testing.assert_array_equal(total[~unsure], count[~unsure])
    assert np.all(clipped.exposure_map <= stack.exposure_map + 1e-3)
    assert clipped.header["EXPTIME"] == 360.0


def test_psf_weights_favour_good_seeing_and_raise_star_snr():
    fwhm = [2.0, 2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    frames, truth = make_dithered_frames(
        8,
        shape=(100, 120),
        fwhm=fwhm,
        star_density=20000.0,
        mag_range=(17.0, 21.0),
        satellite=None,
        cosmic_rays=0.0,
        seed=4,
    )
    noiseless = [
        SolvedFrame(e, unit=f.unit, uncertainty=f.uncertainty, wcs=f.wcs, meta=f.header)
        for e, f in zip(truth.expected, frames, strict=True)
    ]
    snr, records = {}, {}
    for weights in ("psf", "none"):
        stack = stack_frames(frames, weights=weights, normalize="none", rejection="none")
        w = [r["weight"] for r in stack.combination["frames"]]
        signal = stack_frames(noiseless, weights=w, normalize="none", rejection="none")
        records[weights] = w
        x, y = stack.wcs.all_world2pix(truth.stars["ra"].value, truth.stars["dec"].value, 0)
        values = []
        for xi, yi in zip(np.rint(x).astype(int), np.rint(y).astype(int), strict=True):
            if 5 <= xi < stack.shape[1] - 5 and 5 <= yi < stack.shape[0] - 5:
                box = np.s_[yi - 1 : yi + 2, xi - 1 : xi + 2]  # about the FWHM
                flux = signal.data[box].sum() - 9 * truth.sky_rate[0]
                values.append(flux / np.sqrt(np.sum(stack.uncertainty.array[box] ** 2)))
        snr[weights] = np.array(values)
    w = np.array(records["psf"])
    assert np.all(w[:4] > 3 * w[4:])  # better seeing weighs more
    assert len(snr["psf"]) >= 10
    # measured: +1.8 % in a 3x3 aperture (weights 0.85-1 for 2 px seeing, 0.15-0.24 for 4 px)
    assert np.median(snr["psf"] / snr["none"]) > 1.01


def test_memory_bounded_by_the_band_buffer(monkeypatch):
    import tracemalloc

    monkeypatch.setattr(_combine, "BAND_VALUES", 1 << 16)
    monkeypatch.setattr(_combine, "SAMPLE_VALUES", 1 << 16)
    frames, _ = make_dithered_frames(20, shape=(120, 160), cosmic_rays=0.0, satellite=None, seed=13)
    stack_frames(frames, weights="none", parallel=False)  # the rejection's consistency tables, once
    peaks = {}
    for n in (10, 20):
        tracemalloc.start()
        stack_frames(frames[:n], weights="none", parallel=False)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    ten_more = 10 * 120 * 160 * 8  # what 10 more resampled frames (values and variances) would take
    # measured: 10 frames 6.8 MB, 20 frames 6.3 MB (tracemalloc peaks)
    assert peaks[20] - peaks[10] < 0.25 * ten_more, peaks


def test_bad_input_errors_name_the_files(dithers):
    frames, _ = dithers
    other = make_dithered_frames(2, shape=(60, 80), filter_name="Ha", seed=3)[0]
    other[0].source_path = "ha_00.fits"
    with pytest.raises(FrameMismatchError, match=r"different filters .*Ha: ha_00.fits"):
        stack_frames([*frames, other[0]])
    target = frames[1].copy()
    target.meta["OBJECT"] = "NGC 7000"
    target.source_path = "ngc.fits"
    with pytest.raises(FrameMismatchError, match="different targets .*NGC 7000: ngc.fits"):
        stack_frames([frames[0], target])
    plain = SolvedFrame(frames[1].data, unit="electron", meta=frames[1].header)
    plain.source_path = "unsolved.fits"
    with pytest.raises(FrameTypeError, match="unsolved.fits: has no celestial WCS"):
        stack_frames([frames[0], plain])
    far = frames[1].copy()
    far.wcs.wcs.crval = [far.wcs.wcs.crval[0] + 10.0, far.wcs.wcs.crval[1]]
    far.source_path = "far.fits"
    with pytest.raises(CombinationError, match="far.fits: do not overlap"):
        stack_frames([frames[0], far])
    adu = SolvedFrame(frames[1].data, unit="adu", wcs=frames[1].wcs, meta=frames[1].header)
    adu.source_path = "adu.fits"
    with pytest.raises(FrameMismatchError, match="adu.fits: data in adu"):
        stack_frames([frames[0], adu])
    with pytest.warns(AstrophotUserWarning, match="dither_00.fits: stacking a single frame"):
        single = stack_frames(frames[:1])
    assert single.header["NCOMBINE"] == 1 and not single.rejected_high.any()
    quality = Table(
        {
            "file": [f.name for f in frames],
            "accepted": [True, False, True, False, True],
            "reason": ["", "fwhm 5.1 > 4", "", "transparency 0.4 < 0.6", ""],
            "weight": [1.0, 0.0, 0.8, 0.0, 0.9],
        }
    )
    kept = stack_frames(frames, quality=quality)
    assert kept.header["NCOMBINE"] == 3
    assert kept.combination["left_out"] == {
        "dither_01.fits": "rejected by select_frames: fwhm 5.1 > 4",
        "dither_03.fits": "rejected by select_frames: transparency 0.4 < 0.6",
    }
    quality["accepted"] = False
    with pytest.raises(ValueError, match="rejected every frame: dither_00.fits"):
        stack_frames(frames, quality=quality)


def test_threads_over_bands_match_one_thread():
    """astropy's WCS is not thread-safe: each band thread maps pixels with WCS copies of its own
    (`astrophot._concurrency.PerThread`). Sharing them gave a few wrong pixels in one run of 5 or so."""
    from astrophot.datasets import make_solved_frame

    from ._grids import rotated_grid

    frames = [make_solved_frame(shape=(120, 150), n_stars=10, sky=300.0, seed=s)[0] for s in (5, 6)]
    wcs, shape = rotated_grid(frames[0].wcs, frames[0].shape, rotation=30.0)  # SIP frames, rotated grid
    inputs = _combine.prepare_inputs(frames, wcs, shape)
    options = {"band_rows": 13, "projection_error": 0}  # every pixel through the WCS
    serial = _combine.combine_frames(inputs, wcs, shape, parallel=False, **options)
    for _ in range(10):
        threaded = _combine.combine_frames(inputs, wcs, shape, parallel=2, **options)
        np.testing.assert_array_equal(threaded.data, serial.data)
        np.testing.assert_array_equal(threaded.variance, serial.variance)
        np.testing.assert_array_equal(threaded.coverage, serial.coverage)
