# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""calibrate_frame against simulated truth and hand-made frames of known values."""

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import StdDevUncertainty

from astrophot import (
    BadPixelMap,
    CalibratedFrame,
    DQFlag,
    MasterBias,
    MasterDark,
    MasterFlat,
    RawFrame,
    calibrate_frame,
    read_frame,
    write_frame,
)
from astrophot.exceptions import (
    AstrophotUserWarning,
    CalibrationError,
    FrameMismatchError,
    FrameTypeError,
    MissingKeywordError,
)
from astrophot.frames import data_checksum

# ----------------------------------------------------------------------------
# simulated night frames against their truth


def _good(sim, frame):
    return ~frame.mask & ~sim.truth.cosmic_rays & ~sim.truth.detector.bad_line_mask


def test_pulls_against_truth(sim, calibrated):
    """(calibrated - true electrons) / uncertainty is a unit normal over unmasked pixels."""
    good = _good(sim, calibrated)
    assert good.sum() > 0.9 * good.size
    pull = (calibrated.data - sim.true_electrons) / calibrated.uncertainty.array
    assert 0.9 <= np.std(pull[good]) <= 1.15
    assert abs(np.mean(pull[good])) < 0.1


def test_flat_field_error_below_half_percent(sim):
    """The normalised master flat matches the true flat to better than 0.5 % (rms and median)."""
    flat = sim.flat.data / np.median(sim.flat.data)
    true = sim.true_flat / np.median(sim.true_flat)
    good = ~sim.bad_pixels.mask
    error = flat[good] / true[good] - 1
    assert np.sqrt(np.mean(error**2)) < 0.005
    assert abs(np.median(error)) < 0.005


def test_calibrated_frame_type_unit_and_header(sim, calibrated):
    assert isinstance(calibrated, CalibratedFrame)
    assert calibrated.unit == u.electron
    assert calibrated.data.dtype == np.float32
    assert calibrated.uncertainty.array.dtype == np.float32
    assert calibrated.flags.dtype == np.uint32
    assert calibrated.header["BUNIT"] == "electron"
    assert calibrated.header["CALSTAT"] == "BDF"
    assert calibrated.header["GAIN"] == 1.0
    assert calibrated.header["CALGAIN"] == pytest.approx(sim.gain)
    assert calibrated.header["RDNOISE"] == pytest.approx(sim.read_noise)
    # masters are referenced in the provenance, not pasted into the header
    assert not any("Master" in str(v) for v in calibrated.header.values())


def test_bad_pixel_map_flags_copied(sim, calibrated):
    bits = sim.bad_pixels.data
    assert np.array_equal(calibrated.flags & bits, bits)
    assert np.array_equal(calibrated.mask, sim.bad_pixels.mask | (calibrated.flags != 0))


def test_calstat_m_and_bm_darks_agree(sim, calibrated):
    """A dark with the bias still in ('M') gives the same frame as a bias-subtracted one ('BM')."""
    assert sim.dark_m.bias_subtracted is False and sim.dark_bm.bias_subtracted is True
    other = calibrate_frame(
        sim.raw,
        bias=sim.bias,
        dark=sim.dark_m,
        flat=sim.flat,
        bad_pixels=sim.bad_pixels,
        gain=sim.gain,
        read_noise=sim.read_noise,
    )
    assert other.provenance.steps[-1].outcome["dark_includes_bias"] is True
    good = ~calibrated.mask
    difference = (other.data - calibrated.data) / calibrated.uncertainty.array
    assert np.max(np.abs(difference[good])) < 0.01
    # forgetting that the 'M' dark holds the bias subtracts it twice: far outside the noise, and
    # the product's median far below zero is not physical (issue 11, finding 8)
    with pytest.warns(AstrophotUserWarning, match="sigma below zero"):
        wrong = calibrate_frame(
            sim.raw,
            bias=sim.bias,
            dark=sim.dark_m,
            flat=sim.flat,
            gain=sim.gain,
            read_noise=sim.read_noise,
            dark_includes_bias=False,
        )
    assert np.median((wrong.data - calibrated.data)[good] / calibrated.uncertainty.array[good]) < -10


def test_provenance_references_masters(sim, calibrated):
    step = calibrated.provenance.steps[-1]
    assert step.function == "astrophot.calibrate_frame"
    roles = {ref.role: ref for ref in step.inputs}
    assert set(roles) == {"raw", "bias", "dark", "flat", "bad_pixels"}
    assert roles["dark"].sha256 == sim.dark_bm.checksum()
    assert roles["raw"].sha256 == sim.raw.checksum()
    # the raw frame's history continues
    assert calibrated.provenance.steps[: len(sim.raw.provenance.steps)] == sim.raw.provenance.steps
    # the checksum streamed while calibrating is the one of the pixels
    assert step.output.sha256 == data_checksum(calibrated.data) == calibrated.checksum()
    assert step.duration > 0


def test_inputs_not_modified(sim):
    before = {name: getattr(sim, name).data.copy() for name in ("raw", "bias", "dark_bm", "flat")}
    header = sim.raw.header.copy()
    calibrate_frame(sim.raw, bias=sim.bias, dark=sim.dark_bm, flat=sim.flat, gain=1.5, read_noise=10)
    for name, data in before.items():
        assert np.array_equal(getattr(sim, name).data, data)
    assert sim.raw.header == header


# ----------------------------------------------------------------------------
# hand-made frames with known values


def _raw(value=1100, shape=(6, 8), **header):
    meta = {"EXPTIME": 200.0, "GAIN": 2.0, "RDNOISE": 10.0, **header}
    return RawFrame(np.full(shape, value, dtype=np.uint16), meta=meta)


def test_uncertainty_formula():
    """Value and uncertainty follow the documented formula, pixel by pixel."""
    shape = (6, 8)
    raw = _raw(shape=shape)
    bias = MasterBias(np.full(shape, 100.0), uncertainty=StdDevUncertainty(np.full(shape, 2.0)))
    dark = MasterDark(
        np.full(shape, 30.0),
        uncertainty=StdDevUncertainty(np.full(shape, 1.0)),
        meta={"EXPTIME": 100.0, "CALSTAT": "BM"},
    )
    flat_values = np.full(shape, 2.0)
    flat_values[1, 2] = 1.0
    flat = MasterFlat(flat_values, uncertainty=StdDevUncertainty(np.full(shape, 0.02)))
    cal = calibrate_frame(raw, bias=bias, dark=dark, flat=flat)
    gain, rn, ratio = 2.0, 10.0, 2.0
    adu = 1100 - 100 - ratio * 30  # 940
    # Poisson noise of every electron in the light less the bias, dark current included
    var_adu = (1100 - 100) / gain + (rn / gain) ** 2 + 2.0**2 + ratio**2 * 1.0**2
    for (r, c), normalised in (((0, 0), 1.0), ((1, 2), 0.5)):
        value = adu * gain / normalised
        sigma_flat = 0.02 / 2.0  # the flat's uncertainty, normalised like the flat
        expected = np.sqrt(var_adu * gain**2 / normalised**2 + (value * sigma_flat / normalised) ** 2)
        assert cal.data[r, c] == pytest.approx(value, rel=1e-6)
        assert cal.uncertainty.array[r, c] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("fraction, infinite_bias", [(0.001, False), (0.3, False), (0.001, True)])
def test_flags_mask_and_values_on_many_blocks(fraction, infinite_bias):
    """
    Flags, mask and values on a frame of several kernel blocks, with few flagged
    pixels (set by index) and many (whole planes), against the inputs.
    """
    from astrophot.frames import flags_to_mask

    rng = np.random.default_rng(7)
    shape = (700, 650)  # several blocks of rows, run on the kernel threads
    data = rng.integers(900, 60000, shape).astype(np.uint16)
    data[rng.random(shape) < 0.002] = 65535
    data[rng.random(shape) < 0.01] = 450  # below the bias: no Poisson term
    raw = RawFrame(data, meta={"EXPTIME": 10.0, "GAIN": 1.5, "RDNOISE": 5.0, "SATURATE": 50000.5})
    bias_values = rng.normal(500.0, 3.0, shape)
    if infinite_bias:
        bias_values[5, 5] = -np.inf  # not clipped to zero: the Poisson term is not finite there
    bias = MasterBias(bias_values, uncertainty=StdDevUncertainty(np.full(shape, 1.0)))
    flat_values = rng.uniform(0.8, 1.2, shape)
    flat_values[rng.random(shape) < 0.001] = 0.01
    flat = MasterFlat(flat_values)
    bits = np.where(rng.random(shape) < fraction, np.uint32(DQFlag.HOT), np.uint32(0)).astype(np.uint32)
    bits[3, :] |= np.uint32(DQFlag.BAD_ROW)
    bits[10:20, 7] |= np.uint32(DQFlag.REPAIRED)  # repaired: flagged but not masked
    cal = calibrate_frame(raw, bias=bias, flat=flat, bad_pixels=BadPixelMap(bits))

    flat32 = flat_values.astype(np.float32)
    good = np.isfinite(flat32) & (flat32 > 0) & (bits == 0)
    median = np.median(flat32[::4, ::4][good[::4, ::4]])
    low = flat32 <= np.float32(0.1 * median)
    expected = bits.copy()
    expected[data >= 50001] |= np.uint32(DQFlag.SATURATED)
    expected[low] |= np.uint32(DQFlag.LOW_RESPONSE)
    if infinite_bias:
        expected[5, 5] |= np.uint32(DQFlag.NONFINITE)
    assert np.array_equal(cal.flags, expected)
    assert np.array_equal(cal.mask, flags_to_mask(expected))
    outcome = cal.provenance.steps[-1].outcome
    assert outcome["n_masked"] == flags_to_mask(expected).sum()
    assert outcome["n_saturated"] == (data >= 50001).sum()
    ok = ~low & ~flags_to_mask(expected)
    value = (data - bias_values) * 1.5 * median / flat32
    assert np.allclose(cal.data[ok], value[ok], rtol=1e-5)
    poisson = np.maximum(data - bias_values.astype(np.float32), 0) / 1.5 + (5.0 / 1.5) ** 2 + 1.0
    sigma = np.sqrt(poisson) * 1.5 * median / flat32
    assert np.allclose(cal.uncertainty.array[ok], sigma[ok], rtol=1e-5)
    assert np.isfinite(cal.uncertainty.array[5, 5]) != infinite_bias


def test_kernel_failure_propagates(monkeypatch):
    """An error in a block (on either thread) reaches the caller; the next call works."""
    from astrophot.reduction import _calibrate

    calls = []
    original = _calibrate._Kernel.__call__

    def failing(self, rows):
        calls.append(rows.start)
        if len(calls) == 3:
            raise MemoryError("block failed")
        return original(self, rows)

    raw = _raw(shape=(900, 600))  # several blocks
    monkeypatch.setattr(_calibrate._Kernel, "__call__", failing)
    with pytest.raises(MemoryError, match="block failed"):
        calibrate_frame(raw)
    monkeypatch.setattr(_calibrate._Kernel, "__call__", original)
    cal = calibrate_frame(raw)
    assert cal.data[0, 0] == pytest.approx(1100 * 2.0)
    assert cal.checksum() == data_checksum(cal.data)


def test_unsigned_data_do_not_wrap():
    """Raw uint16 values below the bias give negative numbers, not 65000s."""
    raw = _raw(value=90)
    cal = calibrate_frame(raw, bias=MasterBias(np.full((6, 8), 100.0, dtype=np.float32)))
    assert np.all(cal.data == pytest.approx(-20.0))


def test_adu_output():
    raw = _raw()
    cal = calibrate_frame(raw, bias=MasterBias(np.full((6, 8), 100.0)), unit="adu")
    assert cal.unit == u.adu and cal.header["BUNIT"] == "adu"
    assert cal.header["GAIN"] == 2.0 and cal.header["RDNOISE"] == pytest.approx(5.0)  # 10 e- in ADU
    assert np.all(cal.data == pytest.approx(1000.0))
    assert cal.uncertainty.array[0, 0] == pytest.approx(np.sqrt(1000 / 2 + 25))


def test_overscan_and_trim():
    """BIASSEC median is subtracted and TRIMSEC (1-based, inclusive) kept; masters are trimmed alike."""
    data = np.full((10, 14), 1500, dtype=np.uint16)
    data[:, 10:] = 500  # overscan columns 11-14
    data[2:8, 1:9] += 7
    raw = RawFrame(
        data,
        meta={"EXPTIME": 10.0, "GAIN": 1.0, "RDNOISE": 5.0}
        | {"BIASSEC": "[11:14,1:10]", "TRIMSEC": "[2:9,3:8]"},
    )
    bias = MasterBias(np.full((10, 14), 3.0))
    cal = calibrate_frame(raw, bias=bias)
    assert cal.data.shape == (6, 8)
    assert np.all(cal.data == pytest.approx(1500 + 7 - 500 - 3))
    assert "TRIMSEC" not in cal.header and "BIASSEC" not in cal.header
    # a master already trimmed is used as it is
    cal2 = calibrate_frame(raw, bias=MasterBias(np.full((6, 8), 3.0)))
    assert np.array_equal(cal.data, cal2.data)
    # without overscan handling the frame keeps its shape
    assert calibrate_frame(raw, overscan=False).data.shape == (10, 14)


def test_low_flat_flagged_not_divided():
    shape = (6, 8)
    flat = np.full(shape, 1.0)
    flat[0, 0] = 0.0
    flat[0, 1] = -0.5
    flat[0, 2] = np.nan
    flat[0, 3] = 0.05
    cal = calibrate_frame(_raw(), bias=MasterBias(np.full(shape, 100.0)), flat=MasterFlat(flat))
    low = (cal.flags & DQFlag.LOW_RESPONSE) != 0
    assert np.array_equal(np.flatnonzero(low), [0, 1, 2, 3])
    assert np.all(np.isfinite(cal.data))
    assert np.all(cal.data[0, :4] == pytest.approx(2000.0))  # undivided, in electrons
    assert cal.mask[0, :4].all() and not cal.mask[1:].any()


def test_saturation_sources():
    data = np.full((4, 4), 1000, dtype=np.uint16)
    data[1, 1] = 65535
    data[2, 2] = 40000
    raw = RawFrame(data, meta={"EXPTIME": 1.0, "GAIN": 1.0, "RDNOISE": 1.0})
    sat = lambda frame: np.flatnonzero(frame.flags & DQFlag.SATURATED)  # noqa: E731
    assert list(sat(calibrate_frame(raw))) == [5]  # 16-bit ceiling
    assert list(sat(calibrate_frame(raw, saturation=30000))) == [5, 10]
    raw.header["SATURATE"] = 39000
    cal = calibrate_frame(raw)
    assert list(sat(cal)) == [5, 10]
    assert cal.provenance.steps[-1].outcome["saturation_source"] == "header SATURATE"


def test_nonfinite_flagged():
    bias = np.full((6, 8), 100.0)
    bias[3, 3] = np.nan
    cal = calibrate_frame(_raw(), bias=MasterBias(bias))
    assert np.flatnonzero(cal.flags & DQFlag.NONFINITE).tolist() == [3 * 8 + 3]
    assert cal.mask[3, 3]


def test_gain_and_read_noise_from_telescope_table():
    raw = RawFrame(np.full((4, 4), 1100, dtype=np.uint16), meta={"EXPTIME": 1.0, "TELESCOP": "iTelescope 20"})
    from astrophot.instruments.itelescope import get_telescope

    t20 = get_telescope("T20")
    cal = calibrate_frame(raw, bias=MasterBias(np.full((4, 4), 100.0)))
    outcome = cal.provenance.steps[-1].outcome
    assert outcome["gain"] == pytest.approx(t20.gain.value)
    assert outcome["read_noise"] == pytest.approx(t20.read_noise.value)
    assert "telescope table" in outcome["gain_source"]
    assert cal.data[0, 0] == pytest.approx(1000 * t20.gain.value)


def test_missing_gain_for_electrons():
    raw = RawFrame(np.full((4, 4), 10, dtype=np.uint16), meta={"EXPTIME": 1.0}, source_path="light.fits")
    with pytest.raises(MissingKeywordError, match="light.fits.*GAIN or EGAIN"):
        calibrate_frame(raw)
    with pytest.warns(AstrophotUserWarning, match="no gain"):
        with pytest.warns(AstrophotUserWarning, match="no read noise"):
            cal = calibrate_frame(raw, unit="adu")
    assert cal.unit == u.adu


def test_dark_needs_exposure_times():
    dark = MasterDark(np.zeros((6, 8)), meta={"CALSTAT": "BM"}, source_path="dark.fits")
    with pytest.raises(MissingKeywordError, match="dark.fits.*EXPOSURE or EXPTIME"):
        calibrate_frame(_raw(), dark=dark)


def test_biased_dark_needs_bias():
    dark = MasterDark(np.zeros((6, 8)), meta={"CALSTAT": "M", "EXPTIME": 300.0}, source_path="dark.fits")
    with pytest.raises(CalibrationError, match="dark.fits still contains the bias"):
        calibrate_frame(_raw(), dark=dark)


def test_dark_extrapolation_and_temperature_warnings():
    dark = MasterDark(np.zeros((6, 8)), meta={"CALSTAT": "BM", "EXPTIME": 60.0, "SET-TEMP": -20.0})
    raw = _raw(**{"SET-TEMP": -15.0})
    with pytest.warns(AstrophotUserWarning) as record:
        calibrate_frame(raw, dark=dark)
    messages = [str(w.message) for w in record]
    assert any("extrapolated 3.33x" in m for m in messages)
    assert any("set temperature -15 C differs from the dark" in m and "by 5 K" in m for m in messages)


@pytest.mark.parametrize(
    ("master_kwargs", "problem"),
    [
        ({"data": np.zeros((6, 9))}, r"shape 9x6 \(NAXIS1xNAXIS2\) != 8x6"),
        ({"meta": {"XBINNING": 2, "YBINNING": 2}}, "binning 2x2 != 1x1"),
        ({"meta": {"XORGSUBF": 100, "YORGSUBF": 0}}, r"subframe origin .* \(100, 0\) != \(0, 0\)"),
    ],
)
def test_mismatches_name_both_files(master_kwargs, problem):
    raw = _raw()
    raw.source_path = "light.fits"
    data = master_kwargs.get("data", np.zeros((6, 8)))
    bias = MasterBias(data, meta=master_kwargs.get("meta", {}), source_path="bias.fits")
    message = rf"bias bias\.fits does not match the light frame light\.fits: {problem}"
    with pytest.raises(FrameMismatchError, match=message):
        calibrate_frame(raw, bias=bias)


def test_wrong_frame_types():
    with pytest.raises(FrameTypeError, match="bias must be a MasterBias"):
        calibrate_frame(_raw(), bias=MasterDark(np.zeros((6, 8))))
    with pytest.raises(FrameTypeError, match="light frame must be a RawFrame"):
        calibrate_frame(CalibratedFrame(np.zeros((6, 8))))


def test_masters_from_paths(tmp_path):
    raw_path = write_frame(_raw(), tmp_path / "light.fits")
    bias_path = write_frame(MasterBias(np.full((6, 8), 100.0)), tmp_path / "bias.fits")
    flags = np.zeros((6, 8), dtype=np.uint32)
    flags[2, 3] = DQFlag.HOT
    bpm_path = write_frame(BadPixelMap(flags), tmp_path / "bpm.fits")
    cal = calibrate_frame(raw_path, bias=bias_path, bad_pixels=bpm_path)
    assert np.all(cal.data == pytest.approx(2000.0))
    assert cal.flags[2, 3] == DQFlag.HOT and cal.mask.sum() == 1
    paths = {ref.role: ref.path for ref in cal.provenance.steps[-1].inputs}
    assert paths["bias"] == str(bias_path) and paths["raw"] == str(raw_path)
    # the product round-trips
    out = write_frame(cal, tmp_path / "cal.fits")
    back = read_frame(out)
    assert isinstance(back, CalibratedFrame)
    assert np.array_equal(back.data, cal.data) and np.array_equal(back.flags, cal.flags)


# ----------------------------------------------------------------------------
# a real raw frame against ccdproc, step by step


def _ccdproc_frame():
    import os

    import ccdproc

    path = os.path.join(os.path.dirname(ccdproc.__file__), "tests", "data", "a8280271.fits")
    if not os.path.exists(path):
        pytest.skip("ccdproc's test frame a8280271.fits is not installed")
    # 536x520 uint16, GAIN 1.9, RDNOISE 5, EXPTIME 150.04, BIASSEC [4:13,1:520], TRIMSEC [17:528,1:520]
    return read_frame(path, frame_type="RawFrame")


def test_real_overscan_and_trim_sections_as_ccdproc_reads_them():
    import ccdproc
    from astropy.nddata import CCDData

    raw = _ccdproc_frame()
    ours = calibrate_frame(raw, unit="adu")
    ccd = CCDData(raw.data.astype(np.float64), unit="adu")
    level = np.median(ccdproc.trim_image(ccd, fits_section=raw.header["BIASSEC"]).data)
    expected = ccdproc.trim_image(ccd, fits_section=raw.header["TRIMSEC"]).data - level
    assert ours.data.shape == (520, 512)
    np.testing.assert_allclose(ours.data, expected, atol=1e-3)
    assert ours.provenance.steps[-1].outcome["overscan_level"] == pytest.approx(level)
    assert ours.uncertainty.array[0, 0] == pytest.approx(
        np.sqrt(max(expected[0, 0], 0) / 1.9 + (5.0 / 1.9) ** 2)
    )


def test_real_frame_matches_ccdproc():
    """Values and uncertainties agree with ccdproc's bias, deviation, dark, flat and gain steps."""
    import ccdproc
    from astropy.nddata import CCDData

    raw = _ccdproc_frame()
    shape = raw.data.shape
    rng = np.random.default_rng(11)
    bias = rng.normal(150.0, 3.0, shape).astype(np.float32)  # below every raw value (min 187)
    dark = rng.gamma(2.0, 2.0, shape).astype(np.float32)
    dark_sigma = np.full(shape, 0.5, np.float32)
    flat = (1 + 0.05 * rng.normal(size=shape)).astype(np.float32)
    flat_sigma = np.full(shape, 0.004, np.float32)
    ours = calibrate_frame(
        raw,
        bias=MasterBias(bias),
        dark=MasterDark(
            dark, uncertainty=StdDevUncertainty(dark_sigma), meta={"EXPTIME": 300.0, "CALSTAT": "BM"}
        ),
        flat=MasterFlat(flat, uncertainty=StdDevUncertainty(flat_sigma)),
        read_noise=7.0,
        overscan=False,
    )
    median = ours.provenance.steps[-1].outcome["flat_median"]

    gain = 1.9 * u.electron / u.adu
    ccd = CCDData(raw.data.astype(np.float64), unit="adu")
    ccd = ccdproc.subtract_bias(ccd, CCDData(bias.astype(np.float64), unit="adu"))
    ccd = ccdproc.create_deviation(ccd, gain=gain, readnoise=7.0 * u.electron, disregard_nan=True)
    ccd = ccdproc.subtract_dark(
        ccd,
        CCDData(
            dark.astype(np.float64), unit="adu", uncertainty=StdDevUncertainty(dark_sigma.astype(np.float64))
        ),
        dark_exposure=300.0 * u.s,
        data_exposure=150.04 * u.s,
        scale=True,
    )
    ccd = ccdproc.flat_correct(
        ccd,
        CCDData(
            flat.astype(np.float64), unit="", uncertainty=StdDevUncertainty(flat_sigma.astype(np.float64))
        ),
        norm_value=median,
    )
    ccd = ccdproc.gain_correct(ccd, gain)
    assert ours.unit == ccd.unit
    np.testing.assert_allclose(ours.data, ccd.data, rtol=2e-5, atol=1e-3)
    np.testing.assert_allclose(ours.uncertainty.array, ccd.uncertainty.array, rtol=2e-5)
