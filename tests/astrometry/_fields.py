# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Helpers for the astrometry tests: simulated fields with known WCS, the tiny index files."""

import functools
import shutil
from pathlib import Path

import numpy as np
import pytest

from astrophot.astrometry._engine import engine_available

#: The small index files and catalogue built by tests/data/astrometry/build_test_data.py.
TEST_DATA = Path(__file__).resolve().parents[1] / "data" / "astrometry"
TEST_CATALOG = TEST_DATA / "tycho2_test_fields.ecsv"
DEBIAN_INDEX_DIR = Path("/usr/share/astrometry")

#: Simulated fields (real Tycho-2 stars of the demo extract): about 0.7, 1.5 and 4 degrees wide.
FIELDS = {
    "0.7deg": {"target": "NGC 6888", "shape": (450, 600), "scale": 4.2},
    "1.5deg": {"target": "Cygnus Loop", "shape": (400, 600), "scale": 9.0},
    "4deg": {"target": "M13", "shape": (400, 600), "scale": 24.0},
}
#: Rotation of the simulated fields (deg east of north of +y).
ROTATION = 30.0

requires_engine = pytest.mark.skipif(
    not engine_available(),
    reason="the optional PyPI package 'astrometry' (extra 'solver', GPL-3) is not installed",
)
requires_solve_field = pytest.mark.skipif(
    shutil.which("solve-field") is None,
    reason="astrometry.net's solve-field is not installed (Debian package astrometry.net)",
)
requires_debian_index = pytest.mark.skipif(
    not any(DEBIAN_INDEX_DIR.glob("index-*.fits")) if DEBIAN_INDEX_DIR.is_dir() else True,
    reason="Debian's Tycho-2 index files (astrometry-data-tycho2-*) are not installed",
)


@functools.cache
def simulated_field(name, seed=3):
    """A simulated light (calibrated in ADU), its truth and its find_stars table (cached)."""
    from astrophot.analysis import find_stars
    from astrophot.datasets import make_raw_frame

    spec = FIELDS[name]
    frame, truth = make_raw_frame(
        target=spec["target"],
        shape=spec["shape"],
        scale=spec["scale"],
        rotation=ROTATION,
        synthetic_density=300.0,
        seed=seed,
    )
    frame = as_calibrated(frame)
    return frame, truth[0], find_stars(frame)


def as_calibrated(raw):
    """``raw`` calibrated without masters, in ADU: what solve_astrometry takes."""
    from astrophot import calibrate_frame

    return calibrate_frame(raw, unit="adu", gain=1.0, read_noise=8.0)


def grid_error(wcs, truth_wcs, shape):
    """Largest distance (px) between the two WCSs over a 5x5 grid spanning the frame."""
    ny, nx = shape
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
    px, py = wcs.world_to_pixel(truth_wcs.pixel_to_world(gx, gy))
    return float(np.max(np.hypot(px - gx, py - gy)))
