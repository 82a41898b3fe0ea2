# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Quality records, frame selection and the report, on a simulated night with bad frames."""

import math

import numpy as np
import pytest
from astropy.table import Table

from astrophot import read_frame
from astrophot.analysis import (
    DEFAULT_RULES,
    QualityRecord,
    assess_quality,
    select_frames,
    summarize_quality,
    write_quality_report,
)
from astrophot.analysis.quality import example_records
from astrophot.datasets import simulate_night
from astrophot.exceptions import FrameWriteError

from ._truthcal import calibrate_from_truth

#: The reason a deliberately bad frame must be rejected for.
EXPECTED = {"defocused": "FWHM", "trailed": "ellipticity", "clouded": "transparency"}


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("night")
    night = simulate_night(
        root / "night",
        filters=("Red",),
        n_lights=8,
        shape=(300, 400),
        bad_frames=("defocused", "trailed", "clouded"),
        n_bias=2,
        n_darks=2,
        n_flats=2,
        seed=5,
    )
    frames, truths = [], []
    for path in night.lights:
        truth = night.truth_for(path)
        frame = calibrate_from_truth(read_frame(path), night, frame_truth=truth)
        frame.source_path = str(path)
        frames.append(frame)
        truths.append(truth)
    records = [assess_quality(frame) for frame in frames]
    return frames, truths, records


def test_records_match_truth(night):
    frames, truths, records = night
    for frame, truth, record in zip(frames, truths, records):
        assert isinstance(record, QualityRecord)
        assert record.file == frame.source_path
        assert record.filter == "Red" and record.exposure_time == truth.exposure
        assert record.date_obs == truth.date_obs.isot[:22] or record.date_obs.startswith(
            truth.date_obs.isot[:19]
        )
        assert record.mjd == pytest.approx(truth.date_obs.mjd, abs=1e-6)
        assert record.unit == "electron"
        assert record.background == pytest.approx(truth.sky_level, rel=0.02)
        noise = math.sqrt(truth.sky_level + 10.0**2)
        assert record.sky_noise == pytest.approx(noise, rel=0.06)
        if truth.bad_reason != "defocused":
            assert record.fwhm == pytest.approx(truth.psf.fwhm, rel=0.05)
        else:
            assert record.fwhm == pytest.approx(truth.psf.fwhm, rel=0.08)
        assert abs(record.ellipticity - truth.psf.ellipticity) < 0.03
        assert record.fwhm_arcsec == pytest.approx(record.fwhm * truth.scale, rel=0.01)
        assert record.n_stars > 20 and record.n_psf_stars > 5
        assert math.isfinite(record.limiting_magnitude)
        # the sky gradient across the frame diagonal (electrons per pixel)
        slope = math.hypot(*truth.sky_slope) * math.hypot(*frame.shape)
        assert record.background_gradient == pytest.approx(slope, rel=0.25, abs=2.0)
        assert record.saturated_fraction < 0.01
        assert record.airmass is None and record.moon_separation is None


def test_transparency_tracks_the_clouds(night):
    _, truths, records = night
    table = select_frames(records)
    truth_ratio = np.array([t.transparency for t in truths]) / np.median([t.transparency for t in truths])
    sharp = np.array([t.bad_reason not in ("defocused", "trailed") for t in truths])
    np.testing.assert_allclose(table["transparency"][sharp], truth_ratio[sharp], atol=0.1)
    # a wide PSF needs a wide aperture, which collects neighbours too: a rougher estimate
    np.testing.assert_allclose(table["transparency"][~sharp], truth_ratio[~sharp], atol=0.25)


def test_select_frames_rejects_every_bad_frame_and_no_good_one(night):
    _, truths, records = night
    table = select_frames(records)
    assert len(table) == len(truths)
    for row, truth in zip(table, truths):
        if truth.bad_reason is None:
            assert row["accepted"], row["reason"]
            assert row["reason"] == "" and 0 < row["weight"] <= 1
        else:
            assert not row["accepted"]
            assert EXPECTED[truth.bad_reason] in row["reason"], (truth.bad_reason, row["reason"])
            assert row["weight"] == 0
    good = np.array([t.bad_reason is None for t in truths])
    assert table["weight"][good].max() == 1.0
    # the most severe reason comes first for the two PSF failures
    for row, truth in zip(table, truths):
        if truth.bad_reason in ("defocused", "trailed"):
            assert row["reason"].startswith(EXPECTED[truth.bad_reason])


def test_weights_follow_signal_to_noise(night):
    _, truths, records = night
    table = select_frames(records)
    ok = np.asarray(table["accepted"])
    raw = table["transparency"][ok] ** 2 / (table["fwhm"][ok] ** 2 * table["sky_noise"][ok] ** 2)
    np.testing.assert_allclose(table["weight"][ok], raw / raw.max())


def test_fixed_rules(night):
    _, truths, records = night
    fwhm = np.array([r.fwhm for r in records])
    limit = float(np.median(fwhm))
    table = select_frames(records, rules={"robust": False, "max_fwhm": limit})
    np.testing.assert_array_equal(table["accepted"], fwhm <= limit)
    assert all("fixed limit" in r for r in table["reason"][fwhm > limit])
    few = select_frames(records, rules={"robust": False, "min_stars": 10**6})
    assert not np.any(few["accepted"])
    with pytest.raises(ValueError, match="unknown rules"):
        select_frames(records, rules={"max_fhwm": 3})
    # too few frames for robust statistics: nothing is rejected by them
    two = select_frames(records[:2])
    assert np.all(two["accepted"])
    assert DEFAULT_RULES["min_frames"] == 3


def test_summarize_quality(night):
    _, _, records = night
    table = summarize_quality(records)
    assert isinstance(table, Table) and len(table) == len(records)
    assert table["fwhm"].unit == "pix" and table["exposure_time"].unit == "s"
    np.testing.assert_allclose(table["fwhm"], [r.fwhm for r in records])
    as_dicts = summarize_quality([r.to_dict() for r in records])
    assert as_dicts.colnames == table.colnames
    with pytest.raises(ValueError, match="unknown quality fields"):
        summarize_quality([dict(records[0].to_dict(), seeing=1.0)])
    with pytest.raises(TypeError):
        summarize_quality([1, 2])


def test_report(tmp_path, night):
    frames, truths, records = night
    paths = write_quality_report(records, tmp_path / "report", frames=frames)
    assert paths["csv"].exists() and paths["html"].exists()
    table = Table.read(paths["csv"], format="ascii.csv")
    assert len(table) == len(records)
    assert [str(v) == "True" for v in table["accepted"]] == [t.bad_reason is None for t in truths]
    for png in paths["plots"]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = paths["html"].read_text()
    assert html.count('alt="thumbnail"') == len(frames)
    assert len(paths["plots"]) == 5  # fwhm, ellipticity, background, stars, airmass
    assert html.count("data:image/png;base64,") == len(frames) + len(paths["plots"])
    assert "transparency" in html and "<script" not in html
    with pytest.raises(FrameWriteError, match="exists"):
        write_quality_report(records, tmp_path / "report")
    again = write_quality_report(select_frames(records), tmp_path / "report", overwrite=True)
    # thumbnails from the file column when frames are not given (the raw files exist)
    assert again["html"].read_text().count('alt="thumbnail"') == len(frames)
    with pytest.raises(ValueError, match="frames given"):
        write_quality_report(records, tmp_path / "other", frames=frames[:2])


def test_example_records_report(tmp_path):
    paths = write_quality_report(example_records(), tmp_path)
    html = paths["html"].read_text()
    assert html.count("(no image)") == 6
    assert "1 rejected" in html
