# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Real stars: the astrometry.net index reader and the shipped Tycho-2 extract."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits

from astrophot.datasets import (
    CatalogError,
    demo_fields,
    field_stars,
    find_index_files,
    load_demo_catalog,
    read_index_stars,
)
from astrophot.datasets.catalog import DEMO_CATALOG_PATH, _cone, _decode, _index_stars

needs_index = pytest.mark.skipif(
    not find_index_files(), reason="astrometry.net Tycho-2 index files not installed"
)


@needs_index
@pytest.mark.parametrize(
    "name, ra, dec, vmag",
    [
        # Hipparcos/SIMBAD positions (J2000) and V magnitudes of bright, slow stars
        ("Deneb", 310.357980, 45.280339, 1.25),
        ("Betelgeuse", 88.792939, 7.407064, 0.42),
    ],
)
def test_index_reader_finds_known_bright_stars(name, ra, dec, vmag):
    known = SkyCoord(ra * u.deg, dec * u.deg)
    stars = read_index_stars(known, 30 * u.arcsec)
    assert len(stars) == 1, name
    found = SkyCoord(stars["ra"][0], stars["dec"][0])
    assert found.separation(known) < 1 * u.arcsec
    assert stars["mag"][0] == pytest.approx(vmag, abs=0.6)  # V_T of very red/bright stars differs from V


@needs_index
def test_index_file_decodes_to_unit_vectors():
    path = min(find_index_files(), key=lambda p: p.stat().st_size)
    raw, rng, mags = _index_stars(str(path))
    xyz = _decode(raw, rng)
    # the stored vectors are unit vectors to the quantisation of 2 / 2**32
    np.testing.assert_allclose(np.linalg.norm(rng[:3] + raw / rng[6], axis=1), 1.0, atol=1e-8)
    # the float32 cone pre-selection loses no star near the edge of the cone
    centre = xyz[0]
    for radius in (0.5, 2.0, 10.0):
        cos_r = np.cos(np.radians(radius))
        exact = np.nonzero(xyz @ centre >= cos_r)[0]
        np.testing.assert_array_equal(_cone(raw, rng, centre, cos_r)[0], exact)
    with fits.open(path) as hdul:
        assert hdul[0].header["NSTARS"] == len(xyz) == len(mags)
    assert np.nanmin(mags) < 3 and np.nanmax(mags) < 16


@needs_index
def test_demo_extract_equals_the_index_stars():
    centre = demo_fields()["NGC 6888"]
    shipped = load_demo_catalog(centre, 1.0)
    fresh, source = field_stars(centre, 1.0, source="index")
    assert source.startswith("index-")
    assert len(shipped) == len(fresh) > 30
    a = SkyCoord(shipped["ra"], shipped["dec"])
    b = SkyCoord(fresh["ra"], fresh["dec"])
    idx, sep, _ = a.match_to_catalog_sky(b)
    assert sep.max() < 0.01 * u.arcsec
    np.testing.assert_allclose(shipped["mag"], fresh["mag"][idx], atol=1e-3)


def test_demo_catalog_covers_each_field():
    for name, centre in demo_fields().items():
        stars = load_demo_catalog(name, 2.5)
        assert len(stars) > 300, name
        sep = SkyCoord(stars["ra"], stars["dec"]).separation(centre)
        assert sep.max() <= 2.5 * u.deg
        assert np.all(np.diff(stars["mag"]) >= 0)  # sorted by magnitude
    assert DEMO_CATALOG_PATH.stat().st_size < 400_000


def test_names_and_errors():
    assert len(load_demo_catalog("cygnus_loop", 0.3)) == len(load_demo_catalog("Cygnus Loop", 0.3))
    assert len(load_demo_catalog((10.6847, 41.269), 0.3, mag_limit=9)) < len(load_demo_catalog("M31", 0.3))
    with pytest.raises(CatalogError, match="unknown field name"):
        load_demo_catalog("Andromeda Galaxy", 0.3)
    with pytest.raises(CatalogError, match="does not cover"):
        load_demo_catalog("M31", 3.0)
    # partial: the extract's stars within the circle, when its centre is in a demo field
    assert len(load_demo_catalog("M31", 3.0, partial=True)) == len(load_demo_catalog("M31", 2.5))
    with pytest.raises(CatalogError, match="does not cover"):
        load_demo_catalog((150.0, 2.0), 1.0, partial=True)
    with pytest.raises(CatalogError, match="positive"):
        load_demo_catalog("M31", 0)
    with pytest.raises(CatalogError, match="no such index file"):
        read_index_stars("M31", 0.1, index_files=["/nonexistent/index-4107.fits"])


def test_field_stars_without_index_files_outside_the_demo_fields(monkeypatch):
    monkeypatch.setattr("astrophot.datasets.catalog.find_index_files", lambda directories=None: [])
    with pytest.raises(CatalogError, match="install Debian's astrometry-data-tycho2"):
        field_stars((150.0, 2.0), 0.5)
    stars, source = field_stars("M42", 0.5)
    assert source == "tycho2-demo-extract" and len(stars) > 5
