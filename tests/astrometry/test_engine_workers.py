# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The engine's time-limited search works where ``multiprocessing`` may not start children."""

import multiprocessing

import pytest

from astrophot.astrometry._engine import solve_with_engine

from ._fields import TEST_DATA, grid_error, requires_engine
from .test_real import _engine_inputs


def _solve_in_worker():
    """Solve the 1.5 deg test field; returns the error against the truth (pixels) and the index used."""
    assert multiprocessing.current_process().daemon  # a daemonic worker, like a Dask nanny's
    frame, truth, star_list, hint = _engine_inputs("1.5deg")
    candidate = solve_with_engine(star_list, hint, index_files=TEST_DATA, time_limit=30)[0]
    return grid_error(candidate.wcs, truth.wcs, frame.data.shape), candidate.details["index"]


@requires_engine
@pytest.mark.slow
def test_engine_solves_inside_a_daemonic_worker():
    # a multiprocessing pool's workers are daemonic: they may not start multiprocessing children
    # (a forked engine failed there); the engine runs as a separate program instead
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        error, index = pool.apply(_solve_in_worker)
    assert error < 0.5
    assert index.startswith("index-test-")
