# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""write_frame then read_frame gives back the same frame, for every frame type."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from astropy.nddata import StdDevUncertainty
from astropy.table import QTable
from astropy.wcs import WCS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from astrophot import (
    BadPixelMap,
    CalibratedFrame,
    DQFlag,
    MasterBias,
    MasterDark,
    MasterFlat,
    RawFrame,
    SolvedFrame,
    read_frame,
    write_frame,
)
from astrophot.provenance import start_step

TYPES = [RawFrame, MasterBias, MasterDark, MasterFlat, BadPixelMap, CalibratedFrame, SolvedFrame]


def _wcs(shape):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [10.68, 41.27]
    w.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    w.wcs.cdelt = [-0.0005, 0.0005]
    w.wcs.cunit = ["deg", "deg"]
    return w


@st.composite
def frames(draw):
    cls = draw(st.sampled_from(TYPES))
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=9))
    if cls is BadPixelMap:
        data = draw(hnp.arrays(np.uint32, shape, elements=st.sampled_from([int(f) for f in DQFlag] + [0])))
    elif cls is RawFrame:
        dtype = draw(st.sampled_from([np.uint16, np.int16, np.int32, np.float32]))
        data = draw(hnp.arrays(dtype, shape))
        if dtype is np.float32:
            data = np.nan_to_num(data, nan=0.0, posinf=1e30, neginf=-1e30)
    else:
        dtype = draw(st.sampled_from([np.float32, np.float64]))
        data = draw(hnp.arrays(dtype, shape, elements=st.floats(-1e6, 1e6, width=32)))
    # FITS cards hold about 16 significant digits: exposure times as cameras write them
    kwargs = {
        "meta": {"EXPTIME": round(draw(st.floats(0, 1e4)), 6), "FILTER": "Ha", "IMAGETYP": "Light Frame"}
    }
    if cls not in (RawFrame, BadPixelMap):
        if draw(st.booleans()):
            kwargs["uncertainty"] = StdDevUncertainty(
                draw(hnp.arrays(np.float32, shape, elements=st.floats(0, 1e3, width=32)))
            )
        if draw(st.booleans()):
            kwargs["mask"] = draw(hnp.arrays(np.bool_, shape))
        if draw(st.booleans()):
            kwargs["flags"] = draw(
                hnp.arrays(np.uint32, shape, elements=st.sampled_from([0, 1, 64, 128 | 1, 256]))
            )
        if draw(st.booleans()):
            kwargs["wcs"] = _wcs(shape)
    if cls is SolvedFrame:
        kwargs["wcs"] = _wcs(shape)
        kwargs["stars"] = QTable({"x": [1.0, 2.5], "y": [3.0, 4.0], "ra": [10.1, 10.2], "dec": [41.0, 41.1]})
        kwargs["solution"] = {"backend": "test", "rms_arcsec": 0.12, "n_matched": 2}
    frame = cls(data, **kwargs)
    rec = start_step("roundtrip_test", parameters={"n": 3, "arr": np.zeros(3)})
    return rec.finish(frame)


def _assert_same(a, b):
    assert type(a) is type(b)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.data.dtype == b.data.dtype
    assert a.unit == b.unit
    if a.uncertainty is None:
        assert b.uncertainty is None
    else:
        np.testing.assert_array_equal(a.uncertainty.array, b.uncertainty.array)
    if a.mask is None:
        assert b.mask is None or not b.mask.any()
    else:
        np.testing.assert_array_equal(a.mask, b.mask)
    if a.flags is None:
        assert b.flags is None
    else:
        np.testing.assert_array_equal(a.flags, b.flags)
    if a.wcs is None:
        assert b.wcs is None
    else:
        np.testing.assert_allclose(a.wcs.wcs.crval, b.wcs.wcs.crval)
        np.testing.assert_allclose(a.wcs.pixel_scale_matrix, b.wcs.pixel_scale_matrix)
    for key in ("EXPTIME", "FILTER", "IMAGETYP"):
        assert a.header[key] == b.header[key]
    assert a.provenance == b.provenance
    if isinstance(a, SolvedFrame):
        assert list(b.stars["ra"]) == list(a.stars["ra"])
        assert b.solution == a.solution


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames())
def test_write_then_read_gives_the_same_frame(frame):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frame.fits"
        write_frame(frame, path)
        assert path.exists() and path.with_suffix(".asdf").exists()
        back = read_frame(path)
        _assert_same(frame, back)
        assert back.source_path == str(path)


@pytest.mark.parametrize("cls", TYPES)
def test_every_type_round_trips(cls, tmp_path):
    shape = (5, 6)
    data = np.arange(30, dtype=np.uint32 if cls is BadPixelMap else np.float32).reshape(shape)
    # FITS cards hold about 16 significant digits: exposure times as cameras write them
    kwargs = {"meta": {"EXPTIME": 1.0, "FILTER": "R", "IMAGETYP": "x"}}
    if cls is SolvedFrame:
        kwargs.update(wcs=_wcs(shape), stars=QTable({"x": [1.0], "ra": [10.0]}), solution={"backend": "b"})
    frame = start_step("t").finish(cls(data, **kwargs))
    write_frame(frame, tmp_path / "f.fits")
    _assert_same(frame, read_frame(tmp_path / "f.fits"))


def test_master_rejection_counts_round_trip(tmp_path):
    counts = np.arange(12, dtype=np.uint16).reshape(3, 4) % 3
    master = start_step("make_master_bias").finish(MasterDark(np.ones((3, 4), np.float32), n_rejected=counts))
    assert master.copy().n_rejected is not None
    np.testing.assert_array_equal(master[1:, 1:].n_rejected, counts[1:, 1:])
    write_frame(master, tmp_path / "m.fits")
    np.testing.assert_array_equal(read_frame(tmp_path / "m.fits").n_rejected, counts)


def test_mask_derived_from_flags_is_not_written_twice(tmp_path):
    from astropy.io import fits

    flags = np.zeros((4, 5), dtype=np.uint32)
    flags[1, 2] = int(DQFlag.HOT)
    flags[3, 3] = int(DQFlag.HOT | DQFlag.REPAIRED)
    frame = start_step("t").finish(CalibratedFrame(np.ones((4, 5), np.float32), flags=flags))
    write_frame(frame, tmp_path / "derived.fits")
    assert "MASK" not in fits.open(tmp_path / "derived.fits")
    np.testing.assert_array_equal(read_frame(tmp_path / "derived.fits").mask, frame.mask)
    # a mask that says more than the flags is kept
    custom = start_step("t").finish(
        CalibratedFrame(np.ones((4, 5), np.float32), flags=flags, mask=flags == 0)
    )
    write_frame(custom, tmp_path / "custom.fits")
    np.testing.assert_array_equal(read_frame(tmp_path / "custom.fits").mask, flags == 0)
