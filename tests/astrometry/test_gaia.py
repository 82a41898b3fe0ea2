# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Issue 17 finding 3: the cached Gaia cone for the matcher, with proper motion.

The archive is never reached (no network in tests): ``Gaia.launch_job`` of
astroquery is replaced by a stand-in that answers with a VOTable in the
archive's column layout (``source_id, ra, dec, pmra, pmdec, ref_epoch,
phot_g_mean_mag``, proper motions masked for some stars), parsed by
astropy as astroquery parses the archive's answer. The stars are simulated,
with known positions at the frame's epoch and known proper motions.
"""

import io

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io.votable import from_table, parse_single_table, writeto
from astropy.table import Table
from astropy.time import Time

from astrophot import CalibratedFrame
from astrophot.astrometry import _catalog
from astrophot.astrometry._catalog import GAIA_EPOCH, reference_stars
from astrophot.exceptions import AstrometryError


class _FakeArchive:
    """Stands in for ``astroquery.gaia.Gaia.launch_job``: records the ADQL, answers a VOTable."""

    def __init__(self, stars):
        self.stars = stars
        self.queries = []

    def launch_job(self, query, **kwargs):
        self.queries.append(query)
        buffer = io.BytesIO()
        writeto(from_table(self.stars), buffer)
        buffer.seek(0)
        table = parse_single_table(buffer).to_table()
        return type("Job", (), {"get_results": lambda self: table})()


def _gaia_stars(ra, dec, mag, epoch, seed=0):
    """Gaia-like rows (positions at 2016.0) of stars that are at (ra, dec) at ``epoch``."""
    rng = np.random.default_rng(seed)
    n = len(ra)
    pmra = rng.uniform(-300, 300, n)  # mas/yr, times cos(dec) as Gaia gives it
    pmdec = rng.uniform(-300, 300, n)
    years = epoch - GAIA_EPOCH
    dec0 = np.asarray(dec) - pmdec * years / 3.6e6
    ra0 = np.asarray(ra) - pmra * years / 3.6e6 / np.cos(np.radians(dec))
    table = Table(
        {
            "source_id": np.arange(n, dtype=np.int64) + 4_000_000_000,
            "ra": ra0,
            "dec": dec0,
            "pmra": pmra,
            "pmdec": pmdec,
            "ref_epoch": np.full(n, GAIA_EPOCH),
            "phot_g_mean_mag": np.asarray(mag, dtype=float),
        },
        masked=True,
    )
    return table


@pytest.fixture
def archive(monkeypatch, tmp_path):
    """The stand-in archive (set ``archive.stars``) and an empty cache directory."""
    from astroquery.gaia import Gaia

    fake = _FakeArchive(None)
    monkeypatch.setattr(Gaia, "launch_job", fake.launch_job)
    monkeypatch.setattr(_catalog, "gaia_cache_dir", lambda: tmp_path / "gaia")
    return fake


def test_proper_motion_applied_and_one_query_per_field(archive):
    center = SkyCoord(150.0 * u.deg, 30.0 * u.deg)
    rng = np.random.default_rng(1)
    ra = 150.0 + rng.uniform(-0.05, 0.05, 50)
    dec = 30.0 + rng.uniform(-0.05, 0.05, 50)
    epoch = Time("2026-09-01T22:00:00").jyear
    archive.stars = _gaia_stars(ra, dec, np.linspace(9, 15, 50), epoch)
    archive.stars["pmra"].mask[:5] = True  # no astrometric solution: stays where it was in 2016
    archive.stars["pmdec"].mask[:5] = True
    stars, label = reference_stars("gaia", center, 0.1, epoch=epoch)
    assert "Gaia DR3 at epoch 2026.67" in label
    assert len(archive.queries) == 1
    assert "CIRCLE('ICRS', 150.000000, 30.000000, 0.12500)" in archive.queries[0]  # 25 % wider
    assert "pmra, pmdec, ref_epoch" in archive.queries[0]
    # positions at the frame's epoch: the truth, to a micro-arcsecond, for stars with proper motions
    got = SkyCoord(stars["ra"], stars["dec"])
    order = np.argsort(np.linspace(9, 15, 50), kind="stable")
    true = SkyCoord(ra[order] * u.deg, dec[order] * u.deg)
    offsets = got.separation(true).to_value(u.mas)
    assert np.all(offsets[5:] < 1e-3)
    moved = SkyCoord(archive.stars["ra"][:5] * u.deg, archive.stars["dec"][:5] * u.deg)
    assert np.all(got[:5].separation(moved).to_value(u.mas) < 1e-3)
    # another frame of the field (20 arcsec away, a smaller cone) is served by the cache
    nearby = center.spherical_offsets_by(20 * u.arcsec, 0 * u.arcsec)
    again, _ = reference_stars("gaia", nearby, 0.09, epoch=epoch)
    assert len(archive.queries) == 1
    assert 0 < len(again) <= len(stars)


def test_offline_is_a_clear_error(monkeypatch, tmp_path):
    from astroquery.gaia import Gaia

    def offline(query, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(Gaia, "launch_job", offline)
    monkeypatch.setattr(_catalog, "gaia_cache_dir", lambda: tmp_path / "gaia")
    with pytest.raises(AstrometryError, match="are you offline.*catalog='tycho2'"):
        reference_stars("gaia", SkyCoord(10 * u.deg, 41 * u.deg), 0.1)
    assert not list((tmp_path / "gaia").glob("*.ecsv")) if (tmp_path / "gaia").exists() else True


def test_matcher_solves_a_small_field_from_the_cached_gaia_cone(archive):
    from astrophot.astrometry import solve_astrometry
    from astrophot.datasets import make_solved_frame

    from ._fields import grid_error

    # a 5 x 3.3 arcmin field at 1"/px: a long-focal-length telescope, too small for Tycho-2
    frame, truth = make_solved_frame(shape=(200, 300), scale=1.0, n_stars=40, seed=1)
    epoch = frame.date_obs.jyear
    stars = truth.stars
    mag = -2.5 * np.log10(np.asarray(stars["flux"], dtype=float)) + 25.0
    archive.stars = _gaia_stars(stars["ra"].to_value(u.deg), stars["dec"].to_value(u.deg), mag, epoch)
    header = frame.header.copy()
    for key in [k for k in header if k[:2] in ("CD", "CR", "CT", "CU", "PC", "A_", "B_", "AP", "BP")]:
        del header[key]
    centre = truth.wcs.pixel_to_world(149.5, 99.5)
    plain = CalibratedFrame(np.asarray(frame.data), unit=frame.unit, meta=header)  # no WCS, a date
    assert plain.date_obs.jyear == pytest.approx(epoch)
    solved = solve_astrometry(
        plain,
        hint=centre,
        scale=1.0,
        backend="matcher",
        catalog="gaia",
        time_limit=60,
    )
    assert solved.solution["backend"] == "matcher"
    assert grid_error(solved.wcs, truth.wcs, (200, 300)) < 0.5  # 0.29 px measured
    assert len(archive.queries) == 1
    # without the frame's date the 2016 positions are up to 3" off: no solution verifies
    del header["DATE-OBS"]
    undated = CalibratedFrame(np.asarray(frame.data), unit=frame.unit, meta=header)
    with pytest.raises(AstrometryError, match="failed verification"):
        solve_astrometry(undated, hint=centre, scale=1.0, backend="matcher", catalog="gaia", time_limit=60)
    assert len(archive.queries) == 1  # the cached cone again
