# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Whether a header's DATAMAX can be a saturation level.

DATAMAX is "the maximum valid value" in the FITS standard, but many archives
(the Digitized Sky Survey, image editors) write the frame's own maximum
there. Taken as the saturation level it flags the brightest pixel of every
such frame SATURATED. It is believed only with a cross-check.
"""

import numpy as np

__all__ = []

#: Highest values of the usual analogue-to-digital converters (8 to 16 bits, signed 16 bits).
ADC_CEILINGS = (255.0, 1023.0, 4095.0, 16383.0, 32767.0, 65535.0)
#: DATAMAX this close below an ADC ceiling (fraction of it) counts as that ceiling.
CEILING_TOLERANCE = 0.002
#: Pixels at or above DATAMAX needed to call it a pile-up (a clipped star core).
MIN_PILED_PIXELS = 3


def near_adc_ceiling(value):
    """True when ``value`` is at, or just below, the highest value of a usual ADC."""
    value = float(value)
    return any(ceiling * (1 - CEILING_TOLERANCE) <= value <= ceiling for ceiling in ADC_CEILINGS)


def datamax_is_saturation(value, data=None):
    """
    Whether a header's DATAMAX ``value`` can be taken as the saturation level of ``data``.

    Yes when it is at (or within 0.2 % below) a usual ADC ceiling (65535,
    32767, 16383 ...), or when at least `MIN_PILED_PIXELS` pixels of
    ``data`` reach it (a clipped star core piles pixels up at the ceiling).
    A DATAMAX equal to the maximum of one or two pixels, as archives write
    it, is not a saturation level.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot._saturation import datamax_is_saturation
    >>> image = np.arange(100.0).reshape(10, 10)
    >>> datamax_is_saturation(99.0, image), datamax_is_saturation(65535, image)
    (False, True)
    >>> image[:2, :2] = 99.0
    >>> datamax_is_saturation(99.0, image)
    True
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        return False
    if not np.isfinite(value) or value <= 0:
        return False
    if near_adc_ceiling(value):
        return True
    if data is None:
        return False
    data = np.asarray(data)
    return int(np.count_nonzero(data >= value)) >= MIN_PILED_PIXELS
