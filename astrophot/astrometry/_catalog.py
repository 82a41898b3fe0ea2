# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Reference stars for matching and verification: Tycho-2 index files, the demo extract, files, Gaia."""

import logging
import os
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import QTable, Table

from astrophot.astrometry._index import INSTALL_HINT, find_index_files
from astrophot.exceptions import AstrometryError

__all__ = ["CATALOG_CHOICES", "catalog_label", "reference_stars"]

log = logging.getLogger(__name__)

#: The named catalogue sources ``catalog=`` accepts (besides a file or a table).
CATALOG_CHOICES = ("auto", "tycho2", "demo", "gaia")
_RA_NAMES = ("ra", "raj2000", "ra_icrs", "ra_deg", "alpha_j2000")
_DEC_NAMES = ("dec", "dej2000", "decj2000", "de_icrs", "dec_deg", "delta_j2000")
_MAG_NAMES = ("mag", "phot_g_mean_mag", "gmag", "vmag", "mag_vt", "vtmag", "rmag", "v")


def catalog_label(catalog):
    """A short, YAML-safe description of a ``catalog`` argument."""
    if catalog is None:
        return "auto"
    if isinstance(catalog, (str, os.PathLike)):
        return str(catalog)
    if isinstance(catalog, Table):
        return f"table of {len(catalog)} stars"
    return type(catalog).__name__


def _find(names, colnames):
    lower = {c.lower(): c for c in colnames}
    for name in names:
        if name in lower:
            return lower[name]
    return None


def _values(column, unit=u.deg):
    if isinstance(column, u.Quantity):
        return column.to_value(unit)
    if getattr(column, "unit", None) is not None and unit is not None:
        try:
            return u.Quantity(column).to_value(unit)
        except u.UnitsError:
            pass
    return np.asarray(column, dtype=float)


def _standard(table, source):
    """A QTable with float ``ra``, ``dec`` (deg) and ``mag`` columns."""
    ra_col, dec_col = _find(_RA_NAMES, table.colnames), _find(_DEC_NAMES, table.colnames)
    if ra_col is None or dec_col is None:
        raise AstrometryError(
            f"{source}: a reference catalogue needs ra/dec columns (deg); it has {table.colnames}"
        )
    mag_col = _find(_MAG_NAMES, table.colnames)
    out = QTable()
    out["ra"] = _values(table[ra_col]) * u.deg
    out["dec"] = _values(table[dec_col]) * u.deg
    out["mag"] = _values(table[mag_col], None) if mag_col is not None else np.full(len(table), np.nan)
    good = np.isfinite(out["ra"].value) & np.isfinite(out["dec"].value)
    out = out[good]
    order = np.argsort(np.where(np.isfinite(out["mag"]), out["mag"], np.inf), kind="stable")
    return out[order]


def _cone(table, center, radius_deg):
    ra = np.radians(table["ra"].to_value(u.deg))
    dec = np.radians(table["dec"].to_value(u.deg))
    ra0, dec0 = center.ra.rad, center.dec.rad
    cos_d = np.sin(dec) * np.sin(dec0) + np.cos(dec) * np.cos(dec0) * np.cos(ra - ra0)
    return table[cos_d >= np.cos(np.radians(radius_deg))]


def _from_index(center, radius_deg, index_files):
    from astrophot.datasets import read_index_stars

    indexes = find_index_files(index_files)
    if not indexes:
        raise AstrometryError(f"no astrometry.net index files to read Tycho-2 stars from; {INSTALL_HINT}")
    if index_files is None:
        # the file with the most stars: the finest, most complete selection
        chosen = [max(indexes, key=lambda i: (i.n_stars, -i.scale_upper))]
    else:
        chosen = indexes
    stars = read_index_stars(center, radius_deg, index_files=[i.path for i in chosen])
    label = "Tycho-2 from " + ", ".join(i.name for i in chosen)
    return _standard(stars, label), label


def _from_demo(center, radius_deg):
    from astrophot.datasets import CatalogError, demo_fields, load_demo_catalog
    from astrophot.datasets.catalog import DEMO_RADIUS

    try:
        stars = load_demo_catalog(center, radius_deg)
    except CatalogError as exc:
        # the largest circle the extract covers around this centre, if any
        # (enough for a field inside a demo field, with a smaller search radius)
        covered = max(
            (DEMO_RADIUS.to_value(u.deg) - center.separation(c).deg for c in demo_fields().values()),
            default=0.0,
        )
        if covered < 0.05:
            raise AstrometryError(str(exc)) from exc
        log.debug("demo extract: %.2f deg requested, %.2f deg covered", radius_deg, covered)
        stars = load_demo_catalog(center, covered * (1 - 1e-6))
    return _standard(stars, "demo extract"), "Tycho-2 demo extract (astrophot.datasets)"


#: Epoch (Julian year) of Gaia DR3 positions.
GAIA_EPOCH = 2016.0
#: A Gaia cone is fetched this much wider than asked, so that the other frames of a
#: field (pointing jitter, dithers) are served from the cached cone.
GAIA_PAD = 1.25


def gaia_cache_dir():
    """Where Gaia cones are kept (``<user cache>/astrophot/gaia``)."""
    from astrophot.astrometry._cache import default_cache_dir

    return default_cache_dir().parent / "gaia"


def _cone_name(center, radius_deg, max_stars):
    return f"cone_{center.ra.deg:.5f}_{center.dec.deg:+.5f}_{radius_deg:.5f}_{int(max_stars)}.ecsv"


def _cached_gaia(center, radius_deg, max_stars):
    """A cached cone that holds the requested one, cut to it, or None."""
    from astropy.coordinates import SkyCoord

    directory = gaia_cache_dir()
    if not directory.is_dir():
        return None
    for path in sorted(directory.glob("cone_*.ecsv")):
        try:
            ra, dec, radius, count = (float(v) for v in path.stem.split("_")[1:])
        except ValueError:
            continue
        inside = SkyCoord(ra * u.deg, dec * u.deg).separation(center).deg + radius_deg <= radius
        if inside and count >= max_stars:
            log.debug("Gaia cone from the cache: %s", path)
            return _cone(QTable.read(path, format="ascii.ecsv"), center, radius_deg)
    return None


def _query_gaia(center, radius_deg, max_stars):
    """The brightest ``max_stars`` Gaia DR3 stars of a cone, with proper motions (astroquery)."""
    try:
        from astroquery.gaia import Gaia
    except Exception as exc:
        raise AstrometryError(f"Gaia is unavailable: cannot load astroquery.gaia ({exc})") from exc
    query = (
        f"SELECT TOP {int(max_stars)} source_id, ra, dec, pmra, pmdec, ref_epoch, phot_g_mean_mag "
        f"FROM gaiadr3.gaia_source WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', "
        f"{center.ra.deg:.6f}, {center.dec.deg:.6f}, {radius_deg:.5f})) AND phot_g_mean_mag IS NOT NULL "
        "ORDER BY phot_g_mean_mag"
    )
    try:
        table = Gaia.launch_job(query).get_results()
    except Exception as exc:
        raise AstrometryError(
            f"the Gaia archive could not be queried ({type(exc).__name__}: {exc}); are you offline? "
            "Use catalog='tycho2' with index files, or a catalogue file"
        ) from exc
    out = QTable()
    for name in ("ra", "dec", "pmra", "pmdec", "phot_g_mean_mag"):
        out[name] = np.asarray(np.ma.filled(np.ma.asarray(table[name], dtype=float), np.nan))
    out["ra"] = out["ra"] * u.deg
    out["dec"] = out["dec"] * u.deg
    epochs = np.ma.filled(np.ma.asarray(table["ref_epoch"], dtype=float), GAIA_EPOCH)
    out["ref_epoch"] = np.asarray(epochs)
    out.meta.update(center_ra=center.ra.deg, center_dec=center.dec.deg, radius=radius_deg)
    return out


def apply_proper_motion(table, epoch):
    """
    Gaia positions moved from their ``ref_epoch`` to ``epoch`` (Julian year) by their proper motions.

    ``pmra`` is the proper motion in right ascension times cos(dec) (mas/yr),
    as Gaia gives it; stars without a proper motion keep their position.
    Returns a new table (``ra``, ``dec`` in degrees, ``mag``).
    """
    years = float(epoch) - np.asarray(table["ref_epoch"], dtype=float)
    pmra = np.nan_to_num(np.asarray(table["pmra"], dtype=float))
    pmdec = np.nan_to_num(np.asarray(table["pmdec"], dtype=float))
    dec = _values(table["dec"]) + pmdec * years / 3.6e6
    ra = _values(table["ra"]) + pmra * years / 3.6e6 / np.cos(np.radians(dec))
    out = QTable({"ra": np.mod(ra, 360.0), "dec": dec, "phot_g_mean_mag": table["phot_g_mean_mag"]})
    return _standard(out, "Gaia DR3")


def _from_gaia(center, radius_deg, max_stars, epoch=None):
    """
    Gaia DR3 stars of a cone at ``epoch``: from the cache, else queried once (a wider cone) and cached.

    A night's frames of one field thus query the archive once.
    """
    from astrophot.io._atomic import atomic_path

    table = _cached_gaia(center, radius_deg, max_stars)
    if table is None:
        wide = radius_deg * GAIA_PAD
        fetched = _query_gaia(center, wide, max_stars)
        path = gaia_cache_dir() / _cone_name(center, wide, max_stars)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            fetched.write(tmp, format="ascii.ecsv", overwrite=True)
        log.info("Gaia DR3: %d stars within %.3f deg cached in %s", len(fetched), wide, path)
        table = _cone(fetched, center, radius_deg)
    when = GAIA_EPOCH if epoch is None else float(epoch)
    label = f"Gaia DR3 at epoch {when:.2f} (ESA archive via astroquery, cached)"
    return apply_proper_motion(table, when), label


def reference_stars(catalog, center, radius_deg, *, index_files=None, max_gaia=5000, epoch=None):
    """
    Reference stars within ``radius_deg`` of ``center``.

    Parameters
    ----------
    catalog : None, str, path or `~astropy.table.Table`
        ``None``/``'auto'``: Tycho-2 from the index files, else the demo
        extract; ``'tycho2'``: index files only; ``'demo'``: the shipped
        extract; ``'gaia'``: Gaia DR3 through astroquery (needs network);
        a path: a table file astropy reads (ECSV, FITS, CSV, VOTable) with
        ``ra``, ``dec`` (deg) and a magnitude column; or a table.
    center : `~astropy.coordinates.SkyCoord`
    radius_deg : float
    index_files : optional
        As in `~astrophot.astrometry.find_index_files`.
    max_gaia : int, optional
        Brightest Gaia stars to fetch.
    epoch : float, optional
        Julian year of the observation: Gaia positions are moved there by
        their proper motions (default: Gaia's own epoch, 2016.0). Gaia cones
        are cached (`gaia_cache_dir`), fetched 25 % wider than asked, so a
        night's frames of one field query the archive once.

    Returns
    -------
    stars : `~astropy.table.QTable`
        ``ra``, ``dec`` (deg), ``mag``, brightest first.
    label : str
        Where they came from.

    Raises
    ------
    astrophot.exceptions.AstrometryError
        When the source cannot provide the stars; the message says what to
        install or give.
    """
    if catalog is None or (isinstance(catalog, str) and catalog.lower() == "auto"):
        problems = []
        try:
            return _from_index(center, radius_deg, index_files)
        except AstrometryError as exc:
            problems.append(f"index files: {exc}")
        try:
            return _from_demo(center, radius_deg)
        except AstrometryError as exc:
            problems.append(f"demo extract: {exc}")
        raise AstrometryError("no reference catalogue covers the field: " + "; ".join(problems))
    if isinstance(catalog, str) and catalog.lower() in ("tycho2", "tycho-2", "index"):
        return _from_index(center, radius_deg, index_files)
    if isinstance(catalog, str) and catalog.lower() == "demo":
        return _from_demo(center, radius_deg)
    if isinstance(catalog, str) and catalog.lower() == "gaia":
        return _from_gaia(center, radius_deg, max_gaia, epoch)
    if isinstance(catalog, Table):
        return _cone(_standard(catalog, "the given table"), center, radius_deg), catalog_label(catalog)
    if isinstance(catalog, (str, os.PathLike)):
        path = Path(catalog).expanduser()
        if not path.is_file():
            raise AstrometryError(
                f"catalog={str(catalog)!r} is neither one of {', '.join(CATALOG_CHOICES)} "
                "nor an existing file"
            )
        try:
            table = Table.read(path)
        except Exception as exc:
            raise AstrometryError(f"{path}: cannot read the catalogue ({exc})") from exc
        return _cone(_standard(table, str(path)), center, radius_deg), f"catalogue file {path.name}"
    raise AstrometryError(f"catalog must be a name, a file or a table, not {type(catalog).__name__}")
