# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Real stars for the simulator: Tycho-2 from index files, or the shipped extract.

The stars come from the astrometry.net index files installed, or from the
small extract shipped with astrophot.

The Debian packages ``astrometry-data-tycho2-*`` install astrometry.net
index files (``/usr/share/astrometry/index-tycho2-NN*.fits`` or
``index-41NN.fits``). Each holds a uniform selection of Tycho-2 stars:
the binary table ``kdtree_data_stars`` stores unit vectors as ``uint32``
triplets, mapped back to ``xyz`` as ``min_xyz + raw / scale`` with the seven
``float64`` values of ``kdtree_range_stars`` (min x, y, z, max x, y, z,
scale); ``RA = atan2(y, x)``, ``Dec = asin(z / |xyz|)``; the ``MAG_VT``
table holds the Tycho V_T magnitudes in the same order. The tables are
named by their first column rather than by ``EXTNAME``.

`read_index_stars` reads them; `load_demo_catalog` reads the shipped extract
(``astrophot/datasets/data/tycho2_demo.ecsv``: the stars of the finest
index within 2.5 degrees of each of `demo_fields`); `field_stars` picks
whichever covers a field.
"""

import functools
import logging
import os
import re
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import QTable, Table

from astrophot.exceptions import AstrophotError

__all__ = [
    "CatalogError",
    "DEMO_CATALOG_PATH",
    "DEMO_RADIUS",
    "demo_fields",
    "field_stars",
    "find_index_files",
    "load_demo_catalog",
    "read_index_stars",
]

log = logging.getLogger(__name__)

#: The shipped Tycho-2 extract (ECSV).
DEMO_CATALOG_PATH = Path(__file__).parent / "data" / "tycho2_demo.ecsv"

#: Radius of each demo field in the shipped extract.
DEMO_RADIUS = 2.5 * u.deg

#: Directories searched for astrometry.net index files (first the
#: ``ASTROMETRY_INDEX_DIR`` environment variable, when set).
INDEX_DIRECTORIES = ("/usr/share/astrometry", "/usr/local/share/astrometry", "/usr/local/astrometry/data")

# name -> (RA, Dec) in degrees, ICRS (SIMBAD centres, rounded).
_DEMO_FIELDS = {
    "M31": (10.6847, 41.2690),
    "M42": (83.8221, -5.3911),
    "M51": (202.4696, 47.1952),
    "M13": (250.4235, 36.4613),
    "NGC 6888": (303.0300, 38.3550),
    "NGC 55": (3.7233, -39.1967),
    "Cygnus Loop": (312.7500, 30.6700),
}


class CatalogError(AstrophotError, ValueError):
    """No catalogue covers the requested field, or an index file is unreadable."""


def demo_fields():
    """
    The named demo fields covered by the shipped Tycho-2 extract.

    Returns
    -------
    dict of str to `~astropy.coordinates.SkyCoord`
        Field name (``'M31'``, ``'NGC 6888'``, ``'Cygnus Loop'`` ...) to its
        centre (ICRS). Each is covered to ``DEMO_RADIUS`` (2.5 deg).

    See Also
    --------
    load_demo_catalog : Tycho-2 stars from the extract shipped with astrophot.
    field_stars : Real stars for a field, from the shipped extract or the index files.

    Examples
    --------
    >>> from astrophot.datasets import demo_fields
    >>> sorted(demo_fields())
    ['Cygnus Loop', 'M13', 'M31', 'M42', 'M51', 'NGC 55', 'NGC 6888']
    >>> float(demo_fields()['M31'].ra.deg)
    10.6847
    """
    return {name: SkyCoord(ra * u.deg, dec * u.deg, frame="icrs") for name, (ra, dec) in _DEMO_FIELDS.items()}


def _norm_name(name):
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def resolve_field(target):
    """
    A sky position for a demo field name, a `SkyCoord` or ``(ra, dec)`` degrees.

    Parameters
    ----------
    target : str, `~astropy.coordinates.SkyCoord` or tuple of float
        A name from `demo_fields` (case, spaces and underscores ignored),
        a coordinate, or ``(ra_deg, dec_deg)``.

    Returns
    -------
    `~astropy.coordinates.SkyCoord`
        The position in ICRS.

    Raises
    ------
    CatalogError
        An unknown name (this works offline: no name resolver is queried).
    """
    if isinstance(target, SkyCoord):
        return target.icrs
    if isinstance(target, str):
        wanted = _norm_name(target)
        for name, coord in demo_fields().items():
            if _norm_name(name) == wanted:
                return coord
        raise CatalogError(
            f"unknown field name {target!r}: use one of {', '.join(sorted(_DEMO_FIELDS))} "
            "or give the centre as a SkyCoord or (ra, dec) in degrees"
        )
    try:
        ra, dec = target
    except (TypeError, ValueError):
        raise CatalogError(f"cannot use {target!r} as a sky position") from None
    return SkyCoord(u.Quantity(ra, u.deg), u.Quantity(dec, u.deg), frame="icrs")


def _radius_deg(radius):
    value = u.Quantity(radius, u.deg).to_value(u.deg)
    if not np.isfinite(value) or value <= 0:
        raise CatalogError(f"the search radius must be positive, not {radius!r}")
    return float(value)


def _unit_vector(coord):
    ra, dec = coord.ra.rad, coord.dec.rad
    return np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


# ----------------------------------------------------------------------
# astrometry.net index files
def find_index_files(directories=None):
    """
    The astrometry.net index files installed on this machine.

    Parameters
    ----------
    directories : sequence of path-like, optional
        Where to look. By default ``$ASTROMETRY_INDEX_DIR`` (when set) and
        ``INDEX_DIRECTORIES``.

    Returns
    -------
    list of `~pathlib.Path`
        ``index-*.fits`` files, sorted by name (possibly empty).
    """
    if directories is None:
        directories = list(INDEX_DIRECTORIES)
        env = os.environ.get("ASTROMETRY_INDEX_DIR")
        if env:
            directories.insert(0, env)
    found = []
    for directory in directories:
        path = Path(directory)
        if path.is_dir():
            found.extend(sorted(p for p in path.glob("index-*.fits") if p.is_file()))
    return found


def _tables_by_first_column(hdul):
    return {hdu.header.get("TTYPE1", "").strip(): hdu for hdu in hdul[1:]}


def _raw_bytes(hdu):
    return np.asarray(hdu.data).view(np.uint8).tobytes()


@functools.lru_cache(maxsize=2)
def _index_stars(path):
    """The stored star triplets (n, 3) uint32, the 7 range values and the V_T magnitudes of one index file."""
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header
            tables = _tables_by_first_column(hdul)
            if "kdtree_data_stars" not in tables or "kdtree_range_stars" not in tables:
                raise CatalogError(f"{path}: not an astrometry.net index file (no kdtree_data_stars table)")
            endian = str(header.get("ENDIAN", "04:03:02:01")).strip()
            order = "<" if endian == "04:03:02:01" else ">"
            rng = np.frombuffer(_raw_bytes(tables["kdtree_range_stars"]), dtype=f"{order}f8")
            raw = np.frombuffer(_raw_bytes(tables["kdtree_data_stars"]), dtype=f"{order}u4").reshape(-1, 3)
            if "MAG_VT" in tables:
                mags = np.asarray(tables["MAG_VT"].data["MAG_VT"], dtype=np.float64)
            else:
                mags = np.full(len(raw), np.nan)
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the index file ({exc})") from exc
    if rng.size != 7 or len(mags) != len(raw):
        raise CatalogError(f"{path}: inconsistent star tables (range {rng.size} values, {len(raw)} stars)")
    return np.ascontiguousarray(raw), rng, mags


def _decode(raw, rng):
    """Unit vectors (n, 3) float64 from the stored uint32 triplets."""
    xyz = rng[:3] + raw.astype(np.float64) / rng[6]
    xyz /= np.linalg.norm(xyz, axis=1)[:, None]
    return xyz


def _cone(raw, rng, centre, cos_r):
    """Indices of the stars within the cone: a float32 pass with a margin, then exact float64."""
    scale = np.float32(1.0 / rng[6])
    dot = np.zeros(len(raw), dtype=np.float32)
    for axis in range(3):
        component = raw[:, axis].astype(np.float32)
        component *= scale
        component += np.float32(rng[axis])
        component *= np.float32(centre[axis])
        dot += component
    candidates = np.nonzero(dot >= np.float32(cos_r) - np.float32(1e-5))[0]
    xyz = _decode(raw[candidates], rng)
    keep = xyz @ centre >= cos_r
    return candidates[keep], xyz[keep]


def _densest(files):
    best, best_n = None, -1
    for path in files:
        try:
            n = _star_count(str(path))
        except CatalogError:
            continue
        if n > best_n:
            best, best_n = path, n
    return best


@functools.lru_cache(maxsize=64)
def _star_count(path):
    try:
        with fits.open(path, memmap=True) as hdul:
            return int(hdul[0].header.get("NSTARS", 0))
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the index file ({exc})") from exc


def read_index_stars(center, radius, *, index_files=None, mag_limit=None):
    """
    Tycho-2 stars within ``radius`` of ``center`` from astrometry.net index files.

    Parameters
    ----------
    center : `~astropy.coordinates.SkyCoord`, str or tuple of float
        Field centre (a `demo_fields` name or ``(ra, dec)`` degrees work too).
    radius : `~astropy.units.Quantity` or float
        Search radius (degrees if a number).
    index_files : sequence of path-like, optional
        Index files to read; their stars are merged (duplicates within one
        arcsecond dropped). By default the installed file holding the most
        stars (the finest scale, the most complete selection of Tycho-2).
    mag_limit : float, optional
        Keep stars brighter than this V_T magnitude.

    Returns
    -------
    `~astropy.table.QTable`
        Columns ``ra``, ``dec`` (deg, ICRS, the catalogue's own epoch, as
        astrometry.net matches them) and ``mag`` (V_T), sorted by magnitude.

    Raises
    ------
    CatalogError
        No index file is installed or given, or a file is not an index.

    See Also
    --------
    load_demo_catalog : Tycho-2 stars from the extract shipped with astrophot.
    field_stars : Real stars for a field, from the shipped extract or the index files.
    find_index_files : The astrometry.net index files installed on this machine.

    Notes
    -----
    The index files hold a spatially uniform selection of Tycho-2 made by
    ``build-astrometry-index`` (the finest Debian file, 4107, about 1.87
    million of its 2.5 million stars), so faint stars are missing where the
    sky is crowded.

    Examples
    --------
    >>> from astrophot.datasets import read_index_stars
    >>> stars = read_index_stars((310.358, 45.280), 0.01)  # doctest: +SKIP
    >>> stars['mag'][0]  # Deneb  # doctest: +SKIP
    1.343
    """
    coord = resolve_field(center)
    radius_deg = _radius_deg(radius)
    if index_files is None:
        installed = find_index_files()
        if not installed:
            raise CatalogError(
                "no astrometry.net index files found (install Debian's astrometry-data-tycho2 packages, "
                "set ASTROMETRY_INDEX_DIR, or use load_demo_catalog for the demo fields)"
            )
        files = [_densest(installed)]
        if files[0] is None:
            raise CatalogError(f"none of the index files in {installed[0].parent} is readable")
    else:
        files = [Path(f) for f in index_files]
        if not files:
            raise CatalogError("index_files is empty")
    centre = _unit_vector(coord)
    cos_r = np.cos(np.radians(radius_deg))
    parts_xyz, parts_mag = [], []
    for path in files:
        if not Path(path).is_file():
            raise CatalogError(f"{path}: no such index file")
        raw, rng, mags = _index_stars(str(path))
        index, xyz = _cone(raw, rng, centre, cos_r)
        mag = mags[index]
        if mag_limit is not None:
            bright = mag < mag_limit
            xyz, mag = xyz[bright], mag[bright]
        parts_xyz.append(xyz)
        parts_mag.append(mag)
    xyz = np.concatenate(parts_xyz)
    mags = np.concatenate(parts_mag)
    ra = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1, 1)))
    table = _make_table(ra, dec, mags)
    if len(files) > 1:
        table = _dedupe(table)
    log.debug("read %d stars within %.3f deg of %s from %s", len(table), radius_deg, coord, files)
    return table


def _make_table(ra, dec, mag):
    order = np.lexsort((ra, mag))
    table = QTable()
    table["ra"] = np.asarray(ra, dtype=np.float64)[order] * u.deg
    table["dec"] = np.asarray(dec, dtype=np.float64)[order] * u.deg
    table["mag"] = np.asarray(mag, dtype=np.float64)[order]
    table["ra"].info.description = "right ascension (ICRS, catalogue epoch)"
    table["dec"].info.description = "declination (ICRS, catalogue epoch)"
    table["mag"].info.description = "Tycho V_T magnitude"
    return table


def _dedupe(table, tolerance=1 * u.arcsec):
    if len(table) < 2:
        return table
    coords = SkyCoord(table["ra"], table["dec"])
    idx, sep, _ = coords.match_to_catalog_sky(coords, nthneighbor=2)
    drop = (sep < tolerance) & (idx < np.arange(len(table)))
    return table[~drop]


# ----------------------------------------------------------------------
# the shipped extract
@functools.lru_cache(maxsize=1)
def _demo_table():
    if not DEMO_CATALOG_PATH.is_file():  # pragma: no cover - part of the package
        raise CatalogError(f"{DEMO_CATALOG_PATH}: the shipped Tycho-2 extract is missing")
    table = Table.read(DEMO_CATALOG_PATH, format="ascii.ecsv")
    ra = np.asarray(table["ra"], dtype=np.float64)
    dec = np.asarray(table["dec"], dtype=np.float64)
    mag = np.asarray(table["mag"], dtype=np.float64)
    ra_r, dec_r = np.radians(ra), np.radians(dec)
    xyz = np.stack([np.cos(dec_r) * np.cos(ra_r), np.cos(dec_r) * np.sin(ra_r), np.sin(dec_r)], axis=1)
    return ra, dec, mag, xyz


def _covering_demo_field(coord, radius_deg):
    for name, field in demo_fields().items():
        if coord.separation(field).deg + radius_deg <= DEMO_RADIUS.to_value(u.deg) + 1e-9:
            return name
    return None


def load_demo_catalog(center, radius, *, mag_limit=None, partial=False):
    """
    Tycho-2 stars from the extract shipped with astrophot.

    Parameters
    ----------
    center : `~astropy.coordinates.SkyCoord`, str or tuple of float
        Field centre: a `demo_fields` name, a coordinate or ``(ra, dec)``
        degrees. The circle must lie inside one demo field.
    radius : `~astropy.units.Quantity` or float
        Search radius (degrees if a number).
    mag_limit : float, optional
        Keep stars brighter than this V_T magnitude.
    partial : bool
        Accept a circle reaching beyond the extract when its centre lies in a
        demo field: the stars of the extract within the circle are returned
        (the outer part of the circle is then empty).

    Returns
    -------
    `~astropy.table.QTable`
        ``ra``, ``dec`` (deg), ``mag`` (V_T), sorted by magnitude.

    Raises
    ------
    CatalogError
        The circle is not inside one of the demo fields (with ``partial``:
        its centre is not).

    See Also
    --------
    demo_fields : The named demo fields covered by the shipped extract.
    read_index_stars : Tycho-2 stars of a cone from astrometry.net index files.
    field_stars : Real stars for a field, from the shipped extract or the index files.

    Notes
    -----
    The extract holds the stars of astrometry.net's finest Debian Tycho-2
    index (4107) within 2.5 degrees of each demo field; it gives the same
    stars as `read_index_stars` for those fields. Source: Tycho-2 (ESA;
    Høg et al. 2000, A&A 355, L27) via Debian's astrometry-data-tycho2.

    Examples
    --------
    >>> from astrophot.datasets import load_demo_catalog
    >>> stars = load_demo_catalog('M31', 0.5)
    >>> len(stars) > 20, stars.colnames
    (True, ['ra', 'dec', 'mag'])
    """
    coord = resolve_field(center)
    radius_deg = _radius_deg(radius)
    covered = _covering_demo_field(coord, radius_deg) is not None
    if not covered and partial and _covering_demo_field(coord, 0.0) is not None:
        log.debug("the demo extract covers only part of the %.2f deg circle around %s", radius_deg, coord)
        covered = True
    if not covered:
        raise CatalogError(
            f"the shipped Tycho-2 extract does not cover a {radius_deg:.2f} deg circle around "
            f"{coord.to_string('decimal')}: it covers {DEMO_RADIUS} around each of "
            f"{', '.join(sorted(_DEMO_FIELDS))} (install Debian's astrometry-data-tycho2 for any field)"
        )
    ra, dec, mag, xyz = _demo_table()
    keep = xyz @ _unit_vector(coord) >= np.cos(np.radians(radius_deg))
    if mag_limit is not None:
        keep &= mag < mag_limit
    return _make_table(ra[keep], dec[keep], mag[keep])


def field_stars(center, radius, *, mag_limit=None, source="auto"):
    """
    Real stars for a field, from the shipped extract or the index files.

    By default the shipped extract where it covers the field, else the installed
    index files.

    Parameters
    ----------
    center : `~astropy.coordinates.SkyCoord`, str or tuple of float
        Field centre.
    radius : `~astropy.units.Quantity` or float
        Radius (degrees if a number).
    mag_limit : float, optional
        Keep stars brighter than this.
    source : {'auto', 'demo', 'index'}
        Force one source. ``'auto'`` prefers the extract (the same stars on
        every machine), then the index files.

    Returns
    -------
    stars : `~astropy.table.QTable`
        ``ra``, ``dec``, ``mag``.
    source : str
        ``'tycho2-demo-extract'`` or the index file name(s) read.

    Raises
    ------
    CatalogError
        Nothing covers the field.
    """
    coord = resolve_field(center)
    radius_deg = _radius_deg(radius)
    if source not in ("auto", "demo", "index"):
        raise CatalogError(f"source must be 'auto', 'demo' or 'index', not {source!r}")
    if source == "demo" or (source == "auto" and _covering_demo_field(coord, radius_deg) is not None):
        return load_demo_catalog(coord, radius_deg, mag_limit=mag_limit), "tycho2-demo-extract"
    installed = find_index_files()
    if not installed:
        raise CatalogError(
            f"no star catalogue covers a {radius_deg:.2f} deg circle around {coord.to_string('decimal')}: "
            f"the shipped extract covers {DEMO_RADIUS} around {', '.join(sorted(_DEMO_FIELDS))}; "
            "for other fields install Debian's astrometry-data-tycho2 index files"
        )
    best = _densest(installed)
    return read_index_stars(coord, radius_deg, index_files=[best], mag_limit=mag_limit), Path(best).name


def _build_demo_extract(path=DEMO_CATALOG_PATH, *, index_file=None):
    """Write the shipped extract from an installed index file (maintainers only)."""
    if index_file is None:
        index_file = _densest(find_index_files())
    parts = []
    for name, coord in demo_fields().items():
        stars = read_index_stars(coord, DEMO_RADIUS, index_files=[index_file])
        stars = Table(stars)
        stars["ra"].unit = stars["dec"].unit = None
        stars["ra"] = np.round(np.asarray(stars["ra"], dtype=float), 6)
        stars["dec"] = np.round(np.asarray(stars["dec"], dtype=float), 6)
        stars["mag"] = np.round(stars["mag"], 3)
        parts.append((name, stars))
    from astropy.table import unique, vstack

    table = unique(vstack([p for _, p in parts]), keys=["ra", "dec"])
    table.sort(["ra", "dec"])
    table.meta = {
        "description": "Tycho-2 stars within 2.5 deg of the astrophot demo fields",
        "source": f"astrometry.net index {Path(index_file).name} (Debian astrometry-data-tycho2), "
        "built from Tycho-2 (ESA; Hog et al. 2000, A&A 355, L27)",
        "fields": {name: list(_DEMO_FIELDS[name]) for name, _ in parts},
        "radius_deg": DEMO_RADIUS.to_value(u.deg),
        "license": "BSD-2-Clause, Copyright (c) 2000 Hog E., Fabricius C., Makarov V.V., Urban S., "
        "Corbin T., Wycoff G., Bastian U., Schwekendiek P., Wicenec A. (full text: README.md beside it)",
    }
    table["ra"].unit = u.deg
    table["dec"].unit = u.deg
    table.write(path, format="ascii.ecsv", overwrite=True)
    return path
