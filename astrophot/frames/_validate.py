# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Validation of the header values the frame attributes give to every stage.

A card that is present but unusable (not a number, not finite, out of the
physical range) is an `~astrophot.exceptions.InvalidKeywordError` naming the
file, the card and the value, never "missing" and never a silent default.
"""

import math

from astrophot.exceptions import InvalidKeywordError

__all__ = ["RANGES", "valid_number", "valid_integer"]

#: Accepted (low, high, low_inclusive) for each numeric attribute, and the unit for messages.
RANGES = {
    "exposure_time": (0.0, 1.0e6, True, "s"),
    "gain": (
        1.0e-3,
        1.0e3,
        True,
        "e-/ADU",
    ),  # no camera is below 0.001 e-/ADU; tinier values overflowed the noise model
    "set_temperature": (-150.0, 80.0, True, "deg C"),
    "ccd_temperature": (-150.0, 80.0, True, "deg C"),
}
_MAX_BINNING = 16


def _number(value):
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _range_text(low, high, inclusive, unit):
    op = ">=" if inclusive else ">"
    return f"must be a finite number {op} {low:g} and <= {high:g} {unit}"


def valid_number(attribute, keyword, value, source):
    """
    Return ``value`` as a float in the range of ``attribute``.

    Raises
    ------
    astrophot.exceptions.InvalidKeywordError
        Not a number, not finite, or outside `RANGES`.
    """
    low, high, inclusive, unit = RANGES[attribute]
    number = _number(value)
    reason = _range_text(low, high, inclusive, unit)
    if number is None or not math.isfinite(number):
        raise InvalidKeywordError(keyword, value, reason, source=source)
    if number > high or number < low or (number == low and not inclusive):
        raise InvalidKeywordError(keyword, value, reason, source=source)
    return number


def valid_integer(keyword, value, source):
    """Return a binning factor: an integer 1..16 (``2.0`` and ``'2'`` accepted)."""
    number = _number(value)
    reason = f"must be an integer from 1 to {_MAX_BINNING}"
    if number is None or not math.isfinite(number) or number != int(number):
        raise InvalidKeywordError(keyword, value, reason, source=source)
    if not 1 <= number <= _MAX_BINNING:
        raise InvalidKeywordError(keyword, value, reason, source=source)
    return int(number)
