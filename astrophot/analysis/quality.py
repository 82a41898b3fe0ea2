# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Frame quality: a record per frame, the night's table, and which frames to keep."""

import logging
import math
from dataclasses import asdict, dataclass, fields

import numpy as np
from astropy.table import Table

from astrophot.analysis._common import as_frame, exposure_seconds, frame_name
from astrophot.analysis.psf import measure_psf
from astrophot.analysis.stars import _find, _prepare
from astrophot.exceptions import AnalysisError

__all__ = [
    "DEFAULT_RULES",
    "QualityRecord",
    "assess_quality",
    "example_records",
    "select_frames",
    "summarize_quality",
]

log = logging.getLogger(__name__)

#: Header keywords read for the Moon's distance from the target (degrees).
MOON_KEYWORDS = ("MOONSEP", "MOON_SEP", "MOONDIST", "MOONANGL")

#: Default rules of `select_frames`. Robust limits are relative to the
#: median of the frames of the same filter, with the spread from the MAD;
#: a frame is an outlier when it is beyond both ``n_sigma`` spreads and the
#: tolerance. Fixed limits (None: not applied) are absolute.
DEFAULT_RULES = {
    "robust": True,
    "n_sigma": 5.0,
    "min_frames": 3,
    "fwhm_tolerance": 0.25,
    "ellipticity_tolerance": 0.1,
    "stars_tolerance": 0.5,
    "background_tolerance": 1.0,
    "transparency_tolerance": 0.5,
    "max_fwhm": None,
    "max_fwhm_arcsec": None,
    "max_ellipticity": None,
    "min_stars": None,
    "max_background": None,
    "max_sky_noise": None,
    "max_airmass": None,
    "min_transparency": None,
}


@dataclass(frozen=True)
class QualityRecord:
    """
    The quality of one frame (see `assess_quality`).

    Attributes
    ----------
    file : str
        The frame's file, or a description of an in-memory frame.
    date_obs : str or None
        Start of the exposure (ISO, UTC).
    mjd : float
        Modified Julian date of ``date_obs`` (NaN when unknown).
    filter : str or None
        Filter name.
    exposure_time : float or None
        Seconds.
    fwhm : float
        Median stellar FWHM (pixels).
    fwhm_arcsec : float or None
        The same in arcsec, when the plate scale is known.
    ellipticity : float
        ``1 - b/a`` of the PSF.
    theta : float
        PSF major axis (degrees from +x towards +y).
    n_stars : int
        Stars detected (at the `find_stars` threshold).
    n_psf_stars : int
        Stars used for the PSF.
    background : float
        Median sky level (frame unit per pixel).
    background_gradient : float
        Change of a plane fitted to the sky across the frame diagonal
        (frame unit per pixel).
    sky_noise : float
        Median sky RMS per pixel (frame unit).
    airmass : float or None
        Header ``AIRMASS``.
    moon_separation : float or None
        Header Moon distance (degrees; ``MOONSEP`` or an alias).
    saturated_fraction : float
        Fraction of pixels saturated.
    limiting_magnitude : float
        Instrumental magnitude (``-2.5 log10(rate)``, as `find_stars`) of a
        point source detected at 5 sigma in the photometric aperture.
    star_flux : float
        Median flux rate of the stars ranked 11th to 30th by flux, measured
        in an aperture of 2.5 major-axis FWHM (nearly all their light, in
        focus or not): the same stars in every frame of a field, so its ratio
        to the night's median measures the transparency.
    unit : str
        Unit of the levels and fluxes.
    target : str or None
        Target name (OBJECT or the iTelescope file name).
    telescope : str or None
        Telescope (TELESCOP or the iTelescope file name).
    fwhm_source : str or None
        Where ``fwhm`` comes from: ``'measured'`` (the stars' Moffat fits),
        ``'argument'`` (the FWHM given to `find_stars`), ``'default'`` (too
        few stars to measure the PSF: ``fwhm`` is NaN rather than the 3 px
        starting guess) or ``'none'`` (no usable star).

    See Also
    --------
    assess_quality : Makes the record.
    """

    file: str
    date_obs: str
    mjd: float
    filter: str
    exposure_time: float
    fwhm: float
    fwhm_arcsec: float
    ellipticity: float
    theta: float
    n_stars: int
    n_psf_stars: int
    background: float
    background_gradient: float
    sky_noise: float
    airmass: float
    moon_separation: float
    saturated_fraction: float
    limiting_magnitude: float
    star_flux: float
    unit: str
    target: str = None
    telescope: str = None
    fwhm_source: str = None

    def to_dict(self):
        """
        The record as a dict of plain values.

        Returns
        -------
        dict
            Field name to value (`dataclasses.asdict`).
        """
        return asdict(self)


def _header_float(header, *keys):
    for key in keys:
        value = header.get(key) if header is not None else None
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            return value
    return None


def _star_flux(stars, exposure, prepared, psf):
    """
    Median flux rate of the stars ranked 11th-30th, in a wide aperture.

    The aperture (2.5 times the major-axis FWHM) holds nearly all the light
    whatever the focus or trailing, so the ratio between frames of a field
    measures the transparency.
    """
    if len(stars) == 0:
        return math.nan
    from astrophot.analysis.stars import StarFlag

    flux = np.asarray(getattr(stars["flux"], "value", stars["flux"]), dtype=float)
    flags = np.asarray(stars["flags"])
    usable = np.isfinite(flux) & ((flags & int(StarFlag.NEAR_EDGE)) == 0)
    order = np.flatnonzero(usable)[np.argsort(-flux[usable], kind="stable")]
    chosen = order[10:30] if order.size >= 30 else order[: max(1, order.size // 2)]
    if chosen.size == 0:
        return math.nan
    x = np.asarray(getattr(stars["x"], "value", stars["x"]), dtype=float)[chosen]
    y = np.asarray(getattr(stars["y"], "value", stars["y"]), dtype=float)[chosen]
    if psf is not None and math.isfinite(psf.fwhm):
        major = psf.fwhm / math.sqrt(max(1.0 - min(psf.ellipticity, 0.9), 0.1))
        radius = 2.5 * major
        sub = np.ascontiguousarray(prepared.data - prepared.bkg, dtype=np.float32)
        import sep

        wide, _, _ = sep.sum_circle(sub, x, y, radius, mask=prepared.bad_all, subpix=1)
        values = wide
    else:
        values = flux[chosen]
    rate = float(np.median(values))
    return rate / exposure if exposure else rate


def assess_quality(frame, *, stars=None, background=None, saturation=None, **find_options):
    """
    Measure the quality of one frame.

    Parameters
    ----------
    frame : `~astrophot.CalibratedFrame`, `~astropy.nddata.CCDData`, 2-D array, or path
        The frame (its file name, filter, exposure and date come from it).
    stars : `~astropy.table.QTable`, optional
        `find_stars` output for this frame (found here when None).
    background : `~astrophot.analysis.Background` or tuple, optional
        The result of `estimate_background` (estimated here when None): with
        it the sky is not fitted again, and the level, noise and gradient
        are those of its mesh.
    saturation : float or `~astropy.units.Quantity`, optional
        Saturation level (see `find_stars`).
    **find_options
        Passed to `find_stars` when ``stars`` is None.

    Returns
    -------
    QualityRecord
        The frame's measurements.

    Raises
    ------
    astrophot.exceptions.AnalysisError
        No unmasked sky.

    See Also
    --------
    summarize_quality : Gather records into a table.
    select_frames : Accept or reject the frames of a night.
    find_stars : The star list the record is measured from.
    measure_psf : The PSF summary behind the FWHM and shape.

    Notes
    -----
    A frame without any usable star still gets a record (FWHM and shape
    NaN, ``n_stars`` 0): a fully clouded frame is a result, not an error.
    With too few stars to measure the PSF (`find_stars` kept its starting
    guess, ``meta["fwhm_source"] == 'default'``) the FWHM is NaN and
    ``fwhm_source`` says so, so that `select_frames` never takes the guess
    for a measurement.

    Examples
    --------
    >>> from astrophot.analysis import assess_quality
    >>> from astrophot.datasets import make_raw_frame
    >>> raw, truth = make_raw_frame(shape=(200, 300), fwhm=3.0, seed=2)
    >>> record = assess_quality(raw.subtract(1000 * raw.unit))
    >>> record.n_stars > 20, abs(record.fwhm - 3.0) < 0.3
    (True, True)
    """
    obj = as_frame(frame, purpose="assess_quality")
    name = frame_name(obj)
    prepared = _prepare(
        obj,
        mask=find_options.pop("mask", None),
        background=background,
        saturation=saturation,
        fwhm=find_options.get("fwhm"),
    )
    if stars is None:
        stars, _ = _find(
            obj,
            prepared,
            n_sigma=find_options.pop("n_sigma", 5.0),
            fwhm=find_options.pop("fwhm", None),
            max_stars=find_options.pop("max_stars", None),
            aperture_radius=find_options.pop("aperture_radius", None),
            min_area=find_options.pop("min_area", 5),
            deblend=find_options.pop("deblend", True),
            keep_sharp=find_options.pop("keep_sharp", False),
            cfa=find_options.pop("cfa", None),
        )
        if find_options:
            raise TypeError(f"unknown find_stars options {sorted(find_options)}")
    elif find_options:
        raise TypeError(f"options {sorted(find_options)} are only used when no stars are given")
    try:
        psf = measure_psf(obj, stars=stars)
    except AnalysisError as exc:
        log.warning("%s: %s", name, exc)
        psf = None
    fwhm_source = "none" if psf is None else str(stars.meta.get("fwhm_source", "measured"))
    if fwhm_source == "default":
        log.warning("%s: too few stars to measure the PSF; no FWHM reported", name)

    data, sat, bkg, rms, model = prepared.data, prepared.sat, prepared.bkg, prepared.rms, prepared.model
    ny, nx = data.shape
    diagonal = math.hypot(nx, ny)
    if model is not None:
        gy, gx = model.plane_gradient()
        level = model.median_level
        noise = model.median_rms
    else:
        step = max(1, int(math.sqrt(bkg.size / 40000)))
        sub = bkg[::step, ::step].astype(float)
        yy, xx = np.mgrid[0:ny:step, 0:nx:step]
        design = np.column_stack([np.ones(sub.size), yy.ravel(), xx.ravel()])
        coeffs, *_ = np.linalg.lstsq(design, sub.ravel(), rcond=None)
        gy, gx = float(coeffs[1]), float(coeffs[2])
        level = float(np.median(bkg))
        noise = float(np.median(rms))
    exposure = exposure_seconds(obj)
    radius = float(stars.meta.get("aperture_radius", 1.5 * (psf.fwhm if psf else 3.0)))
    limit_flux = 5.0 * noise * math.sqrt(math.pi) * radius
    rate = limit_flux / exposure if exposure else limit_flux
    limiting = -2.5 * math.log10(rate) if rate > 0 else math.nan
    sat_fraction = float(sat.mean()) if sat is not None else 0.0
    date = obj.date_obs if hasattr(obj, "date_obs") else None
    header = obj.meta
    return QualityRecord(
        file=name,
        date_obs=None if date is None else date.isot,
        mjd=math.nan if date is None else float(date.mjd),
        filter=getattr(obj, "filter", None),
        exposure_time=exposure,
        fwhm=psf.fwhm if psf and fwhm_source != "default" else math.nan,
        fwhm_arcsec=psf.fwhm_arcsec if psf and fwhm_source != "default" else None,
        ellipticity=psf.ellipticity if psf else math.nan,
        theta=psf.theta if psf else math.nan,
        n_stars=int(len(stars)),
        n_psf_stars=psf.n_stars if psf else 0,
        background=float(level),
        background_gradient=float(math.hypot(gx, gy) * diagonal),
        sky_noise=float(noise),
        airmass=_header_float(header, "AIRMASS"),
        moon_separation=_header_float(header, *MOON_KEYWORDS),
        saturated_fraction=sat_fraction,
        limiting_magnitude=float(limiting),
        star_flux=float(_star_flux(stars, exposure, prepared, psf)),
        unit=str(obj.unit),
        target=getattr(obj, "target", None),
        telescope=getattr(obj, "telescope", None),
        fwhm_source=fwhm_source,
    )


_UNITS = {
    "mjd": "d",
    "exposure_time": "s",
    "fwhm": "pix",
    "fwhm_arcsec": "arcsec",
    "theta": "deg",
    "moon_separation": "deg",
    "limiting_magnitude": "mag",
}


def _as_records(records):
    if isinstance(records, Table):
        return records
    if isinstance(records, QualityRecord):
        records = [records]
    rows = []
    for rec in records:
        if isinstance(rec, QualityRecord):
            rows.append(rec.to_dict())
        elif isinstance(rec, dict):
            rows.append(dict(rec))
        else:
            raise TypeError(f"a quality record must be a QualityRecord or dict, not {type(rec).__name__}")
    return rows


def summarize_quality(records):
    """
    Gather quality records into one table.

    Parameters
    ----------
    records : sequence of `QualityRecord` (or dicts with the same keys)
        One per frame, from `assess_quality`.

    Returns
    -------
    `~astropy.table.Table`
        One row per record, in the given order, with units on the columns
        that have them (missing values are NaN, or empty strings).

    See Also
    --------
    assess_quality : Make a record.
    select_frames : Accept or reject the frames, with weights.
    write_quality_report : CSV, plots and HTML page.

    Examples
    --------
    >>> from astrophot.analysis import QualityRecord, summarize_quality
    >>> from astrophot.analysis.quality import example_records
    >>> table = summarize_quality(example_records())
    >>> len(table), table["fwhm"].unit
    (6, Unit("pix"))
    """
    rows = _as_records(records)
    if isinstance(rows, Table):
        return rows.copy()
    names = [f.name for f in fields(QualityRecord)]
    table = Table()
    for name in names:
        values = [row.get(name) for row in rows]
        kind = {f.name: f.type for f in fields(QualityRecord)}[name]
        if kind in (str, "str") or name in (
            "file",
            "date_obs",
            "filter",
            "unit",
            "target",
            "telescope",
            "fwhm_source",
        ):
            table[name] = np.array(["" if v is None else str(v) for v in values], dtype=str)
        elif name in ("n_stars", "n_psf_stars"):
            table[name] = np.array([0 if v is None else int(v) for v in values], dtype=int)
        else:
            table[name] = np.array([math.nan if v is None else float(v) for v in values], dtype=float)
        if name in _UNITS:
            table[name].unit = _UNITS[name]
    for row in rows:
        extra = set(row) - set(names)
        if extra:
            raise ValueError(f"unknown quality fields {sorted(extra)}")
    return table


def _robust(values):
    values = np.asarray(values, dtype=float)
    good = values[np.isfinite(values)]
    if good.size == 0:
        return math.nan, math.nan
    median = float(np.median(good))
    return median, float(1.4826 * np.median(np.abs(good - median)))


def _num(value):
    """A measured value for a sentence: 3 significant digits, whole numbers from 100 up."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _limit_text(median, sign, margin, tol, tol_option, relative, k, spread, *, group="night", unit=""):
    """How a robust limit was set, e.g. ``1.25 x Red median 3.03 px``."""
    pm = "+" if sign > 0 else "-"
    if margin > tol:  # the spread, not the tolerance, set the limit
        return f"{group} median {_num(median)}{unit} {pm} {k:g} x robust spread {_num(spread)}{unit}"
    if relative:
        return f"{1 + sign * tol_option:.2f} x {group} median {_num(median)}{unit}"
    return f"{group} median {_num(median)}{unit} {pm} {tol_option:g}{unit}"


def select_frames(records, *, rules=None):
    """
    Accept or reject frames, with the reason, and give stacking weights.

    Parameters
    ----------
    records : sequence of `QualityRecord`, or the table of `summarize_quality`
        The frames of a night (several filters may be mixed).
    rules : dict, optional
        Overrides of `DEFAULT_RULES`. Robust rules compare each frame with
        the other frames of its filter: ``fwhm_tolerance`` (fraction above
        the median), ``ellipticity_tolerance`` (absolute), ``stars_tolerance``
        (fraction below), ``background_tolerance`` (fraction above),
        ``transparency_tolerance`` (fraction below), each also needing
        ``n_sigma`` robust spreads; ``robust=False`` turns them off and they
        need at least ``min_frames`` frames. Fixed limits: ``max_fwhm``
        (pixels), ``max_fwhm_arcsec``, ``max_ellipticity``, ``min_stars``,
        ``max_background``, ``max_sky_noise``, ``max_airmass``,
        ``min_transparency`` (relative to the median).

    Returns
    -------
    `~astropy.table.Table`
        The summary table plus ``transparency`` (star flux relative to the
        median of the filter), ``accepted``, ``reason`` (each failed test
        with the value and the limit, the most severe first; empty when
        accepted) and ``weight`` (relative signal-to-noise squared of a
        point source, ``transparency**2 / (fwhm**2 sky_noise**2)``, 1 for
        the best accepted frame of each filter, 0 when rejected).
        ``meta["rules"]`` holds the rules applied and ``meta["limits"]``
        the robust limit of each filter and column, ``{filter: {column:
        (limit, how it was set)}}``.

    Raises
    ------
    ValueError
        An unknown rule.

    See Also
    --------
    assess_quality : Make the records.
    summarize_quality : The table without decisions.
    write_quality_report : CSV, plots and HTML page of the decisions.

    Examples
    --------
    >>> from astrophot.analysis import select_frames
    >>> from astrophot.analysis.quality import example_records
    >>> table = select_frames(example_records())
    >>> table["accepted"].tolist()
    [True, True, True, True, False, True]
    >>> str(table["reason"][4]).split(";")[0]
    'FWHM 7.5 px > 3.78 px (1.25 x Red median 3.02 px)'
    """
    options = _rule_options(rules)
    table = summarize_quality(records)
    n = len(table)
    groups = {}
    for i, name in enumerate(table["filter"]):
        groups.setdefault(str(name), []).append(i)

    flux = np.asarray(table["star_flux"], dtype=float)
    transparency = np.full(n, math.nan)
    failures = [[] for _ in range(n)]
    limits = {}
    for members in groups.values():
        idx = np.asarray(members)
        med_flux, _ = _robust(flux[idx])
        if math.isfinite(med_flux) and med_flux > 0:
            transparency[idx] = flux[idx] / med_flux
        if not options["robust"] or idx.size < int(options["min_frames"]):
            continue
        filter_limits = _robust_checks(table, idx, options, failures)
        if filter_limits:
            limits[str(table["filter"][idx[0]])] = filter_limits
        tol = float(options["transparency_tolerance"])
        for i in idx:
            t = transparency[i]
            if math.isfinite(t) and t < 1 - tol:
                group = str(table["filter"][idx[0]]).strip() or "night"
                failures[i].append(
                    ((1 - t) / tol, f"transparency {t:.2f} < {1 - tol:.2f} x {group} median star flux")
                )
    _fixed_checks(table, options, transparency, failures)

    accepted = np.array([not f for f in failures])
    reason = ["; ".join(text for _, text in sorted(f, key=lambda item: -item[0])) for f in failures]
    out = table.copy()
    out["transparency"] = transparency
    out["accepted"] = accepted
    out["reason"] = np.array(reason, dtype=str) if n else np.zeros(0, dtype=str)
    out["weight"] = _weights(table, groups, accepted, transparency)
    # the rules applied and the limits each filter's frames were held to (for reports and plots)
    out.meta["rules"] = options
    out.meta["limits"] = limits
    for i in range(n):
        if not accepted[i]:
            log.info("%s rejected: %s", out["file"][i], reason[i])
    return out


def _rule_options(rules):
    """`DEFAULT_RULES` updated with ``rules``; an unknown rule is an error."""
    options = dict(DEFAULT_RULES)
    if rules:
        unknown = set(rules) - set(DEFAULT_RULES)
        if unknown:
            raise ValueError(f"unknown rules {sorted(unknown)}; known: {sorted(DEFAULT_RULES)}")
        options.update(rules)
    return options


#: column, name in a reason, direction, tolerance rule, relative tolerance, unit ("sky": the frame's per pixel)
_ROBUST_CHECKS = (
    ("fwhm", "FWHM", +1, "fwhm_tolerance", True, " px"),
    ("ellipticity", "ellipticity", +1, "ellipticity_tolerance", False, ""),
    ("n_stars", "stars", -1, "stars_tolerance", True, ""),
    ("background", "sky", +1, "background_tolerance", True, "sky"),
)


def _robust_checks(table, idx, options, failures):
    """
    Hold the frames ``idx`` of one filter to limits set from their median.

    Appends ``(severity, text)`` to ``failures[i]``; returns ``{column:
    (limit, how it was set)}``.
    """
    k = float(options["n_sigma"])
    limits = {}
    group = str(table["filter"][idx[0]]).strip() or "night"
    sky = f" {table['unit'][idx[0]]}/px" if "unit" in table.colnames else ""
    for column, label, sign, tol_key, relative, unit in _ROBUST_CHECKS:
        unit = sky if unit == "sky" else unit
        values = np.asarray(table[column], dtype=float)
        median, spread = _robust(values[idx])
        if not math.isfinite(median):
            continue
        tol = float(options[tol_key]) * (abs(median) if relative else 1.0)
        margin = max(k * (spread if math.isfinite(spread) else 0.0), tol)
        limit = median + sign * margin
        what = _limit_text(
            median, sign, margin, tol, float(options[tol_key]), relative, k, spread, group=group, unit=unit
        )
        limits[column] = (limit, what)
        op = ">" if sign > 0 else "<"
        for i in idx:
            v = values[i]
            if not math.isfinite(v):
                if column == "fwhm":
                    failures[i].append((10.0, "PSF not measured (no or too few stars)"))
                continue
            if sign * (v - limit) > 0:
                severity = abs(v - median) / margin if margin > 0 else math.inf
                failures[i].append((severity, f"{label} {_num(v)}{unit} {op} {_num(limit)}{unit} ({what})"))
    return limits


_FIXED_CHECKS = (
    ("max_fwhm", "fwhm", +1, "FWHM", " px"),
    ("max_fwhm_arcsec", "fwhm_arcsec", +1, "FWHM", " arcsec"),
    ("max_ellipticity", "ellipticity", +1, "ellipticity", ""),
    ("min_stars", "n_stars", -1, "stars", ""),
    ("max_background", "background", +1, "sky", ""),
    ("max_sky_noise", "sky_noise", +1, "sky noise", ""),
    ("max_airmass", "airmass", +1, "airmass", ""),
)


def _fixed_checks(table, options, transparency, failures):
    """Hold every frame to the fixed limits of ``options``; appends to ``failures[i]``."""
    n = len(table)
    for key, column, sign, label, unit in _FIXED_CHECKS:
        limit = options[key]
        if limit is None:
            continue
        limit = float(getattr(limit, "value", limit))
        values = np.asarray(table[column], dtype=float)
        op = ">" if sign > 0 else "<"
        for i in range(n):
            v = values[i]
            if math.isfinite(v) and sign * (v - limit) > 0:
                failures[i].append(
                    (
                        100.0 + abs(v - limit) / max(abs(limit), 1e-12),
                        f"{label} {_num(v)}{unit} {op} {limit:g}{unit} (fixed limit)",
                    )
                )
    if options["min_transparency"] is not None:
        limit = float(options["min_transparency"])
        for i in range(n):
            if math.isfinite(transparency[i]) and transparency[i] < limit:
                failures[i].append((100.0, f"transparency {transparency[i]:.2f} < {limit:g} (fixed limit)"))


def _weights(table, groups, accepted, transparency):
    """Relative point-source SNR squared, 1 for the best accepted frame of each filter, 0 if rejected."""
    fwhm = np.asarray(table["fwhm"], dtype=float)
    noise = np.asarray(table["sky_noise"], dtype=float)
    trans = np.where(np.isfinite(transparency), transparency, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw_weight = trans**2 / (fwhm**2 * noise**2)
    weight = np.zeros(len(table))
    for members in groups.values():
        idx = np.asarray(members)
        ok = idx[accepted[idx] & np.isfinite(raw_weight[idx]) & (raw_weight[idx] > 0)]
        if ok.size:
            weight[ok] = raw_weight[ok] / raw_weight[ok].max()
    return weight


def example_records():
    """
    Six made-up records of one filter (the fifth defocused), for examples.

    Returns
    -------
    list of `QualityRecord`
        Red-filter records ``frame1.fits`` ... ``frame6.fits``, 0.004 day apart.
    """
    base = {
        "file": "",
        "date_obs": "2021-10-05T04:00:00.000",
        "mjd": 59492.1667,
        "filter": "Red",
        "exposure_time": 300.0,
        "fwhm": 3.0,
        "fwhm_arcsec": 10.5,
        "ellipticity": 0.04,
        "theta": 10.0,
        "n_stars": 400,
        "n_psf_stars": 60,
        "background": 150.0,
        "background_gradient": 5.0,
        "sky_noise": 15.0,
        "airmass": 1.2,
        "moon_separation": None,
        "saturated_fraction": 0.0,
        "limiting_magnitude": -2.0,
        "star_flux": 100.0,
        "unit": "electron",
    }
    records = []
    for i, (fwhm, ell, n_stars, flux) in enumerate(
        [
            (3.0, 0.04, 400, 100.0),
            (3.1, 0.05, 390, 98.0),
            (2.9, 0.03, 410, 101.0),
            (3.05, 0.04, 395, 99.0),
            (7.5, 0.05, 150, 97.0),
            (3.0, 0.05, 405, 100.0),
        ]
    ):
        rec = dict(
            base,
            file=f"frame{i + 1}.fits",
            fwhm=fwhm,
            ellipticity=ell,
            n_stars=n_stars,
            star_flux=flux,
            mjd=base["mjd"] + i * 0.004,
        )
        records.append(QualityRecord(**rec))
    return records
