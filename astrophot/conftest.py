# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Doctest configuration for the package's docstrings."""

import matplotlib

matplotlib.use("Agg")
