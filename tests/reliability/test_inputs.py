# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Issue 11, findings 6 and 7: header values validated in the frame attributes; masters' roles checked."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrophot import RawFrame, calibrate_frame
from astrophot.calibration import make_master_bias, make_master_dark, make_master_flat
from astrophot.datasets import make_bias_stack, make_dark_stack, make_flat_stack, make_raw_frame
from astrophot.exceptions import AstrophotError, FrameTypeError, InvalidKeywordError, MissingKeywordError
from astrophot.frames import MasterBias, MasterFlat

SHAPE = (24, 32)
T_DARK = 300.0


@pytest.fixture(scope="module")
def sim():
    biases, _ = make_bias_stack(3, shape=SHAPE, seed=5)
    darks, _ = make_dark_stack(3, shape=SHAPE, seed=5, exposure=T_DARK)
    flats, _ = make_flat_stack(3, shape=SHAPE, seed=5, filter="Red")
    raw, _ = make_raw_frame(shape=SHAPE, seed=5, exposure=T_DARK, filter="Red")
    bias = make_master_bias(biases)
    dark = make_master_dark(darks, bias=bias)
    flat = make_master_flat(flats, bias=bias, dark=dark)
    return raw, bias, dark, flat


def _with(raw, **cards):
    frame = raw.copy()
    for key, value in cards.items():
        if value is None:
            frame.header.remove(key, ignore_missing=True)
        else:
            frame.header[key] = value
    return frame


def _expected(raw, bias, dark, flat, t_light, gain):
    """calibrate_frame's formula written out: (raw - bias - t/t_dark dark) * gain / flat (times a constant)."""
    flat_data = np.asarray(flat.data, dtype=float)
    signal = (
        np.asarray(raw.data, float) - np.asarray(bias.data, float) - t_light / T_DARK * np.asarray(dark.data)
    )
    return signal * gain / flat_data


# --- finding 6: EXPTIME -300 / 0 / nan / inf / 1e300 / 'abc' and GAIN -2 ------------------------
@pytest.mark.parametrize("value", [-300.0, 0.0, "nan", "inf", 1e300, "abc"])
def test_invalid_exposure_is_refused_naming_file_card_value(sim, value):
    raw, bias, dark, flat = sim
    bad = _with(raw, EXPTIME=value, EXPOSURE=None)
    with pytest.raises(InvalidKeywordError, match=r"EXPTIME = .*invalid") as info:
        calibrate_frame(bad, bias=bias, dark=dark, flat=flat, gain=1.5, read_noise=5.0)
    assert str(value) in str(info.value) or repr(value) in str(info.value)
    assert info.value.keyword == "EXPTIME"


@pytest.mark.parametrize("value", [-2.0, 0.0, "abc", "nan"])
def test_invalid_gain_is_reported_as_invalid_not_missing(sim, value):
    raw, bias, dark, flat = sim
    bad = _with(raw, GAIN=value, EGAIN=None)
    with pytest.raises(InvalidKeywordError, match="GAIN") as info:
        calibrate_frame(bad, bias=bias, dark=dark, flat=flat, read_noise=5.0)
    assert not isinstance(info.value, MissingKeywordError)


def test_valid_egain_wins_over_invalid_gain(sim):
    raw = _with(sim[0], GAIN=-2.0, EGAIN=1.25)
    assert raw.gain.value == 1.25


def test_binning_and_temperatures_are_validated(sim):
    raw = sim[0]
    with pytest.raises(InvalidKeywordError, match="XBINNING"):
        _ = _with(raw, XBINNING=1.5).binning
    with pytest.raises(InvalidKeywordError, match="CCD-TEMP"):
        _ = _with(raw, **{"CCD-TEMP": "hot"}).ccd_temperature
    with pytest.raises(InvalidKeywordError, match="DATE-OBS"):
        _ = _with(raw, **{"DATE-OBS": "2026-13-45T99:00:00"}).date_obs
    assert _with(raw, XBINNING="2", YBINNING=2.0).binning == (2, 2)


# --- finding 7: masters of the wrong kind ---------------------------------------------------------
def test_dark_given_as_bias_is_refused(sim):
    raw, _, dark, flat = sim
    as_bias = MasterBias(dark)  # a master dark relabelled in memory: its IMAGETYP still says dark
    with pytest.raises(FrameTypeError, match="given as the bias but IMAGETYP is 'Master Dark'"):
        calibrate_frame(raw, bias=as_bias, flat=flat, gain=1.5, read_noise=5.0)


def test_raw_light_given_as_flat_is_refused(sim, tmp_path):
    from astrophot import write_frame

    raw, bias, dark, _ = sim
    path = write_frame(raw.copy(), tmp_path / "light.fits")  # stamped RawFrame, IMAGETYP Light Frame
    with pytest.raises(FrameTypeError, match="given as the flat but IMAGETYP is 'Light Frame'"):
        calibrate_frame(raw, bias=bias, dark=dark, flat=path, gain=1.5, read_noise=5.0)
    with pytest.raises(FrameTypeError, match="flat"):
        calibrate_frame(raw, bias=bias, dark=dark, flat=MasterFlat(raw), gain=1.5, read_noise=5.0)


def test_master_dark_file_read_as_bias_is_refused_by_its_stamp(sim, tmp_path):
    from astrophot import write_frame

    raw, _, dark, flat = sim
    mislabelled = dark.copy()
    mislabelled.header["IMAGETYP"] = "Bias Frame"  # only astrophot's APFRAME stamp tells the truth
    path = write_frame(mislabelled, tmp_path / "dark.fits")
    with pytest.raises(FrameTypeError, match="type stamp says MasterDark"):
        calibrate_frame(raw, bias=path, flat=flat, gain=1.5, read_noise=5.0)


# --- the property: every header value gives a right product or one clear error naming the card ---
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.text(max_size=12),
    st.floats(min_value=-1e4, max_value=1e4).map(lambda x: f" {x:g} "),
)
_CARDS = {
    "EXPTIME": ("EXPTIME",),
    "GAIN": ("GAIN",),
    "DATE-OBS": ("DATE-OBS",),
    "XBINNING": ("XBINNING", "binning"),
    "SET-TEMP": ("SET-TEMP",),
    "CCD-TEMP": ("CCD-TEMP",),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(card=st.sampled_from(sorted(_CARDS)), value=_values)
def test_header_values_give_right_product_or_one_clear_error(sim, card, value):
    raw, bias, dark, flat = sim
    cards = {card: value}
    if card == "EXPTIME":
        cards["EXPOSURE"] = None
    if card == "GAIN":
        cards["EGAIN"] = None
    try:
        frame = _with(raw, **cards)
    except (ValueError, TypeError):
        return  # astropy itself refuses to put this value in a card (e.g. non-ASCII, control characters)
    kwargs = {"read_noise": 5.0} if card == "GAIN" else {"gain": 1.5, "read_noise": 5.0}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # e.g. a set temperature far from the dark's: a warning, fine
            product = calibrate_frame(frame, bias=bias, dark=dark, flat=flat, **kwargs)
        assert all("\n" not in str(w.message) for w in caught)
    except AstrophotError as exc:
        text = str(exc)
        assert "\n" not in text
        assert any(name in text for name in _CARDS[card]), text
        return
    t_light = float(frame.exposure_time.value)
    gain = float(frame.gain.value) if card == "GAIN" else 1.5
    assert math.isfinite(t_light) and t_light > 0 and math.isfinite(gain) and gain > 0
    good = ~product.mask
    assert good.mean() > 0.9
    expected = _expected(raw, bias, dark, flat, t_light, gain)[good]
    norm = np.median(product.data[good] / expected)  # the flat's normalisation (median of its good pixels)
    assert norm == pytest.approx(np.median(flat.data), rel=0.01)
    np.testing.assert_allclose(product.data[good], norm * expected, rtol=2e-4, atol=1e-2 * gain)


def test_plain_in_memory_frame_without_cards_still_works():
    frame = RawFrame(np.ones((4, 4)))
    assert frame.exposure_time is None and frame.gain is None and frame.binning == (1, 1)
