# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""astrometry.net index files: where they are and which scales they cover."""

import functools
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from astrophot.exceptions import AstrometryError

__all__ = [
    "DEFAULT_INDEX_DIRS",
    "INSTALL_HINT",
    "IndexFile",
    "find_index_files",
    "select_index_files",
]

log = logging.getLogger(__name__)

#: Where astrometry.net index files usually live (Debian/Ubuntu first).
DEFAULT_INDEX_DIRS = (
    "/usr/share/astrometry",
    "/usr/local/share/astrometry",
    "/usr/local/astrometry/data",
    "/opt/homebrew/share/astrometry",
)
#: What to install when no index file is found.
INSTALL_HINT = (
    "install index files, e.g. the Debian/Ubuntu packages astrometry-data-tycho2-07 -08 -09 "
    "-10-19 (fields of about 0.5 to 30 deg; 'apt install astrometry-data-tycho2'), or pass "
    "index_files=/ a directory of 4100/5200-series files from data.astrometry.net, or set "
    "ASTROMETRY_INDEX_DIRS"
)
_CONFIG_FILES = (
    "/etc/astrometry.cfg",
    "/usr/local/etc/astrometry.cfg",
    "/usr/local/astrometry/etc/astrometry.cfg",
)
_RAD_TO_ARCMIN = 180.0 / math.pi * 60.0


@dataclass(frozen=True)
class IndexFile:
    """
    One astrometry.net index file.

    Parameters
    ----------
    path : str
    index_id : int
        ``INDEXID`` (for example 4110).
    scale_lower, scale_upper : float
        Quad sizes it holds (arcmin): it solves fields of roughly
        ``scale_lower`` to a few times ``scale_upper``.
    n_stars : int
    healpix : int
        -1 for an all-sky file.
    nside : int
    """

    path: str
    index_id: int
    scale_lower: float
    scale_upper: float
    n_stars: int
    healpix: int = -1
    nside: int = 0

    @property
    def name(self):
        """The file name."""
        return Path(self.path).name


@functools.lru_cache(maxsize=512)
def _read_index_header(path, mtime):
    try:
        header = fits.getheader(path, 0)
    except (OSError, ValueError) as exc:
        log.debug("not an index file: %s (%s)", path, exc)
        return None
    if "SCALE_U" not in header or "SCALE_L" not in header:
        return None
    return IndexFile(
        path=str(path),
        index_id=int(header.get("INDEXID", -1)),
        scale_lower=float(header["SCALE_L"]) * _RAD_TO_ARCMIN,
        scale_upper=float(header["SCALE_U"]) * _RAD_TO_ARCMIN,
        n_stars=int(header.get("NSTARS", 0)),
        healpix=int(header.get("HEALPIX", -1)),
        nside=int(header.get("HPNSIDE", 0)),
    )


def read_index_file(path):
    """Return the `IndexFile` description of ``path`` or None if it is not an index file."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    return _read_index_header(str(path.resolve()), mtime)


def _config_dirs():
    dirs = []
    for name in _CONFIG_FILES:
        try:
            text = Path(name).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) == 2 and words[0] == "add_path":
                dirs.append(words[1])
    return dirs


def _candidate_paths(entry):
    path = Path(entry).expanduser()
    if path.is_dir():
        return sorted(
            p for p in path.iterdir() if p.suffix.lower() in (".fits", ".fit", ".fz") and p.is_file()
        )
    if path.is_file():
        return [path]
    return []


def find_index_files(index_files=None):
    """
    Find astrometry.net index files.

    Parameters
    ----------
    index_files : str, path or sequence of them, optional
        Index files or directories holding them. Default: the directories in
        ``ASTROMETRY_INDEX_DIRS`` (``os.pathsep`` separated), the
        ``add_path`` lines of ``/etc/astrometry.cfg`` and
        `DEFAULT_INDEX_DIRS`.

    Returns
    -------
    list of IndexFile
        Sorted from the widest to the narrowest quads.

    Raises
    ------
    astrophot.exceptions.AstrometryError
        If explicitly given paths hold no index file.
    """
    explicit = index_files is not None
    if index_files is None:
        env = os.environ.get("ASTROMETRY_INDEX_DIRS", "")
        entries = [e for e in env.split(os.pathsep) if e] + _config_dirs() + list(DEFAULT_INDEX_DIRS)
    elif isinstance(index_files, (str, os.PathLike)):
        entries = [index_files]
    else:
        entries = list(index_files)
    found = {}
    for entry in entries:
        for path in _candidate_paths(entry):
            index = read_index_file(path)
            if index is not None:
                found[index.path] = index
    if explicit and not found:
        raise AstrometryError(f"no astrometry.net index file in {[str(e) for e in entries]}; {INSTALL_HINT}")
    return sorted(found.values(), key=lambda i: (-i.scale_upper, i.path))


def index_files_for_field(indexes, shape, scale_range):
    """
    The index files that can solve a frame of ``shape`` (ny, nx) at ``scale_range``.

    ``scale_range`` is (low, high) in arcsec/px, or None (every index file).
    Raises `~astrophot.exceptions.AstrometryError` when none fits.
    """
    if scale_range is None:
        return indexes
    ny, nx = shape
    short_side = min(nx, ny) * scale_range[0] / 60.0
    diagonal = float(math.hypot(nx, ny)) * scale_range[1] / 60.0
    usable = select_index_files(indexes, short_side=short_side, diagonal=diagonal)
    if not usable:
        raise AstrometryError(
            f"no index file has quads for a {short_side:.1f}-{diagonal:.1f} arcmin field "
            f"(have {indexes[-1].scale_lower:.1f}-{indexes[0].scale_upper:.1f} arcmin quads); "
            f"{INSTALL_HINT}"
        )
    return usable


def select_index_files(indexes, *, short_side=None, diagonal=None, min_quad_fraction=0.1):
    """
    Keep the index files whose quads fit a field of the given size.

    astrometry.net builds quads between ``min_quad_fraction`` of the short
    side and the diagonal of the field; an index is useful when its quad
    sizes overlap that range.

    Parameters
    ----------
    indexes : list of IndexFile
    short_side : float, optional
        Smallest possible short side of the field (arcmin).
    diagonal : float, optional
        Largest possible diagonal of the field (arcmin). Without both
        sizes every index is kept.
    min_quad_fraction : float, optional

    Returns
    -------
    list of IndexFile
    """
    if short_side is None or diagonal is None:
        return list(indexes)
    low = min_quad_fraction * short_side
    return [i for i in indexes if i.scale_upper >= low and i.scale_lower <= diagonal]
