# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Issue 16, findings 1 and 6 in real subprocesses: each warning path the command line meets is
shown once on stderr naming the file, and messages (errors and warnings) name the command
line's flags, not the library's keywords.
"""

import re
import shutil

import pytest
from astropy.io import fits

from astrophot.cli._common import _CLI_WORDS, cli_words
from tests.cli.test_batch import astrophot

#: Library keyword advice that must not reach the command line.
PYTHON_WORDS = re.compile(r"\b(pass|give) [a-z_]+=|=True\b|unit='adu'|calibrate_frame\(")


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    from astrophot.datasets import simulate_night

    root = tmp_path_factory.mktemp("night")
    return simulate_night(root, shape=(64, 96), n_lights=1, n_bias=3, n_darks=3, n_flats=3, seed=7)


def _warnings(proc, phrase):
    return [line for line in proc.stderr.splitlines() if "WARNING" in line and phrase in line]


def _light(night, tmp_path, sequence, **cards):
    """A copy of the Red light with an iTelescope name ending in ``sequence`` and ``cards`` set."""
    red = next(p for p in night.lights if "-Red-" in p.name)
    path = tmp_path / re.sub(r"-\d{3}\.fit$", f"-{sequence}.fit", red.name)
    shutil.copy(red, path)
    with fits.open(path, mode="update") as hdul:
        for key, value in cards.items():
            if value is None:
                hdul[0].header.remove(key, ignore_missing=True, remove_all=True)
            else:
                hdul[0].header[key] = value
    return path


def _masters(night):
    return ["--bias", night.masters["bias"], "--dark", night.masters["dark"]]


def test_combine_warns_once_naming_the_frame_dropped_for_ccd_temp(night, tmp_path):
    darks = [shutil.copy(p, tmp_path / p.name) for p in night.darks]
    fits.setval(darks[-1], "CCD-TEMP", value=-5.0)
    proc = astrophot("combine", *darks, tmp_path / "mdark.fits")
    assert proc.returncode == 0, proc.stderr
    lines = _warnings(proc, "CCD-TEMP")
    assert len(lines) == 1 and str(darks[-1]) in lines[0], proc.stderr


def test_combine_of_one_frame_warns_naming_it(night, tmp_path):
    proc = astrophot("combine", night.darks[0], tmp_path / "mdark.fits")
    assert proc.returncode == 0, proc.stderr
    lines = _warnings(proc, "made of one frame")
    assert len(lines) == 1 and night.darks[0].name in lines[0], proc.stderr


def test_calibrate_warns_once_per_frame_for_dark_extrapolation_and_set_temperature(night, tmp_path):
    long = _light(night, tmp_path, "003", EXPTIME=9000.0, EXPOSURE=9000.0)
    cold = _light(night, tmp_path, "004", **{"SET-TEMP": -25.0})
    proc = astrophot("calibrate", long, cold, *_masters(night), "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    extrapolated = _warnings(proc, "is extrapolated")
    assert len(extrapolated) == 1 and long.name in extrapolated[0], proc.stderr
    temperature = _warnings(proc, "set temperature")
    assert len(temperature) == 1 and cold.name in temperature[0], proc.stderr


def test_calibrate_without_gain_or_read_noise_speaks_in_flags(night, tmp_path):
    bare = tmp_path / "light.fit"  # not an iTelescope name: no telescope table to fall back on
    shutil.copy(_light(night, tmp_path, "005", GAIN=None, EGAIN=None, TELESCOP=None), bare)
    for key in ("RDNOISE", "READNOIS"):
        fits.delval(bare, key) if key in fits.getheader(bare) else None
    proc = astrophot("calibrate", bare, *_masters(night), "-o", tmp_path / "out")
    assert proc.returncode == 1
    assert "--gain" in proc.stderr and "--unit adu" in proc.stderr, proc.stderr
    assert not PYTHON_WORDS.search(proc.stderr), proc.stderr
    proc = astrophot("calibrate", bare, "--gain", "1.5", *_masters(night), "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    lines = _warnings(proc, "no read noise")
    assert len(lines) == 1 and bare.name in lines[0] and "--read-noise" in lines[0], proc.stderr


def test_a_frame_without_its_sidecar_warns_naming_it(night, tmp_path):
    proc = astrophot("calibrate", _light(night, tmp_path, "006"), *_masters(night), "-o", tmp_path / "cal")
    assert proc.returncode == 0, proc.stderr
    (frame,) = (tmp_path / "cal").glob("cal-*.fits")
    frame.with_suffix(".asdf").unlink()
    proc = astrophot("background", frame, "-o", tmp_path / "bkg")
    assert proc.returncode == 0, proc.stderr
    lines = _warnings(proc, "sidecar")
    assert len(lines) == 1 and frame.name in lines[0], proc.stderr


def test_every_library_advice_has_cli_words():
    for python, cli in _CLI_WORDS:
        assert cli_words(f"x: {python}.") == f"x: {cli}."
        assert not PYTHON_WORDS.search(cli), cli
    assert cli_words(
        "could not resolve 'M99' (offline); pass coordinates= or put RA/DEC in the header"
    ).endswith("give --coordinates or put RA/DEC in the header")


def test_the_flags_the_advice_names_exist():
    helps = {c: astrophot(c, "--help").stdout for c in ("combine", "calibrate", "find-badpix")}
    # the CALSTAT warning of combine --type flat --dark and of calibrate names this flag
    assert "--dark-includes-bias" in helps["combine"] and "--dark-includes-bias" in helps["calibrate"]
    assert "--gain" in helps["calibrate"] and "--read-noise" in helps["calibrate"]
    assert "--sigma" in helps["find-badpix"]


def test_run_shows_each_warning_once_and_speaks_in_flags(night, tmp_path):
    lights = tmp_path / "lights"
    lights.mkdir()
    for path in night.lights:
        shutil.copy(path, lights / path.name)
    red = next(p for p in lights.iterdir() if "-Red-" in p.name)
    for key in ("EXPTIME", "EXPOSURE"):
        fits.setval(red, key, value=9000.0)
    proc = astrophot("run", lights, "--library", night.library, "-o", tmp_path / "out")
    assert "Traceback" not in proc.stderr, proc.stderr
    # ccdproc's logging.debug() must not install Python's basicConfig handler beside ours
    assert not [line for line in proc.stderr.splitlines() if line.startswith("WARNING:")], proc.stderr
    extrapolated = [line for line in proc.stderr.splitlines() if "is extrapolated" in line]
    assert len(extrapolated) == 1 and red.name in extrapolated[0], proc.stderr
    assert not PYTHON_WORDS.search(proc.stdout), proc.stdout


def test_the_index_install_hint_speaks_in_flags():
    from astrophot.astrometry._index import INSTALL_HINT
    from astrophot.cli._common import cli_words

    words = cli_words(INSTALL_HINT)
    assert not PYTHON_WORDS.search(words), words
    assert "astrophot solve --index DIR" in words and "ASTROMETRY_INDEX_DIRS" in words
