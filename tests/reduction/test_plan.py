# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""prepare_calibration: a picklable plan, masters read and hashed once, the same result as the keywords."""

import pickle

import numpy as np
import pytest

import astrophot.frames._base as frames_base
import astrophot.io as io
from astrophot import CalibrationPlan, calibrate_frame, prepare_calibration, write_frame
from astrophot.exceptions import FrameTypeError


def _same(a, b):
    assert np.array_equal(a.data, b.data)
    assert np.array_equal(a.uncertainty.array, b.uncertainty.array)
    assert np.array_equal(a.flags, b.flags)
    assert np.array_equal(a.mask, b.mask)
    assert a.checksum() == b.checksum()


@pytest.fixture(scope="module")
def master_paths(sim, tmp_path_factory):
    root = tmp_path_factory.mktemp("masters")
    frames = {"bias": sim.bias, "dark": sim.dark_bm, "flat": sim.flat, "bad_pixels": sim.bad_pixels}
    return {name: write_frame(frame, root / f"{name}.fits") for name, frame in frames.items()}


def test_masters_as_paths_read_and_hashed_once_for_ten_lights(sim, master_paths, monkeypatch):
    """Ten lights with masters given as paths: each master file read once, each pixel array hashed once."""
    reads, hashes = [], []
    real_read, real_hash = io.read_frame, frames_base.data_checksum

    def counting_read(path, *args, **kwargs):
        reads.append(str(path))
        return real_read(path, *args, **kwargs)

    def counting_hash(data):
        hashes.append(id(data))
        return real_hash(data)

    monkeypatch.setattr(io, "read_frame", counting_read)
    monkeypatch.setattr(frames_base, "data_checksum", counting_hash)
    plan = prepare_calibration(**master_paths, gain=sim.gain, read_noise=sim.read_noise)
    lights = [sim.raw.copy() for _ in range(10)]
    products = [calibrate_frame(raw, plan=plan) for raw in lights]
    assert sorted(reads) == sorted(str(p) for p in master_paths.values())
    # 4 masters + 10 lights; the products' checksums stream out of the kernel
    assert len(hashes) == 4 + 10
    assert len({p.checksum() for p in products}) == 1
    assert len(hashes) == 14
    reference = calibrate_frame(
        sim.raw,
        bias=sim.bias,
        dark=sim.dark_bm,
        flat=sim.flat,
        bad_pixels=sim.bad_pixels,
        gain=sim.gain,
        read_noise=sim.read_noise,
    )
    _same(products[-1], reference)
    refs = {r.role: r.sha256 for r in products[0].provenance.steps[-1].inputs}
    assert refs["bias"] == sim.bias.checksum() and refs["flat"] == sim.flat.checksum()


def test_plan_pickles_and_gives_the_same_frame(sim):
    plan = prepare_calibration(
        bias=sim.bias,
        dark=sim.dark_bm,
        flat=sim.flat,
        bad_pixels=sim.bad_pixels,
        gain=sim.gain,
        read_noise=5.0,
    )
    first = calibrate_frame(sim.raw, plan=plan)  # fills the plan's prepared arrays
    blob = pickle.dumps(plan)
    # the prepared arrays stay behind: the pickle holds the masters, not their derived planes
    masters_bytes = sum(f.data.nbytes for f in plan.masters.values())
    assert len(blob) < 3 * masters_bytes
    clone = pickle.loads(blob)
    assert isinstance(clone, CalibrationPlan)
    assert clone.flat.checksum() == sim.flat.checksum()
    _same(calibrate_frame(sim.raw, plan=clone), first)
    assert "bias=" in repr(plan)


def test_threads_do_not_change_the_result(sim):
    plan = prepare_calibration(
        bias=sim.bias,
        dark=sim.dark_bm,
        flat=sim.flat,
        bad_pixels=sim.bad_pixels,
        gain=sim.gain,
        read_noise=5.0,
    )
    _same(
        calibrate_frame(sim.raw, plan=plan, parallel=False), calibrate_frame(sim.raw, plan=plan, parallel=3)
    )


def test_plan_and_keywords_together_refused(sim):
    plan = prepare_calibration(bias=sim.bias, gain=sim.gain)
    with pytest.raises(ValueError, match="dark, unit given with plan="):
        calibrate_frame(sim.raw, plan=plan, dark=sim.dark_bm, unit="adu")
    with pytest.raises(TypeError, match="CalibrationPlan"):
        calibrate_frame(sim.raw, plan={"bias": sim.bias})
    with pytest.raises(FrameTypeError, match="bias must be a MasterBias"):
        prepare_calibration(bias=sim.flat)
    with pytest.raises(ValueError, match="unit must be"):
        prepare_calibration(unit="photon")
