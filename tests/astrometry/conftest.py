# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Fixtures for the astrometry tests."""

import pytest

from ._fields import TEST_DATA


@pytest.fixture
def test_data():
    """The directory of tiny index files and the test catalogue."""
    return TEST_DATA
