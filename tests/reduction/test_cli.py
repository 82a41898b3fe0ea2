# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The calibrate, add-metadata, fix-badpix and cosmic-rays subcommands on a simulated night."""

import hashlib
import time

import numpy as np
import pytest

from astrophot import CalibratedFrame, DQFlag, read_frame, write_frame
from astrophot.cli.main import ap_fix_cosmic_rays, main


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    from astrophot.datasets import simulate_night

    root = tmp_path_factory.mktemp("night")
    return simulate_night(root, shape=(96, 128), n_lights=1, n_bias=3, n_darks=3, n_flats=3, seed=2)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_calibrate_from_library(night, tmp_path):
    raws = [str(p) for p in night.lights]
    before = [_digest(p) for p in night.lights]
    assert main(["calibrate", *raws, "--library", str(night.root / "library"), "-o", str(tmp_path)]) == 0
    outputs = sorted(tmp_path.glob("cal-*.fits"))
    assert len(outputs) == len(raws)
    assert [_digest(p) for p in night.lights] == before  # raw files untouched
    frame = read_frame(outputs[0])
    assert isinstance(frame, CalibratedFrame) and frame.unit == "electron"
    step = frame.provenance.steps[-1]
    roles = {ref.role: ref.path for ref in step.inputs}
    assert roles["dark"] == str(night.masters["dark"])
    assert step.outcome["dark_includes_bias"] is True  # the simulated library's dark is CALSTAT 'M'
    # a second run keeps the up-to-date product (batch policy): exit 0, file unchanged
    kept = _digest(outputs[0])
    assert main(["calibrate", raws[0], "--library", str(night.root / "library"), "-o", str(tmp_path)]) == 0
    assert _digest(outputs[0]) == kept


def test_calibrate_explicit_masters_then_each_stage(night, tmp_path, capsys):
    from astrophot.calibration import find_bad_pixels

    raw = night.lights[0]
    bpm_path = write_frame(find_bad_pixels(read_frame(night.masters["dark"])), tmp_path / "bpm.fits")
    flat = night.masters["flats"]["Ha"] if "-Ha-" in raw.name else night.masters["flats"]["Red"]
    cal = tmp_path / "cal.fits"
    args = ["calibrate", str(raw), "--bias", str(night.masters["bias"]), "--dark", str(night.masters["dark"])]
    assert main([*args, "--flat", str(flat), "-o", str(cal)]) == 0

    meta = tmp_path / "meta.fits"
    assert main(["add-metadata", str(cal), str(meta)]) == 0
    annotated = read_frame(meta)
    assert annotated.header["TELESCOP"] == "iTelescope T20"
    assert annotated.header["OBSERVER"] == "astrophot"
    assert 1 <= annotated.header["AIRMASS"] < 3

    fixed = tmp_path / "fixed.fits"
    assert main(["fix-badpix", str(meta), str(bpm_path), str(fixed), "--deltapix", "2"]) == 0
    repaired = read_frame(fixed)
    assert repaired.provenance.steps[-1].parameters["box"] == 5

    cleaned = tmp_path / "cleaned.fits"
    with pytest.raises(SystemExit) as exit_info:
        ap_fix_cosmic_rays([str(fixed), str(cleaned)])
    assert exit_info.value.code == 0
    final = read_frame(cleaned)
    assert [s.function.split(".")[-1] for s in final.provenance.steps] == [
        "calibrate_frame",
        "add_metadata",
        "fix_bad_pixels",
        "reject_cosmic_rays",
    ]
    assert final.header["CR_NPIX"] == int(np.count_nonzero(final.flags & DQFlag.COSMIC_RAY))


def test_add_metadata_never_writes_raw_in_place(night, capsys):
    raw = night.lights[0]
    before = _digest(raw)
    assert main(["add-metadata", str(raw), "--in-place"]) == 1
    assert "raw" in capsys.readouterr().err
    assert _digest(raw) == before
    # without -o the product goes beside the raw file under a new name; the raw file is untouched
    assert main(["add-metadata", str(raw)]) == 0
    beside = raw.with_name("meta-" + raw.name.split("-", 1)[1]).with_suffix(".fits")
    assert "AIRMASS" in read_frame(beside).header
    assert _digest(raw) == before
    beside.unlink()
    beside.with_suffix(".asdf").unlink()


def test_add_metadata_resolve_offline_is_quick(tmp_path, capsys):
    meta = {"OBJECT": "M17", "EXPTIME": 60.0, "DATE-OBS": "2018-07-04T14:03:03", "TELESCOP": "T33"}
    frame = CalibratedFrame(np.zeros((4, 4), dtype=np.float32), meta=meta)
    path = write_frame(frame, tmp_path / "m17.fits")
    start = time.perf_counter()
    code = main(["add-metadata", str(path), str(tmp_path / "out.fits"), "--resolve", "--no-name-cache"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert time.perf_counter() - start < 10
    assert len(err) == 1 and "could not resolve 'M17'" in err[0]
    # with coordinates on the command line it succeeds, offline
    assert main(["add-metadata", str(path), str(tmp_path / "out.fits"), "--coordinates", "275.2 -16.18"]) == 0


def test_seed_form_and_wrong_inputs(night, tmp_path, capsys):
    """ap_calibrate RAW MBIAS MDARK OUTPUT works; a master given as a light is refused."""
    raw = night.lights[0]
    out = tmp_path / "seed.fits"
    flat = night.masters["flats"]["Ha"] if "-Ha-" in raw.name else night.masters["flats"]["Red"]
    args = [str(raw), str(night.masters["bias"]), str(night.masters["dark"]), str(out)]
    assert main(["calibrate", *args, "--master_flat", str(flat), "--dark_still_biased", "--fix-badpix"]) == 0
    frame = read_frame(out)
    assert [s.function.split(".")[-1] for s in frame.provenance.steps][-2:] == [
        "calibrate_frame",
        "fix_bad_pixels",
    ]
    assert frame.provenance.steps[-2].parameters["dark_includes_bias"] is True
    assert main(["calibrate", str(night.masters["bias"]), "-o", str(tmp_path / "x.fits")]) == 1
    assert "is a MasterBias, not a raw light frame" in capsys.readouterr().err
