# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Checks of calibration inputs: same shape, binning, image type, exposure, temperature."""

import logging
import re
import warnings
from collections import Counter
from pathlib import Path

import astropy.units as u
import numpy as np

from astrophot.calibration._sources import FITS_NAME
from astrophot.exceptions import AstrophotUserWarning, CalibrationError, FrameMismatchError
from astrophot.io import classify_imagetyp

__all__ = ["check_inputs", "expand_inputs", "temperature_value"]

log = logging.getLogger(__name__)

_MAX_NAMES = 8


def temperature_value(value, what="temperature_tolerance"):
    """A temperature difference in kelvin/Celsius degrees from a float or a Quantity."""
    if isinstance(value, u.Quantity):
        if value.unit in (u.deg_C, u.K):
            return float(value.value)
        return float(value.to_value(u.K))
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of degrees or a Quantity, not {value!r}") from None
    if not value >= 0:
        raise ValueError(f"{what} must not be negative, not {value}")
    return value


def _names(items):
    names = [str(Path(n).name) if isinstance(n, str) and "<" not in n else str(n) for n in items]
    if len(names) > _MAX_NAMES:
        return ", ".join(names[:_MAX_NAMES]) + f" and {len(names) - _MAX_NAMES} more"
    return ", ".join(names)


def _full_names(sources):
    items = [s.name for s in sources]
    if len(items) > _MAX_NAMES:
        return ", ".join(items[:_MAX_NAMES]) + f" and {len(items) - _MAX_NAMES} more"
    return ", ".join(items)


def _same(sources, what, key, fmt=str):
    """Raise FrameMismatchError listing the files whose ``key`` differs from the majority."""
    values = [key(s) for s in sources]
    counts = Counter(values)
    if len(counts) <= 1:
        return values[0] if values else None
    major, n_major = counts.most_common(1)[0]
    groups = []
    for value in counts:
        if value == major:
            continue
        odd = [s for s, v in zip(sources, values) if v == value]
        groups.append(f"{fmt(value)}: {_full_names(odd)}")
    raise FrameMismatchError(
        f"frames differ in {what}: {n_major} of {len(sources)} have {fmt(major)}, but " + "; ".join(groups)
    )


def _shape_text(shape):
    return f"{shape[0]}x{shape[1]} (rows x columns)"


def _filter_text(name):
    return "no FILTER" if name is None else repr(name)


def _exposure_key(source):
    return round(source.info.require("exposure_time", purpose="a master dark").to_value(u.s), 3)


def check_inputs(sources, kind, *, temperature_tolerance=1.0, check_image_type=True, need_exposure=False):
    """
    Check the inputs of a master; drop CCD-TEMP outliers.

    Parameters
    ----------
    sources : list of combiner sources
    kind : {'bias', 'dark', 'flat'}
    temperature_tolerance : float
        Degrees: SET-TEMP values must agree within it; frames whose CCD-TEMP
        is further than it from the set-point (or the median CCD-TEMP) are
        dropped with a warning.
    check_image_type : bool
        Require IMAGETYP to say ``kind`` (frames without IMAGETYP pass).
    need_exposure : bool
        Every frame needs EXPOSURE/EXPTIME (darks: and the same value).

    Returns
    -------
    kept : list
    summary : dict
        ``dropped`` (names), ``set_temperature``, ``ccd_temperature`` (mean of
        the kept), ``exposure`` (seconds, darks), ``filter`` (flats),
        ``telescope``, ``date_obs`` (earliest).

    Raises
    ------
    CalibrationError
        No frames, or none left after dropping temperature outliers.
    FrameMismatchError
        Frames differ in shape, binning, image type, telescope, exposure
        (darks), filter (flats) or set temperature; the message lists them.
    MissingKeywordError
        EXPOSURE/EXPTIME is missing where needed.
    """
    if not sources:
        raise CalibrationError(f"no input frames to make a master {kind} from")
    tolerance = temperature_value(temperature_tolerance)
    _same(sources, "shape", lambda s: s.shape, _shape_text)
    _same(sources, "binning", lambda s: s.info.binning, lambda b: f"binning {b[0]}x{b[1]}")
    if check_image_type:
        wrong = []
        for s in sources:
            found = classify_imagetyp(s.header.get("IMAGETYP"))
            if found is not None and found != kind:
                wrong.append(f"{s.name} (IMAGETYP={str(s.header.get('IMAGETYP')).strip()!r})")
        if wrong:
            more = f" and {len(wrong) - _MAX_NAMES} more" if len(wrong) > _MAX_NAMES else ""
            shown = ", ".join(wrong[:_MAX_NAMES]) + more
            raise FrameMismatchError(f"not {kind} frames: {shown}")
    telescopes = {s.info.telescope for s in sources} - {None}
    if len(telescopes) > 1:
        named = [s for s in sources if s.info.telescope]
        _same(named, "telescope (TELESCOP)", lambda s: s.info.telescope, repr)
    summary = {"telescope": next(iter(telescopes)) if telescopes else None}
    if kind == "dark" or need_exposure:
        exposures = [_exposure_key(s) for s in sources]
        if kind == "dark":
            summary["exposure"] = _same(sources, "exposure time", _exposure_key, lambda t: f"{t:g} s")
        else:
            summary["exposures"] = exposures
    if kind == "flat":
        summary["filter"] = _same(sources, "filter (FILTER)", lambda s: s.info.filter, _filter_text)

    set_temps = [(s, s.info.set_temperature) for s in sources]
    known = [(s, t.to_value(u.deg_C)) for s, t in set_temps if t is not None]
    reference = None
    if known:
        reference = float(np.median([t for _, t in known]))
        odd = [f"{s.name} (SET-TEMP {t:g} C)" for s, t in known if abs(t - reference) > tolerance]
        if odd:
            raise FrameMismatchError(
                f"frames differ in set temperature from {reference:g} C by more than {tolerance:g} C: "
                + ", ".join(odd)
            )
    summary["set_temperature"] = reference
    ccd = [(s, s.info.ccd_temperature) for s in sources]
    ccd_known = [(s, t.to_value(u.deg_C)) for s, t in ccd if t is not None]
    kept, dropped = list(sources), []
    if ccd_known:
        ref = reference if reference is not None else float(np.median([t for _, t in ccd_known]))
        outliers = {id(s): t for s, t in ccd_known if abs(t - ref) > tolerance}
        if outliers:
            dropped = [s for s in sources if id(s) in outliers]
            kept = [s for s in sources if id(s) not in outliers]
            text = ", ".join(f"{s.name} (CCD-TEMP {outliers[id(s)]:g} C)" for s in dropped)
            if not kept:
                raise CalibrationError(
                    f"every frame's CCD-TEMP is more than {tolerance:g} C from {ref:g} C: {text}; "
                    "raise temperature_tolerance to use them"
                )
            warnings.warn(
                f"dropping {len(dropped)} {kind} frame(s) whose CCD-TEMP is more than {tolerance:g} C "
                f"from {ref:g} C: {text}",
                AstrophotUserWarning,
                stacklevel=3,
            )
    temps = [s.info.ccd_temperature for s in kept]
    temps = [t.to_value(u.deg_C) for t in temps if t is not None]
    summary["ccd_temperature"] = float(np.mean(temps)) if temps else None
    dates = [s.info.date_obs for s in kept]
    dates = [d for d in dates if d is not None]
    summary["date_obs"] = min(dates, key=lambda t: t.jd) if dates else None
    summary["dropped"] = [s.name for s in dropped]
    return kept, summary


def expand_inputs(inputs, *, exclude=("Master_*",)):
    """
    Expand directories into the FITS files they hold.

    Parameters
    ----------
    inputs : path-like, frame or sequence of them
        A directory stands for its FITS files (``.fit``, ``.fits``, ``.fts``,
        optionally ``.gz``/``.bz2``/``.fz``), sorted by name.
    exclude : sequence of str, optional
        Glob patterns (case-insensitive) of file names to leave out of a
        directory (iTelescope masters by default).

    Returns
    -------
    list

    Raises
    ------
    CalibrationError
        A directory holds no FITS file (after the exclusions).
    """
    if isinstance(inputs, (str, Path)) or not hasattr(inputs, "__iter__"):
        inputs = [inputs]
    patterns = [re.compile(_glob_to_regex(p), re.IGNORECASE) for p in (exclude or ())]
    out = []
    for item in inputs:
        if isinstance(item, (str, Path)) and Path(item).is_dir():
            directory = Path(item)
            files = sorted(
                p
                for p in directory.iterdir()
                if p.is_file() and FITS_NAME.search(p.name) and not any(r.fullmatch(p.name) for r in patterns)
            )
            if not files:
                skipped = " (after excluding " + ", ".join(exclude) + ")" if exclude else ""
                raise CalibrationError(f"{directory}: the directory holds no FITS files{skipped}")
            out.extend(files)
        else:
            out.append(item)
    return out


def _glob_to_regex(pattern):
    import fnmatch

    return fnmatch.translate(pattern)
