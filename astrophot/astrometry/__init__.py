# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Astrometry: plate-solve frames offline, verify every answer, cache the results.

- `solve_astrometry`: frame (and its star list) to a `~astrophot.SolvedFrame`
  with a verified TAN or TAN-SIP WCS. Backends, tried in order: the
  astrometry.net engine in-process (optional PyPI package ``astrometry``,
  GPL-3), astrometry.net's ``solve-field`` program, astrophot's own triangle
  matcher against Tycho-2 (index files or the demo extract), a catalogue
  file or Gaia, and the astrometry.net web service.
- `find_index_files`, `IndexFile`: the installed astrometry.net index files
  and the quad scales they cover.
- `verify_wcs`, `Verification`: the check every solution passes.
"""

from astrophot.astrometry._cache import SolutionCache, default_cache_dir
from astrophot.astrometry._hints import SolveHint, hint_from_frame
from astrophot.astrometry._index import DEFAULT_INDEX_DIRS, IndexFile, find_index_files, select_index_files
from astrophot.astrometry._solve import BACKENDS, solve_astrometry
from astrophot.astrometry._wcsfit import Verification, verify_wcs, wcs_summary

__all__ = [
    "BACKENDS",
    "DEFAULT_INDEX_DIRS",
    "IndexFile",
    "SolutionCache",
    "SolveHint",
    "Verification",
    "default_cache_dir",
    "find_index_files",
    "hint_from_frame",
    "select_index_files",
    "solve_astrometry",
    "verify_wcs",
    "wcs_summary",
]
