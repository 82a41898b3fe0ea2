# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The calibration subcommands: results, and one clear line on stderr for bad input."""

import numpy as np
import pytest
from astropy.io import fits

from astrophot.calibration import BadPixelRegions
from astrophot.cli import main as cli
from astrophot.datasets import make_bias_stack, make_dark_stack, make_flat_stack
from astrophot.frames import BadPixelMap, DQFlag, MasterBias, MasterDark, MasterFlat
from astrophot.io import read_frame

SHAPE = (60, 80)


def _write(frames, directory, stem):
    directory.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        fits.PrimaryHDU(frame.data, header=frame.header).writeto(directory / f"{stem}_{i:02d}.fit")
    return directory


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    biases, truth = make_bias_stack(5, shape=SHAPE, seed=31, telescope="T05")
    det = truth.detector
    darks, _ = make_dark_stack(5, shape=SHAPE, exposure=120, seed=31, detector=det, telescope="T05")
    flats, _ = make_flat_stack(5, filter="Ha", shape=SHAPE, seed=31, detector=det, telescope="T05")
    return {
        "bias": _write(biases, root / "bias", "bias"),
        "dark": _write(darks, root / "dark", "dark"),
        "flat": _write(flats, root / "flat", "flat"),
        "detector": det,
    }


def _run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err):
    lines = [
        line for line in err.splitlines() if line.strip() and "WARNING" not in line and "INFO" not in line
    ]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_combine_read_noise_badpix_badcols(raw, tmp_path, capsys):
    bias, dark, flat = tmp_path / "bias.fits", tmp_path / "dark.fits", tmp_path / "flat.fits"
    code, out, _ = _run(["combine", str(raw["bias"]), str(bias)], capsys)
    assert code == 0 and "master bias of 5 frames" in out
    assert isinstance(read_frame(bias), MasterBias)
    code, out, _ = _run(["combine", str(raw["dark"]), str(dark), "--bias", str(bias)], capsys)
    assert code == 0 and "CALSTAT=BM" in out
    assert read_frame(dark).bias_subtracted is True and isinstance(read_frame(dark), MasterDark)
    code, out, _ = _run(
        ["combine", str(raw["flat"]), str(flat), "--bias", str(bias), "--dark", str(dark)], capsys
    )
    assert code == 0 and "master flat" in out
    assert isinstance(read_frame(flat), MasterFlat) and read_frame(flat).header["CALSTAT"] == "BDM"

    first, second = sorted(raw["bias"].iterdir())[:2]
    plot = tmp_path / "rn.png"
    code, out, _ = _run(["read-noise", str(first), str(second), "--plot", str(plot)], capsys)
    assert code == 0 and "electron" in out and "EGAIN" in out and plot.stat().st_size > 1000
    value = float(out.split()[2])
    assert value == pytest.approx(raw["detector"].read_noise, rel=0.05)

    yml = tmp_path / "user.yml"
    yml.write_text("bad_rectangles:\n  - [2, 3, 60, 62]\n")
    bpm = tmp_path / "bpm.fits"
    code, out, _ = _run(
        ["find-badpix", str(dark), str(bpm), "--user_badpix", str(yml), "--flat", str(flat)], capsys
    )
    assert code == 0 and "user pixels" in out
    bpm_frame = read_frame(bpm)
    assert isinstance(bpm_frame, BadPixelMap) and bpm_frame.count(DQFlag.USER) == 6
    det = raw["detector"]
    assert sorted(np.flatnonzero(np.all(bpm_frame.data & DQFlag.BAD_COLUMN, axis=0))) == sorted(
        det.bad_columns
    )

    code, out, _ = _run(["find-badcols", str(dark)], capsys)
    assert code == 0
    regions = BadPixelRegions.from_yaml(out)
    assert [c - 1 for c in regions.columns] == sorted(det.bad_columns)
    target = tmp_path / "cols.yml"
    code, out, _ = _run(["find-badcols", str(dark), "-o", str(target)], capsys)
    assert code == 0 and BadPixelRegions.from_yaml(target) == regions


def test_seed_alias_runs(raw, tmp_path):
    out = tmp_path / "m.fits"
    with pytest.raises(SystemExit) as info:
        cli.ap_combine_darks([str(raw["dark"]), str(out), "--temptol", "2"])
    assert info.value.code == 0 and read_frame(out).bias_subtracted is False


def test_bad_inputs_give_one_line(raw, tmp_path, capsys):
    # an empty directory
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run(["combine", str(empty), str(tmp_path / "m.fits")], capsys)
    assert code == 1 and "empty" in _one_error_line(err) and "no FITS files" in err

    # mixed exposures
    mixed = tmp_path / "mixed"
    darks, truth = make_dark_stack(2, shape=SHAPE, exposure=60, seed=32)
    longer, _ = make_dark_stack(1, shape=SHAPE, exposure=90, seed=32, detector=truth.detector)
    _write(darks, mixed, "short")
    _write(longer, mixed, "long")
    code, _, err = _run(["combine", str(mixed), str(tmp_path / "m.fits")], capsys)
    line = _one_error_line(err)
    assert code == 1 and "exposure time" in line and "long_00.fit" in line

    # mixed shapes and binnings
    small, _ = make_dark_stack(1, shape=(30, 80), exposure=60, seed=32)
    shapes = tmp_path / "shapes"
    _write(darks, shapes, "dark")
    _write(small, shapes, "small")
    code, _, err = _run(["combine", str(shapes), str(tmp_path / "m.fits")], capsys)
    line = _one_error_line(err)
    assert code == 1 and "shape" in line and "small_00.fit" in line
    binned_dir = tmp_path / "binned"
    _write(darks, binned_dir, "dark")
    header = fits.getheader(binned_dir / "dark_00.fit")
    header["XBINNING"] = header["YBINNING"] = 2
    fits.PrimaryHDU(fits.getdata(binned_dir / "dark_00.fit"), header=header).writeto(
        binned_dir / "dark_b2.fit"
    )
    code, _, err = _run(["combine", str(binned_dir), str(tmp_path / "m.fits")], capsys)
    line = _one_error_line(err)
    assert code == 1 and "binning" in line and "dark_b2.fit" in line

    # a missing EXPTIME
    noexp = tmp_path / "noexp"
    _write(darks, noexp, "dark")
    header = fits.getheader(noexp / "dark_01.fit")
    del header["EXPTIME"], header["EXPOSURE"]
    fits.PrimaryHDU(fits.getdata(noexp / "dark_01.fit"), header=header).writeto(
        noexp / "dark_01.fit", overwrite=True
    )
    code, _, err = _run(["combine", str(noexp), str(tmp_path / "m.fits"), "--type", "dark"], capsys)
    line = _one_error_line(err)
    assert code == 1 and "dark_01.fit" in line and "EXPTIME" in line

    # a broken YAML file
    broken = tmp_path / "broken.yml"
    broken.write_text("bad_columns: [1, 2\n")
    dark_master = tmp_path / "dark.fits"
    assert cli.main(["combine", str(raw["dark"]), str(dark_master)]) == 0
    capsys.readouterr()
    code, _, err = _run(
        ["find-badpix", str(dark_master), str(tmp_path / "b.fits"), "--user-badpix", str(broken)], capsys
    )
    line = _one_error_line(err)
    assert code == 1 and "broken.yml" in line and "line 2" in line

    # a file that is not FITS, a missing file
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"junk" * 1000)
    code, _, err = _run(["read-noise", str(junk), str(junk)], capsys)
    assert code == 1 and "junk.fits" in _one_error_line(err)
    code, _, err = _run(["find-badcols", str(tmp_path / "nope.fits")], capsys)
    assert code == 1 and "nope.fits" in _one_error_line(err)


def test_calib_index(tmp_path, capsys):
    from astrophot.datasets import simulate_night

    night = simulate_night(tmp_path / "night", n_lights=1, shape=(48, 64), seed=33, filters=("Red",))
    code, out, _ = _run(["calib-index", str(night.library)], capsys)
    assert code == 0 and "Master_Dark" in out and "Master_Flat_Red" in out
    code, out, _ = _run(["calib-index", str(night.library), str(night.lights[0])], capsys)
    assert code == 0 and str(night.masters["dark"]) in out and "nearest longer exposure" in out
    other = tmp_path / "other"
    other.mkdir()
    code, _, err = _run(["calib-index", str(other), str(night.lights[0])], capsys)
    line = _one_error_line(err)
    assert code == 1 and "no master bias fits" in line


def test_memory_size_parsing():
    from astrophot.cli.calibration import memory_size

    assert memory_size("2GiB") == 2 * 2**30
    assert memory_size("500MB") == 500_000_000
    assert memory_size("123") == 123
    with pytest.raises(Exception, match="not a memory size"):
        memory_size("lots")
