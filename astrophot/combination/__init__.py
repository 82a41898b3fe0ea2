# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Combination of solved frames: resampling, stacks and mosaics."""

__all__ = []
