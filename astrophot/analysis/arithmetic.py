# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Arithmetic on frames with uncertainties, masks, flags and provenance."""

import numbers

import astropy.units as u
import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty

from astrophot.exceptions import FrameMismatchError, FrameTypeError
from astrophot.frames import CalibratedFrame, DQFlag, FrameBase, RawFrame, SolvedFrame
from astrophot.frames._validate import warn_if_degenerate
from astrophot.provenance import start_step

__all__ = ["OPERATORS", "image_arithmetic"]

#: Accepted spellings of each operation.
OPERATORS = {
    "+": "+",
    "add": "+",
    "plus": "+",
    "-": "-",
    "sub": "-",
    "subtract": "-",
    "minus": "-",
    "*": "*",
    "mul": "*",
    "multiply": "*",
    "times": "*",
    "/": "/",
    "div": "/",
    "divide": "/",
}


def _operator(op):
    key = str(op).strip().lower()
    if key not in OPERATORS:
        raise ValueError(f"unknown operator {op!r}; use one of + - * / (or add, sub, mul, div)")
    return OPERATORS[key]


def _name(frame):
    return getattr(frame, "name", None) or f"<in-memory {type(frame).__name__}>"


def _frame_parts(frame):
    """(data float, sigma or None, mask or None, flags or None, unit)."""
    data = np.asarray(frame.data)
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float64)
    sigma = None
    if frame.uncertainty is not None:
        unc = frame.uncertainty
        if not isinstance(unc, StdDevUncertainty):
            try:
                unc = unc.represent_as(StdDevUncertainty)
            except (TypeError, AttributeError, NotImplementedError):
                raise FrameTypeError(
                    f"{_name(frame)}: cannot use an uncertainty of type {type(unc).__name__}"
                ) from None
        sigma = np.asarray(unc.array, dtype=data.dtype)
        if unc.unit is not None and frame.unit is not None and unc.unit != frame.unit:
            sigma = (sigma * unc.unit).to_value(frame.unit)
    mask = None if frame.mask is None else np.asarray(frame.mask, dtype=bool)
    flags = getattr(frame, "flags", None)
    unit = frame.unit if frame.unit is not None else u.dimensionless_unscaled
    return data, sigma, mask, flags, unit


def _right_parts(right, op, lname, shape, lunit):
    """The parts of the right operand (as `_frame_parts`) and the step's parameters."""
    if isinstance(right, CCDData):
        rname = _name(right)
        parts = _frame_parts(right)
        if parts[0].shape != shape:
            raise FrameMismatchError(f"{lname} {op} {rname}: shapes differ ({shape} and {parts[0].shape})")
        return parts, {"operator": op, "operand": "frame"}
    if isinstance(right, u.Quantity):
        if not right.isscalar:
            raise FrameTypeError(
                f"{lname} {op}: a Quantity operand must be a scalar (use a frame for arrays)"
            )
        return (float(right.value), None, None, None, right.unit), {"operator": op, "operand": right}
    if isinstance(right, numbers.Real) and not isinstance(right, bool):
        value = float(right)
        if op == "/" and value == 0:
            raise ValueError(f"{lname} / 0: division by zero (every pixel would be infinite)")
        runit = lunit if op in "+-" else u.dimensionless_unscaled
        return (value, None, None, None, runit), {"operator": op, "operand": value}
    raise FrameTypeError(
        f"{lname} {op}: the right operand must be a frame, a number or a Quantity, not {type(right).__name__}"
    )


def _in_result_unit(right, op, lname, lunit, rdata, rsigma, runit):
    """The right operand converted to the unit of the left one for ``+``/``-``, and the result's unit."""
    if op not in "+-":
        return rdata, rsigma, lunit * runit if op == "*" else lunit / runit
    if runit != lunit:
        try:
            factor = float((1 * runit).to_value(lunit))
        except u.UnitConversionError:
            rname = _name(right) if isinstance(right, CCDData) else right
            raise FrameMismatchError(
                f"{lname} {op} {rname}: units {lunit} and {runit} cannot be added or subtracted"
            ) from None
        rdata = rdata * factor
        if rsigma is not None:
            rsigma = rsigma * factor
    return rdata, rsigma, lunit


def _apply(op, ldata, lsigma, rdata, rsigma):
    """The result and its uncertainty (None when neither operand has one), for independent operands."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if op == "+":
            data = ldata + rdata
        elif op == "-":
            data = ldata - rdata
        elif op == "*":
            data = ldata * rdata
        else:
            data = ldata / rdata
        sigma = None
        if lsigma is not None or rsigma is not None:
            ls = lsigma if lsigma is not None else 0.0
            rs = rsigma if rsigma is not None else 0.0
            if op in "+-":
                sigma = np.hypot(ls, rs)
            elif op == "*":
                sigma = np.hypot(ls * rdata, rs * ldata)
            else:
                sigma = np.hypot(ls / rdata, rs * ldata / (rdata * rdata))
            sigma = np.broadcast_to(np.abs(sigma), data.shape).astype(data.dtype)
    return np.asarray(data), sigma


def _combined_mask_and_flags(left, data, masks, flag_planes):
    """The OR of the operands' masks and flags, non-finite results masked and flagged."""
    mask = None
    for m in masks:
        if m is not None:
            mask = m.copy() if mask is None else (mask | m)
    flags = None
    for f in flag_planes:
        if f is not None:
            flags = np.array(f, dtype=np.uint32, copy=True) if flags is None else (flags | f)
    nonfinite = ~np.isfinite(data)
    if nonfinite.any():
        mask = nonfinite if mask is None else (mask | nonfinite)
        if flags is None:
            flags = np.zeros(data.shape, dtype=np.uint32)
        flags[nonfinite] |= np.uint32(DQFlag.NONFINITE)
    if isinstance(left, CalibratedFrame) and mask is None and flags is not None:
        mask = np.zeros(data.shape, dtype=bool)
    return mask, flags, nonfinite


def image_arithmetic(left, operator, right):
    """
    Add, subtract, multiply or divide a frame by another frame or a number.

    Parameters
    ----------
    left : `~astrophot.frames.FrameBase` or `~astropy.nddata.CCDData`
        The first operand; the result has its type (a `~astrophot.CalibratedFrame` stays
        a `~astrophot.CalibratedFrame`; a plain ``CCDData`` gives a ``CCDData``, without
        provenance), header and WCS, except that a `~astrophot.RawFrame`
        (pixels as read) gives a `~astrophot.CalibratedFrame` in its unit:
        ``raw - bias`` is no longer raw data.
    operator : {'+', '-', '*', '/'}
        Also ``add``, ``sub``, ``mul``, ``div`` (any case), as the original ``ap_*`` scripts'
        ``ap_imarith`` spells them.
    right : frame, `~astropy.nddata.CCDData`, number or `~astropy.units.Quantity`
        The second operand. For ``+`` and ``-`` a plain number is in the
        unit of ``left`` and a `~astropy.units.Quantity` must convert to it;
        for ``*`` and ``/`` a plain number is dimensionless and a quantity's
        unit multiplies or divides the result's.

    Returns
    -------
    type of ``left`` (`~astrophot.CalibratedFrame` for a raw frame)
        Data computed in floating point. Uncertainties propagate for
        independent operands: in quadrature for ``+``/``-``, in relative
        quadrature for ``*``/``/`` (a number has none). Masks and DQ flags
        are OR-ed; non-finite results (a division by zero) are masked and
        flagged `~astrophot.DQFlag.NONFINITE`. The provenance continues that
        of ``left`` with one ``image_arithmetic`` step naming both operands.

    Raises
    ------
    astrophot.exceptions.FrameMismatchError
        Different shapes, or units that cannot be added.
    astrophot.exceptions.FrameTypeError
        An operand that is neither a frame nor a number.
    ValueError
        An unknown operator, or a division by the number 0.

    Warns
    -----
    astrophot.exceptions.AstrophotUserWarning
        The result is mostly NaN, infinite or masked (e.g. a division by a
        frame of zeros), with the numbers.

    See Also
    --------
    subtract_background : Subtract a background model.
    astrophot.reduction.calibrate_frame : Bias, dark and flat in one step.

    Notes
    -----
    Unlike ``CCDData`` arithmetic (which keeps the class of the instance,
    so ``raw.subtract(dark)`` would still claim to be raw), the result type
    is chosen here on purpose, and covariances between the operands are
    ignored (``a - a`` has an uncertainty of ``sqrt(2)`` times that of ``a``).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import StdDevUncertainty
    >>> from astrophot import CalibratedFrame
    >>> from astrophot.analysis import image_arithmetic
    >>> a = CalibratedFrame(np.full((2, 2), 10.0), uncertainty=StdDevUncertainty(np.full((2, 2), 3.0)))
    >>> b = CalibratedFrame(np.full((2, 2), 4.0), uncertainty=StdDevUncertainty(np.full((2, 2), 4.0)))
    >>> total = image_arithmetic(a, "+", b)
    >>> float(total.data[0, 0]), float(total.uncertainty.array[0, 0]), type(total).__name__
    (14.0, 5.0, 'CalibratedFrame')
    """
    op = _operator(operator)
    if not isinstance(left, CCDData):
        raise FrameTypeError(f"the left operand must be a frame or CCDData, not {type(left).__name__}")
    lname = _name(left)
    ldata, lsigma, lmask, lflags, lunit = _frame_parts(left)
    right_is_frame = isinstance(right, CCDData)
    (rdata, rsigma, rmask, rflags, runit), parameter = _right_parts(right, op, lname, ldata.shape, lunit)
    rdata, rsigma, unit = _in_result_unit(right, op, lname, lunit, rdata, rsigma, runit)

    inputs = {"left": left}
    if right_is_frame:
        inputs["right"] = right
    rec = start_step("image_arithmetic", parameters=parameter, inputs=inputs)

    data, sigma = _apply(op, ldata, lsigma, rdata, rsigma)
    mask, flags, nonfinite = _combined_mask_and_flags(left, data, (lmask, rmask), (lflags, rflags))

    if isinstance(left, RawFrame):
        # raw data are the pixels as read: anything computed from them is processed data
        cls = CalibratedFrame
    else:
        cls = type(left) if isinstance(left, FrameBase) else CCDData
    header = left.meta.copy() if left.meta is not None else {}
    kwargs = {
        "unit": unit,
        "meta": header,
        "wcs": left.wcs,
        "uncertainty": None if sigma is None else StdDevUncertainty(sigma),
        "mask": mask,
    }
    if cls is CCDData:
        # a plain CCDData has no provenance to continue
        return CCDData(data, **kwargs)
    out = cls(data, flags=flags, provenance=left.provenance, **kwargs)
    warn_if_degenerate(
        out,
        f"{lname} {op} {_name(right) if right_is_frame else right}",
        inherited=(left, right)[: 1 + right_is_frame],
    )
    if isinstance(left, SolvedFrame):
        # the WCS still holds; the star fluxes of the solution may not
        out.solution = left.solution
        out.stars = None
    return rec.finish(
        out,
        primary=left,
        outcome={"unit": unit.to_string(), "n_nonfinite": int(nonfinite.sum())},
    )
