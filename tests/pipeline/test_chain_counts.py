# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A light through the night's per-frame stages fits its sky once and hashes each
distinct pixel array once (issue 10, "Must show"): counted, not timed.
"""

import collections

import numpy as np
import pytest

import astrophot as ap
from astrophot.analysis import background as background_module
from astrophot.analysis import stars as stars_module
from astrophot.datasets import make_raw_frame
from astrophot.frames import _base


@pytest.fixture
def counters(monkeypatch):
    """sha256 passes per distinct pixel array, and sky fits (estimate_background; find_stars' own mesh)."""
    counts = {"hashes": collections.Counter(), "estimate_background": 0, "stars mesh": 0}
    real_hash = _base.data_checksum

    def counting_hash(data):
        digest = real_hash(data)
        counts["hashes"][digest] += 1
        return digest

    real_estimate = background_module.estimate_background

    def counting_estimate(*args, **kwargs):
        counts["estimate_background"] += 1
        return real_estimate(*args, **kwargs)

    real_mesh = stars_module.mesh_background

    def counting_mesh(*args, **kwargs):
        counts["stars mesh"] += 1
        return real_mesh(*args, **kwargs)

    monkeypatch.setattr(_base, "data_checksum", counting_hash)
    monkeypatch.setattr(ap.analysis, "estimate_background", counting_estimate)
    monkeypatch.setattr(ap, "estimate_background", counting_estimate)
    monkeypatch.setattr(stars_module, "mesh_background", counting_mesh)
    return counts


def test_a_light_fits_its_sky_once_and_hashes_each_array_once(counters, tmp_path):
    raw, _ = make_raw_frame(
        target="Cygnus Loop", shape=(400, 600), scale=9.0, rotation=20.0, synthetic_density=300.0, seed=3
    )
    frame = ap.calibrate_frame(raw, unit="adu", gain=1.0, read_noise=8.0)
    frame = ap.fix_bad_pixels(frame)
    frame = ap.reject_cosmic_rays(frame)
    cleaned = frame
    frame = ap.add_metadata(frame)
    # as the night's per-frame task does (astrophot.pipeline._tasks._analyse)
    background = ap.estimate_background(frame)
    stars = ap.find_stars(frame, background=background)
    record = ap.assess_quality(frame, stars=stars, background=background)
    solved = ap.solve_astrometry(frame, stars=stars, backend="matcher", catalog="demo", scale=9.0)
    assert solved.solution["verified"] and record.n_stars > 50
    # written as the night writes them: the solved frame refers to the calibrated file's pixels
    ap.write_frame(frame, tmp_path / "cal.fits")
    ap.write_frame(solved, tmp_path / "nav.fits", pixels_from=tmp_path / "cal.fits")
    assert counters["estimate_background"] == 1
    assert counters["stars mesh"] == 0  # neither find_stars nor assess_quality fitted the sky again
    # raw, calibrated, repaired, cleaned (= metadata = solved: the header-only steps share its pixels),
    # background map, RMS map: each hashed once, the writes included
    repeated = {digest: n for digest, n in counters["hashes"].items() if n > 1}
    assert not repeated, repeated
    assert frame.data is cleaned.data and solved.data is frame.data
    assert solved.checksum() == cleaned.checksum() == ap.frames.data_checksum(np.array(solved.data))


def test_the_night_task_fits_the_sky_once(counters, tmp_path):
    """process_light, the night's task, on a light: one sky fit for the stars and the quality record."""
    from astrophot.pipeline import default_config
    from astrophot.pipeline._tasks import process_light

    raw, _ = make_raw_frame(shape=(300, 400), fwhm=3.0, seed=4)
    raw_path = ap.write_frame(raw, tmp_path / "raw-T20-jdoe-M31-20240101-201500-Red-BIN1-E-300-001.fit")
    config = default_config()
    config["calibrate"]["unit"] = "adu"
    config["solve"]["enabled"] = False
    names = ("calibrated", "solved", "stars", "quality")
    task = {
        "inputs": {"raw": raw_path, "bias": None, "dark": None, "flat": None, "bad_pixels": None},
        "outputs": {
            name: tmp_path
            / f"{name}.{'ecsv' if name == 'stars' else 'json' if name == 'quality' else 'fits'}"
            for name in names
        },
        "config": config,
        "resume": False,
    }
    result = process_light(task)
    assert result["status"] == "done", result["reason"]
    assert result["quality"]["n_stars"] > 20
    assert counters["estimate_background"] == 1 and counters["stars mesh"] == 0
