# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Square dilations of boolean masks by shifted ORs.

``grow(mask, reach)`` equals ``scipy.ndimage.binary_dilation`` with a
``(2 reach + 1)``-square structure (outside the array counts as unset), in
``2 log2(reach)`` whole-array ORs per axis instead of a pass per structure
element: 20-40x faster on a full frame (tests/test_morphology.py compares them).
"""

import numpy as np

__all__ = ["any_within", "grow"]


def any_within(mask, reach, axis):
    """Whether any pixel of ``mask`` within ``reach`` along ``axis`` is set (windows clipped at the edges)."""
    m = np.moveaxis(mask, axis, 0)
    n = m.shape[0]
    width = min(2 * reach + 1, n)
    run = m.copy()  # run[i]: any of m[i : i + span]
    span = 1
    while 2 * span <= width:
        run[: n - span] |= run[span:]
        span *= 2
    if width > span:
        run[: n - (width - span)] |= run[width - span :]
    out = np.empty_like(m)
    if n > reach:
        out[reach:] = run[: n - reach]
    k = min(reach, n)
    prefix = np.logical_or.accumulate(m[: min(2 * reach, n)], axis=0)
    out[:k] = prefix[np.minimum(np.arange(k) + reach, len(prefix) - 1)]
    return np.moveaxis(out, 0, axis)


def grow(mask, reach):
    """``mask`` dilated by ``reach`` pixels (a square of side ``2 * reach + 1``)."""
    mask = np.asarray(mask, dtype=bool)
    if reach <= 0:
        return mask.copy()
    return any_within(any_within(mask, reach, 0), reach, 1)
