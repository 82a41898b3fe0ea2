# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Fixtures of the combination tests: simulated solved frames."""

import pytest

from astrophot.datasets import make_solved_frame


@pytest.fixture(scope="module")
def sip_frame():
    """A noiseless TAN-SIP frame with isolated stars and no sky (positions and fluxes known)."""
    return make_solved_frame(shape=(160, 200), n_stars=12, sky=0.0, noise=False, fwhm=3.5, edge=22, seed=3)
