# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Validation of the header values the frame attributes give to every stage.

A card that is present but unusable (not a number, not finite, out of the
physical range) is an `~astrophot.exceptions.InvalidKeywordError` naming the
file, the card and the value, never "missing" and never a silent default.
"""

import math
import warnings

import numpy as np

from astrophot.exceptions import AstrophotUserWarning, InvalidKeywordError

__all__ = ["RANGES", "degenerate_problems", "valid_integer", "valid_number", "warn_if_degenerate"]

#: More than this fraction of unusable pixels makes a frame degenerate.
DEGENERATE_FRACTION = 0.5
#: A median this many noise sigmas below zero is not a physical light.
NEGATIVE_SIGMA = 5.0

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


def degenerate_problems(data, *, mask=None, flags=None, noise=None):
    """
    What makes a frame unusable: ``{kind: words with the numbers}`` (empty if nothing).

    Kinds: ``"nonfinite"``, more than half the pixels NaN/infinite;
    ``"masked"``, more than half masked (pixels flagged ``NO_DATA``, outside a
    resampled frame's coverage, are declared, not degenerate); ``"negative"``,
    when ``noise`` (one pixel's sigma, in the data's unit) is given, a median
    more than `NEGATIVE_SIGMA` sigmas below zero: a light below its bias,
    e.g. a blank (all-zero) raw frame.
    """
    data = np.asarray(data)
    if data.size == 0 or data.ndim != 2:
        return {}
    declared = np.zeros(data.shape, dtype=bool)
    if flags is not None and np.shape(flags) == data.shape:
        from astrophot.frames.dqflags import DQFlag

        declared = (np.asarray(flags) & int(DQFlag.NO_DATA)) != 0
    problems = {}
    n = data.size
    if data.dtype.kind in "fc" and not np.isfinite(data[::8, ::8]).all():
        bad = np.count_nonzero(~np.isfinite(data) & ~declared)
        if bad > DEGENERATE_FRACTION * n:
            problems["nonfinite"] = f"{bad / n:.0%} of its pixels are NaN or infinite"
    if mask is not None and np.shape(mask) == data.shape and not problems:
        masked = np.count_nonzero(np.asarray(mask) & ~declared)
        if masked > DEGENERATE_FRACTION * n:
            problems["masked"] = f"{masked / n:.0%} of its pixels are masked"
    if noise is not None and noise > 0 and not problems:
        sample = data[::4, ::4]
        sample = sample[np.isfinite(sample)]
        median = float(np.median(sample)) if sample.size else 0.0
        if median < -NEGATIVE_SIGMA * noise:
            problems["negative"] = (
                f"its median is {median:.4g}, {-median / noise:.0f} sigma below zero: a light darker "
                "than its bias is not physical (a blank or corrupt raw frame? the wrong bias?)"
            )
    return problems


def warn_if_degenerate(frame, name, *, noise=None, masked=True, inherited=(), stacklevel=3):
    """
    Warn (`AstrophotUserWarning`, naming ``name``) when `degenerate_problems` finds any.

    ``masked=False`` leaves the masked fraction out (a file as written or
    read); problems the frames ``inherited`` already have (the inputs of
    the step) are not repeated.
    """
    problems = degenerate_problems(
        frame.data,
        mask=getattr(frame, "mask", None) if masked else None,
        flags=getattr(frame, "flags", None),
        noise=noise,
    )
    for source in inherited:
        for kind in degenerate_problems(
            source.data,
            mask=getattr(source, "mask", None) if masked else None,
            flags=getattr(source, "flags", None),
        ):
            problems.pop(kind, None)
    if problems:
        warnings.warn(
            f"{name}: {'; '.join(problems.values())}", AstrophotUserWarning, stacklevel=stacklevel + 1
        )
    return problems
