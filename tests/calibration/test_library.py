# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The calibration library: indexing iTelescope and astrophot masters, choosing them for a light."""

import numpy as np
import pytest
from astropy.io import fits

from astrophot.calibration import CalibrationLibrary, find_bad_pixels, make_master_dark
from astrophot.datasets import make_dark_stack, simulate_night
from astrophot.exceptions import AstrophotUserWarning, CalibrationError
from astrophot.frames import MasterDark, RawFrame
from astrophot.instruments.itelescope import make_master_filename
from astrophot.io import write_frame

SHAPE = (16, 24)


_IMAGETYP = {"Bias": "Master Bias", "Dark": "Master Dark", "Flat": "Master Flat", "Badpix": "BADPIX"}


def _master(
    root, telescope, kind, date, *, binning=1, shape=SHAPE, temp=-15, exposure=0, filter=None, **cards
):
    folder = {"Bias": "Bias", "Dark": "Darks", "Flat": "Flats", "Badpix": "Darks"}[kind]
    name = make_master_filename(
        kind,
        binning=binning,
        shape=shape,
        set_temperature=temp,
        exposure=exposure,
        filter=filter,
    )
    path = root / telescope / "Masters" / folder / date / name
    path.parent.mkdir(parents=True, exist_ok=True)
    header = fits.Header()
    header["IMAGETYP"] = _IMAGETYP[kind]
    for key, value in cards.items():
        header[key.replace("_", "-")] = value
    fits.PrimaryHDU(np.zeros(shape, dtype=np.float32), header=header).writeto(path)
    return path


def _light(
    *, binning=1, shape=SHAPE, exposure=300.0, filter="Ha", date="2021-03-10", telescope="T20", temp=-15.0
):
    header = fits.Header()
    header.update(
        {
            "IMAGETYP": "Light Frame",
            "TELESCOP": telescope,
            "XBINNING": binning,
            "YBINNING": binning,
            "SET-TEMP": temp,
            "EXPTIME": exposure,
            "FILTER": filter,
            "DATE-OBS": f"{date}T03:00:00",
        }
    )
    return RawFrame(np.zeros(shape, dtype=np.uint16), meta=header, source_path="raw-light.fit")


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "cal"
    made = {
        "bias_old": _master(root, "T20", "Bias", "2020-04"),
        "bias_new": _master(root, "T20", "Bias", "2021-02-14"),
        "bias_bin2": _master(root, "T20", "Bias", "2021-02-14", binning=2, shape=(8, 12)),
        "dark300": _master(root, "T20", "Dark", "2020-04", exposure=300, CALSTAT="M"),
        "dark900": _master(root, "T20", "Dark", "2021-02-14", exposure=900, CALSTAT="BM"),
        "dark600": _master(root, "T20", "Dark", "2021-02-14", exposure=600, CALSTAT="BM"),
        "dark_warm": _master(root, "T20", "Dark", "2021-02-14", exposure=300, temp=-10, CALSTAT="BM"),
        "flat_ha": _master(root, "T20", "Flat", "2021-02-14", exposure=46, filter="Ha"),
        "flat_red": _master(root, "T20", "Flat", "2021-02-14", exposure=5, filter="Red"),
        "t05_bias": _master(root, "T05", "Bias", "2021-02-14"),
    }
    made["badpix300"] = _master(root, "T20", "Badpix", "2020-04", exposure=300)
    return root, made


def test_index(library):
    root, made = library
    lib = CalibrationLibrary(root)
    assert len(lib) == len(made)
    by_path = {e.path: e for e in lib}
    dark = by_path[made["dark900"]]
    assert (dark.kind, dark.telescope, dark.binning, dark.shape) == ("dark", "T20", (1, 1), SHAPE)
    assert (dark.exposure, dark.set_temperature, dark.bias_subtracted) == (900.0, -15.0, True)
    assert dark.date.isot.startswith("2021-02-14")
    assert by_path[made["dark300"]].bias_subtracted is False
    assert by_path[made["flat_red"]].filter == "Red"
    assert by_path[made["t05_bias"]].telescope == "T05"
    assert by_path[made["badpix300"]].kind == "badpix"
    assert "dark" in lib.summary() and "Master_Flat_Ha" in lib.summary()


def test_select_prefers_equal_exposure_and_matching_everything(library):
    root, made = library
    lib = CalibrationLibrary(root, max_age=2000)
    choice = lib.select(_light(exposure=300, filter="Ha"))
    assert choice.dark.path == made["dark300"]  # equal exposure beats a newer, longer dark; -10 C excluded
    assert "same exposure" in choice.reasons["dark"]
    assert choice.bias.path == made["bias_new"]  # nearest date
    assert choice.flat.path == made["flat_ha"]
    assert choice.bad_pixels.path == made["badpix300"]  # the map named like the chosen dark
    assert "made from the chosen dark" in choice.reasons["bad_pixels"]
    assert choice.paths()["flat"] == made["flat_ha"]


def test_select_nearest_longer_then_shorter_dark(library):
    root, made = library
    lib = CalibrationLibrary(root, max_age=2000)
    assert lib.select(_light(exposure=450, filter="Red")).dark.path == made["dark600"]
    with pytest.warns(AstrophotUserWarning, match="shorter than the light"):
        choice = lib.select(_light(exposure=1200))
    assert choice.dark.path == made["dark900"]
    assert any("shorter" in w for w in choice.warnings)


def test_select_warns_on_stale_masters(library):
    root, _ = library
    lib = CalibrationLibrary(root, max_age=30)
    with pytest.warns(AstrophotUserWarning, match="days from the light"):
        choice = lib.select(_light(exposure=900, date="2021-06-01"))
    assert len(choice.warnings) >= 1


def test_nothing_suitable_says_what_was_looked_for_and_what_exists(library):
    root, _ = library
    lib = CalibrationLibrary(root)
    with pytest.raises(CalibrationError) as info:
        lib.select(_light(filter="OIII"))
    message = str(info.value)
    assert "raw-light.fit" in message and "no master flat fits" in message
    assert "filter 'OIII'" in message and "Master_Flat_Ha" in message and "Master_Flat_Red" in message
    with pytest.raises(CalibrationError, match=r"binning 3x3.*for their binning"):
        lib.select(_light(binning=3))
    optional = lib.select(_light(filter="OIII"), require=("bias", "dark"))
    assert optional.flat is None and "no master flat fits" in optional.reasons["flat"]
    with pytest.raises(CalibrationError, match="not a directory"):
        CalibrationLibrary(root / "missing")


def test_astrophot_masters_and_bad_pixel_maps_are_indexed(tmp_path):
    darks, truth = make_dark_stack(3, shape=(20, 30), exposure=120, seed=1)
    dark = make_master_dark(darks)
    folder = tmp_path / "mine"
    folder.mkdir()
    dark_path = write_frame(dark, folder / "dark_120s.fits")
    write_frame(find_bad_pixels(dark), folder / "bpm.fits")
    (folder / "notes.fits").write_bytes(b"not fits" * 400)
    lib = CalibrationLibrary(tmp_path)
    kinds = sorted(e.kind for e in lib)
    assert kinds == ["badpix", "dark"]
    assert {e.origin for e in lib} == {"astrophot"}
    assert len(lib.skipped) == 1 and lib.skipped[0][0].name == "notes.fits"
    light = darks[0].copy()
    light.meta["IMAGETYP"] = "Light Frame"
    choice = lib.select(light, require=("dark",))
    assert choice.dark.path == dark_path and choice.bias is None
    assert isinstance(choice.dark.read(), MasterDark)
    assert choice.bad_pixels.path.name == "bpm.fits"


def test_simulated_night_library(tmp_path):
    night = simulate_night(tmp_path, n_lights=2, shape=(48, 64), seed=3, filters=("Red",))
    lib = CalibrationLibrary(night.library)
    for light in night.lights:
        choice = lib.select(light)
        assert choice.bias.path == night.masters["bias"]
        assert choice.dark.path == night.masters["dark"]
        assert choice.flat.path == night.masters["flats"]["Red"]
