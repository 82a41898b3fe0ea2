# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
astrometry.net's Gaia-based index series 5200: which files cover a field, and fetching them.

Fields under about half a degree hold too few Tycho-2 stars for any solver;
the 5200 series (Tycho-2 + Gaia DR2, "LITE") does. Its published layout:

* seven scales, ``index-5200`` to ``index-5206``, for quads of 2.0-2.8,
  2.8-4.0, 4.0-5.6, 5.6-8.0, 8-11, 11-16 and 16-22 arcmin (the 4100/4200
  series' scale numbering: scale ``s`` spans ``2 * sqrt(2)**s`` to
  ``2 * sqrt(2)**(s + 1)`` arcmin, rounded);
* each scale split into the 48 HEALPix tiles of Nside 2 (``-00`` to
  ``-47``), numbered in astrometry.net's own "XY" scheme (``healpix.h`` of
  astrometry.net, BSD-3: "all healpix indexing uses the XY scheme"): tile =
  ``base * Nside**2 + x * Nside + y`` with ``x`` towards the north-east and
  ``y`` towards the north-west of the base pixel (the standard HEALPix
  ``ix``/``iy`` of Gorski et al. 2005; the NESTED number interleaves their
  bits instead);
* the files are served at `SERIES_5200_URL` (the address the PyPI
  ``astrometry`` package's ``series_5200`` downloads from).

The Tycho-2 4100 series (``index-4107`` to ``index-4119``) has quads of 22 to
2000 arcmin (`SERIES_4100_QUADS`). `index_series` says which of the two series
can solve a field offline by the same rule as `series_5200_files` (quads 10 %
to 100 % of the field width), and leaves out the 4100 series for fields
narrower than `TYCHO2_MIN_FIELD_DEG` (too few Tycho-2 stars).

astropy-healpix is not required: the pixel lookup is the short Gorski et al.
(2005) formula, tested against the layout diagrams in ``healpix.h``.
"""

import logging
import math
from pathlib import Path

import numpy as np

from astrophot.exceptions import AstrometryError

__all__ = [
    "SERIES_4100_QUADS",
    "SERIES_5200_NSIDE",
    "SERIES_5200_SCALES",
    "SERIES_5200_URL",
    "TYCHO2_MIN_FIELD_DEG",
    "fetch_index_files",
    "healpix_xy",
    "index_series",
    "series_5200_files",
]

log = logging.getLogger(__name__)

#: HEALPix Nside of the 5200 series' tiles (48 tiles).
SERIES_5200_NSIDE = 2
#: Quad-size range (arcmin) of each scale, index-5200 to index-5206.
SERIES_5200_SCALES = {
    0: (2.0, 2.8),
    1: (2.8, 4.0),
    2: (4.0, 5.6),
    3: (5.6, 8.0),
    4: (8.0, 11.0),
    5: (11.0, 16.0),
    6: (16.0, 22.0),
}
#: Where the LITE files are published: ``{name}`` is ``index-52SS-TT.fits``.
SERIES_5200_URL = "https://portal.nersc.gov/project/cosmo/temp/dstn/index-5200/LITE/{name}"
#: Quad-size range (arcmin) of the Tycho-2 4100 series, index-4107 to index-4119
#: (Fedora's astrometry-data-4107-4119: "from 22 to 2000 arcminutes"; Debian's
#: astrometry-data-tycho2-07, -08, -09 and -10-19: 22-30, 30-44, 44-60 and 60-2000).
SERIES_4100_QUADS = (22.0, 2000.0)
#: Fields narrower than this (deg) hold too few Tycho-2 stars for the 4100 series.
TYCHO2_MIN_FIELD_DEG = 0.5


def _quads_fit(low, high, field_arcmin):
    """astrometry.net's advice: quads from 10 % to 100 % of the field width."""
    return high >= 0.1 * field_arcmin and low <= field_arcmin


def index_series(field_deg):
    """
    The astrometry.net index series that can solve a field offline.

    Parameters
    ----------
    field_deg : float
        Field width (deg), the longer side of a rectangular frame.

    Returns
    -------
    tuple of str
        ``'4100'`` (Tycho-2) when some of its quads are 10 % to 100 % of the
        field and the field is at least `TYCHO2_MIN_FIELD_DEG` wide,
        ``'5200'`` (Tycho-2 + Gaia DR2) when some of its scales are (the rule
        of `series_5200_files`); empty when neither is.

    Examples
    --------
    >>> from astrophot.astrometry._series import index_series
    >>> index_series(0.25), index_series(1.0), index_series(4.0)
    (('5200',), ('4100', '5200'), ('4100',))
    """
    if not field_deg > 0:
        raise ValueError(f"field_deg must be positive, not {field_deg!r}")
    field_arcmin = 60.0 * float(field_deg)
    series = []
    if field_deg >= TYCHO2_MIN_FIELD_DEG and _quads_fit(*SERIES_4100_QUADS, field_arcmin):
        series.append("4100")
    if any(_quads_fit(low, high, field_arcmin) for low, high in SERIES_5200_SCALES.values()):
        series.append("5200")
    return tuple(series)


def healpix_xy(ra, dec, nside):
    """
    HEALPix pixel (astrometry.net's XY numbering) and the standard (base, ix, iy).

    Parameters
    ----------
    ra, dec : float or array
        Degrees.
    nside : int

    Returns
    -------
    xy, nested : ndarray of int
        astrometry.net's XY number and the standard NESTED number.

    Examples
    --------
    >>> from astrophot.astrometry._series import healpix_xy
    >>> xy, nested = healpix_xy([0.0, 10.0, 350.0], [89.0, 0.0, 0.0], 2)
    >>> xy.tolist(), nested.tolist()
    ([3, 18, 17], [3, 17, 18])
    """
    ra = np.radians(np.asarray(ra, dtype=float)) % (2 * math.pi)
    z = np.sin(np.radians(np.asarray(dec, dtype=float)))
    tt = ra / (0.5 * math.pi)  # in [0, 4)
    za = np.abs(z)
    n = int(nside)
    # equatorial belt
    t1 = n * (0.5 + tt)
    t2 = n * z * 0.75
    jp = np.floor(t1 - t2).astype(int)  # ascending edge line
    jm = np.floor(t1 + t2).astype(int)  # descending edge line
    ifp, ifm = jp // n, jm // n
    face_eq = np.where(ifp == ifm, (ifp % 4) + 4, np.where(ifp < ifm, ifp % 4, (ifm % 4) + 8))
    ix_eq = jm % n
    iy_eq = n - (jp % n) - 1
    # polar caps
    ntt = np.minimum(np.floor(tt).astype(int), 3)
    tp = tt - ntt
    tmp = n * np.sqrt(3 * (1 - za))
    jp_p = np.minimum(np.floor(tp * tmp).astype(int), n - 1)
    jm_p = np.minimum(np.floor((1 - tp) * tmp).astype(int), n - 1)
    north = z > 0
    face_p = np.where(north, ntt, ntt + 8)
    ix_p = np.where(north, n - jm_p - 1, jp_p)
    iy_p = np.where(north, n - jp_p - 1, jm_p)
    polar = za > 2.0 / 3.0
    face = np.where(polar, face_p, face_eq)
    ix = np.where(polar, ix_p, ix_eq)
    iy = np.where(polar, iy_p, iy_eq)
    xy = face * n * n + ix * n + iy
    nested = np.zeros_like(ix)
    for bit in range(max(1, n.bit_length())):
        nested |= ((ix >> bit) & 1) << (2 * bit)
        nested |= ((iy >> bit) & 1) << (2 * bit + 1)
    return np.atleast_1d(xy), np.atleast_1d(nested + face * n * n)


def _cone_points(ra, dec, radius_deg, n_rings=12, n_around=48):
    """Points filling a cone (its centre, rings out to its edge), degrees."""
    pts_ra, pts_dec = [ra], [dec]
    d0 = math.radians(dec)
    for k in range(1, n_rings + 1):
        r = math.radians(radius_deg * k / n_rings)
        pa = np.linspace(0, 2 * math.pi, n_around, endpoint=False)
        sin_d = math.sin(d0) * math.cos(r) + math.cos(d0) * math.sin(r) * np.cos(pa)
        d = np.arcsin(np.clip(sin_d, -1, 1))
        a = math.radians(ra) + np.arctan2(
            np.sin(pa) * math.sin(r) * math.cos(d0), math.cos(r) - math.sin(d0) * sin_d
        )
        pts_ra.extend(np.degrees(a) % 360)
        pts_dec.extend(np.degrees(d))
    return np.array(pts_ra), np.array(pts_dec)


def series_5200_files(ra, dec, field_deg, *, radius=None):
    """
    The 5200-series index files that cover a field.

    Parameters
    ----------
    ra, dec : float
        Field centre (deg).
    field_deg : float
        Field width (deg); the scales used are those whose quads are 10 % to
        100 % of it (astrometry.net's advice).
    radius : float, optional
        Search radius around the centre (deg); default half the field diagonal.

    Returns
    -------
    list of str
        File names ``index-52SS-TT.fits``, by scale then tile.

    Examples
    --------
    >>> from astrophot.astrometry._series import series_5200_files
    >>> series_5200_files(0.5, 89.5, 0.3)[:4]
    ['index-5200-03.fits', 'index-5200-15.fits', 'index-5201-03.fits', 'index-5201-15.fits']
    """
    if not field_deg > 0:
        raise ValueError(f"field_deg must be positive, not {field_deg!r}")
    field_arcmin = 60.0 * float(field_deg)
    scales = [s for s, (low, high) in SERIES_5200_SCALES.items() if _quads_fit(low, high, field_arcmin)]
    if radius is None:
        radius = 0.5 * math.sqrt(2) * float(field_deg)
    pra, pdec = _cone_points(float(ra), float(dec), float(radius))
    tiles = sorted(set(healpix_xy(pra, pdec, SERIES_5200_NSIDE)[0].tolist()))
    return [f"index-{5200 + s}-{t:02d}.fits" for s in scales for t in tiles]


def _requests_session():
    import requests

    return requests.Session()


def fetch_index_files(names, directory, *, session=None, url=SERIES_5200_URL, chunk_size=1 << 20):
    """
    Download index files into ``directory``, skipping those already there.

    Parameters
    ----------
    names : list of str
        File names (from `series_5200_files`).
    directory : path-like
        Where they go (created). A file is written under a temporary name and
        renamed when complete, so a broken download leaves nothing behind.
    session : `requests.Session`-like, optional
        Its ``get(url, stream=True, timeout=...)`` is used (tests pass a
        recorded one).
    url : str, optional
        Address pattern with ``{name}``.

    Returns
    -------
    list of `pathlib.Path`
        The files, in the order of ``names``.

    Raises
    ------
    astrophot.exceptions.AstrometryError
        Offline or refused: names the address and the reason.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    session = session if session is not None else _requests_session()
    out = []
    for name in names:
        path = directory / name
        out.append(path)
        if path.is_file() and path.stat().st_size > 0:
            log.info("%s: already here", path)
            continue
        address = url.format(name=name)
        partial = path.with_name(path.name + ".part")
        try:
            response = session.get(address, stream=True, timeout=60)
            status = getattr(response, "status_code", 200)
            if status != 200:
                raise AstrometryError(f"cannot download {address}: HTTP {status}")
            with open(partial, "wb") as handle:
                for chunk in response.iter_content(chunk_size=chunk_size):
                    handle.write(chunk)
        except AstrometryError:
            partial.unlink(missing_ok=True)
            raise
        except Exception as exc:  # requests' ConnectionError, timeouts, OSError
            partial.unlink(missing_ok=True)
            raise AstrometryError(
                f"cannot download {address} ({type(exc).__name__}: {exc}); are you offline? "
                f"Download it by hand into {directory} or give index_files= an existing directory"
            ) from exc
        partial.replace(path)
        log.info("%s: downloaded", path)
    return out
