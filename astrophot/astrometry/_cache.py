# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A directory cache of verified solutions, keyed by the frame's pixel checksum.

Each entry is two small files: ``<sha256>.wcs`` (the WCS as FITS header
cards, readable by any FITS tool) and ``<sha256>.json`` (the solution
record). Entries are written atomically and only after verification.
"""

import json
import logging
import os
from pathlib import Path

from astropy.io import fits
from astropy.wcs import WCS

from astrophot._warnings import quiet
from astrophot.io._atomic import write_text_atomic

__all__ = ["SolutionCache", "default_cache_dir"]

log = logging.getLogger(__name__)


def default_cache_dir():
    """The user cache directory for solutions (``<user cache>/astrophot/astrometry``)."""
    try:
        from platformdirs import user_cache_dir

        base = Path(user_cache_dir("astrophot"))
    except ImportError:  # pragma: no cover - platformdirs ships with pip/astropy installs
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "astrophot"
    return base / "astrometry"


def _atomic_write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


class SolutionCache:
    """
    Verified solutions on disk.

    Parameters
    ----------
    directory : path-like or True
        Where entries live; ``True`` for `default_cache_dir`.
    """

    def __init__(self, directory):
        self.directory = default_cache_dir() if directory is True else Path(directory).expanduser()

    def _paths(self, key):
        if not key or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"cache keys are hex checksums, not {key!r}")
        return self.directory / f"{key}.wcs", self.directory / f"{key}.json"

    def get(self, key, shape):
        """
        The cached ``(wcs, solution)`` for ``key``, or None.

        An entry for another frame shape, or an unreadable one, is ignored.
        """
        wcs_path, json_path = self._paths(key)
        if not (wcs_path.is_file() and json_path.is_file()):
            return None
        try:
            solution = json.loads(json_path.read_text())
            with quiet():
                header = fits.Header.fromstring(wcs_path.read_text(), sep="\n")
                wcs = WCS(header)
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable cached solution %s (%s)", json_path, exc)
            return None
        if list(solution.get("shape", [])) != list(shape) or not solution.get("verified", False):
            return None
        ny, nx = shape
        wcs.pixel_shape = (nx, ny)
        return wcs, solution

    def put(self, key, wcs, solution):
        """Store a verified solution (atomic; an existing entry is replaced)."""
        wcs_path, json_path = self._paths(key)
        header = wcs.to_header(relax=True)
        _atomic_write(wcs_path, header.tostring(sep="\n", endcard=False, padding=False) + "\n")
        _atomic_write(json_path, json.dumps(solution, indent=1, sort_keys=True, default=str) + "\n")
        log.debug("cached the solution in %s", json_path)
        return json_path
