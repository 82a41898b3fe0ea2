# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""`resample_frame`: a solved frame onto a target grid (the public wrapper of `._core`)."""

import re
import time

import numpy as np
from astropy.nddata import StdDevUncertainty

from astrophot._concurrency import PerThread, resolve_threads, thread_map
from astrophot.combination import _core
from astrophot.combination._grid import celestial_wcs, footprint_points, parse_target, sky_to_pixel
from astrophot.exceptions import CombinationError
from astrophot.frames import DQFlag, ResampledFrame
from astrophot.frames._input import as_frame
from astrophot.provenance import start_step

__all__ = ["resample_frame"]

#: Output rows per band (bounded memory: input + output + a band of temporaries).
BAND_PIXELS = 1 << 19

_WCS_KEY = re.compile(
    r"^(WCSAXES|CRPIX\d|CRVAL\d|CDELT\d|CUNIT\d|CTYPE\d|CROTA\d|CD\d_\d|PC\d_\d|PV\d_\d+|PS\d_\d+|LONPOLE|LATPOLE|"
    r"RADESYS|RADECSYS|EQUINOX|EPOCH|MJDREF|WCSNAME|A_ORDER|B_ORDER|AP_ORDER|BP_ORDER|A_\d+_\d+|B_\d+_\d+|"
    r"AP_\d+_\d+|BP_\d+_\d+|A_DMAX|B_DMAX|IMAGEW|IMAGEH|CDELTM\d|DATASEC|TRIMSEC|BIASSEC)$"
)
_KERNEL_NAMES = (*_core.KERNELS, "exact")


def _clean_header(header):
    """The input header without any WCS card (stale SIP, CD/PC ...): observing keywords kept."""
    header = header.copy()
    for key in list(header.keys()):
        if _WCS_KEY.match(key):
            header.remove(key, ignore_missing=True, remove_all=True)
    return header


def _check_input(frame, kernel, conserve):
    if kernel not in _KERNEL_NAMES:
        raise ValueError(f"{frame.name}: unknown kernel {kernel!r}; expected one of {list(_KERNEL_NAMES)}")
    if conserve not in ("surface_brightness", "flux"):
        raise ValueError(f"{frame.name}: conserve must be 'surface_brightness' or 'flux', not {conserve!r}")
    wcs_in, _, _ = celestial_wcs(frame)
    data = np.asarray(frame.data)
    if not np.isfinite(data).any():
        raise CombinationError(f"{frame.name}: the data are all NaN or infinite: nothing to resample")
    return wcs_in


def _bad_mask(frame):
    bad = ~np.isfinite(frame.data)
    if frame.mask is not None:
        bad |= np.asarray(frame.mask, dtype=bool)
    if frame.flags is not None and frame.flags.any():
        bad |= frame.mask_from_flags()
    return bad


def _variance(frame):
    if frame.uncertainty is None:
        return None
    unc = frame.uncertainty
    if not isinstance(unc, StdDevUncertainty):
        unc = unc.represent_as(StdDevUncertainty)
    sigma = np.asarray(unc.array, dtype=np.float32)
    return sigma * sigma


def _row_range(wcs_in, in_shape, wcs_out, out_shape):
    """Output rows the input's footprint reaches (with a margin), or None when it misses the grid."""
    points = footprint_points(wcs_in, in_shape, n_per_edge=16)
    x, y = sky_to_pixel(wcs_out, points)
    ny, nx = out_shape
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        if np.any(np.isfinite(x)):
            return 0, ny
        x, y = sky_to_pixel(_linear(wcs_out), points)
    if x.max() < -0.5 or x.min() > nx - 0.5 or y.max() < -0.5 or y.min() > ny - 0.5:
        return None
    return max(int(np.floor(y.min())) - 8, 0), min(int(np.ceil(y.max())) + 9, ny)


def _linear(wcs):
    """The WCS without its distortion (to locate points a SIP inversion cannot reach)."""
    plain = wcs.deepcopy()
    plain.sip = None
    plain.wcs.ctype = [c.replace("-SIP", "") for c in plain.wcs.ctype]
    plain.wcs.set()
    return plain


def _bands(y0, y1, nx):
    rows = max(16, BAND_PIXELS // max(nx, 1))
    return [slice(start, min(start + rows, y1)) for start in range(y0, y1, rows)]


def _blank(shape, rows, dtype, value):
    """An output plane: ``value`` outside the rows the bands will write (one pass over memory, not two)."""
    plane = np.empty(shape, dtype=dtype)
    if rows is None:
        plane.fill(value)
    else:
        plane[: rows[0]] = value
        plane[rows[1] :] = value
    return plane


def _resample_interp(frame, wcs_in, wcs_out, out_shape, rows, options, n_threads):
    data = np.ascontiguousarray(frame.data)
    variance = _variance(frame)
    bad = _bad_mask(frame)
    near_bad = _core.bad_reach(bad, options["kernel"]) if bad.any() else np.zeros(bad.shape, dtype=bool)
    ny, nx = out_shape
    work = np.result_type(data.dtype, np.float32)
    out = _blank(out_shape, rows, work, np.nan)
    out_var = None if variance is None else _blank(out_shape, rows, work, np.nan)
    weight = _blank(out_shape, rows, np.float32, 0)
    flags = _blank(out_shape, rows, np.uint32, int(DQFlag.NO_DATA))
    want_area = options["conserve"] == "flux" or options["antialias"]
    carried = frame.flags if frame.flags is not None and frame.flags.any() else None
    bands = [] if rows is None else _bands(rows[0], rows[1], nx)
    private = PerThread((wcs_in, wcs_out), n_threads=min(n_threads, len(bands)))

    def one_band(band):
        band_in, band_out = private.get()
        mapped = _core.pixel_map(
            band_in,
            band_out,
            out_shape,
            rows=band,
            projection_error=options["projection_error"],
            jacobian=want_area,
        )
        _core.resample_band(
            data,
            variance,
            bad,
            carried,
            mapped[0],
            mapped[1],
            kernel=options["kernel"],
            conserve=options["conserve"],
            jacobian=mapped[2] if want_area else None,
            min_weight=options["min_weight"],
            near_bad=near_bad,
            antialias=options["antialias"],
            out=(out[band], None if out_var is None else out_var[band], weight[band], flags[band]),
        )

    thread_map(one_band, bands, n_threads=n_threads)
    return out, out_var, weight, flags


def _resample_exact(frame, wcs_in, wcs_out, out_shape, options):
    from reproject import reproject_exact

    data = np.array(frame.data, dtype=np.float64)
    bad = _bad_mask(frame)
    data[bad] = np.nan
    out, footprint = reproject_exact((data, wcs_in), wcs_out, shape_out=out_shape, parallel=False)
    variance = _variance(frame)
    out_var = None
    if variance is not None:
        var = np.array(variance, dtype=np.float64)
        var[bad] = np.nan
        out_var, _ = reproject_exact((var, wcs_in), wcs_out, shape_out=out_shape, parallel=False)
    weight = np.where(np.isfinite(out), footprint, 0.0).astype(np.float32)
    no_data = ~(weight >= options["min_weight"])
    out[no_data] = np.nan
    flags = np.where(no_data, np.uint32(DQFlag.NO_DATA), np.uint32(0)).astype(np.uint32)
    if options["conserve"] == "flux":
        _, _, area = _core.pixel_map(wcs_in, wcs_out, out_shape, projection_error=1e-3, jacobian=True)
        out *= area
        if out_var is not None:
            out_var *= area * area
    return out, out_var, weight, flags


def _correlation(wcs_in, in_shape, wcs_out, out_shape, kernel, antialias=False):
    """Noise correlation factor at the output position of the input's centre."""
    if kernel == "exact":
        kernel = "bilinear"  # no closed form for polygon overlap; bilinear is the nearest analogue
    ny, nx = out_shape
    cx, cy = sky_to_pixel(wcs_out, wcs_in.pixel_to_world([(in_shape[1] - 1) / 2], [(in_shape[0] - 1) / 2]))
    cx, cy = float(cx[0]), float(cy[0])
    cx = int(np.clip(np.nan_to_num(cx), 0, nx - 1))
    cy = int(np.clip(np.nan_to_num(cy), 0, ny - 1))
    # the patch spans at least 40 input pixels (plus the kernel's reach) whatever the scale ratio
    ratio = np.sqrt(
        abs(
            np.linalg.det(wcs_out.celestial.pixel_scale_matrix)
            / np.linalg.det(wcs_in.celestial.pixel_scale_matrix)
        )
    )
    half = int(np.clip(np.ceil((20 + 2 * _core.KERNELS[kernel]) / ratio), 16, 256))
    rows = slice(max(cy - half, 0), min(cy + half, ny))
    cols = slice(max(cx - half, 0), min(cx + half, nx))
    x_in, y_in = _core.pixel_map(wcs_in, wcs_out, out_shape, rows=rows, cols=cols, projection_error=0)
    return _core.noise_correlation(x_in, y_in, kernel, antialias=antialias and kernel != "exact")


def _output_header(frame, options, factor, out_unit):
    header = _clean_header(frame.header)
    header["APKERNEL"] = (options["kernel"], "astrophot resampling kernel")
    header["APCONSRV"] = (options["conserve"][:18], "resampling conserves flux or surface brightness")
    header["APNCORR"] = (round(factor, 6), "noise correlation: Var(sum)/sum(Var)")
    header["APANTIAL"] = (bool(options["antialias"]), "kernel widened where output pixels are larger")
    header["BUNIT"] = out_unit.to_string()
    return header


def resample_frame(
    frame,
    target,
    *,
    shape=None,
    kernel="lanczos3",
    conserve="surface_brightness",
    projection_error=0.001,
    min_weight=0.5,
    antialias=None,
    parallel=None,
):
    """
    Resample a solved frame onto a target grid.

    The input-to-output pixel map goes through the frame's full WCS (SIP/TPV included) on
    a coarse grid and is interpolated, with the grid step chosen so that the map's error
    stays below ``projection_error`` output pixels (measured, not assumed). Masked and
    flagged input pixels do not contribute: the kernel is renormalised over the good taps,
    and the output carries a ``weight`` plane (the kernel mass that came from good pixels);
    output pixels with less than ``min_weight`` are NaN and flagged ``NO_DATA``. The
    variance is resampled with the squared kernel weights and the noise correlation the
    kernel introduces is recorded (header ``APNCORR``, provenance, ``frame.resampling``).
    The output is computed band by band over the output rows, on ``parallel`` threads.

    Parameters
    ----------
    frame : `~astrophot.SolvedFrame`, str or path-like
        A frame with a celestial WCS.
    target : `~astropy.wcs.WCS`, `~astropy.io.fits.Header`, path, frame or ``(wcs, shape)``
        The output grid, e.g. what `find_optimal_wcs` returns, or another frame.
    shape : tuple of int, optional
        ``(ny, nx)`` of the output, when the target does not say.
    kernel : str
        ``nearest``, ``bilinear``, ``bicubic``, ``lanczos2``, ``lanczos3`` (default, as SWarp),
        ``lanczos4``, or ``exact`` (flux-conserving polygon overlap through
        `reproject.reproject_exact`: slow, the reference).
    conserve : {"surface_brightness", "flux"}
        Keep the value per unit area (a flat sky stays flat, counts per output pixel scale
        with its area); or multiply by the local pixel-area ratio so that a star's total
        counts are kept.
    projection_error : float
        Largest error of the interpolated pixel map (output pixels); 0 evaluates every pixel.
    min_weight : float
        Output pixels whose good kernel mass is below this are ``NO_DATA``.
    antialias : bool, optional
        Where an output pixel is wider than 2/3 of an input pixel (linear scale ``s``), average
        ``n x n`` kernel samples spread over its footprint (``n = ceil(1.5 s)``, as SWarp's
        oversampling) instead of sampling the interpolant at its centre only: the output pixel's
        box is integrated instead of aliased (point sampling beats against the input grid near
        1:1 and when downsampling: up to 0.6% of a star's flux at 0.9x, 1.03x, 1.3x). Default: on with
        ``conserve="flux"`` (each star's aperture flux within 0.1% from 0.5x to 2x at any
        rotation), off with ``"surface_brightness"``. The recorded noise correlation follows.
    parallel : None, bool or int
        Threads (see `astrophot._concurrency`).

    Returns
    -------
    `~astrophot.ResampledFrame`
        On the target grid, with ``weight``, uncertainty and flags.

    Raises
    ------
    astrophot.exceptions.FrameTypeError
        The frame or target has no 2-D celestial WCS (solve it first).
    astrophot.exceptions.CombinationError
        The frame does not overlap the target, or its data are all NaN.
    ValueError
        An unknown kernel or ``conserve``.

    See Also
    --------
    astrophot.solve_astrometry : Plate-solve a frame (the WCS resampling needs).
    astrophot.find_optimal_wcs : One output grid covering a set of solved frames.

    Examples
    --------
    >>> import astropy.units as u
    >>> from astrophot import find_optimal_wcs, resample_frame
    >>> from astrophot.datasets import make_solved_frame
    >>> frame, truth = make_solved_frame(shape=(64, 80), n_stars=5)
    >>> grid = find_optimal_wcs([frame], rotation=30 * u.deg)
    >>> out = resample_frame(frame, grid, kernel="lanczos3")
    >>> out.data.shape == grid[1], float(out.weight.max())
    (True, 1.0)
    """
    started = time.perf_counter()
    frame = as_frame(frame, role="resample_frame")  # a frame or a frame file
    wcs_in = _check_input(frame, kernel, conserve)
    wcs_out, out_shape = parse_target(target, shape)
    options = {
        "kernel": kernel,
        "conserve": conserve,
        "projection_error": float(projection_error),
        "min_weight": float(min_weight),
        "antialias": (conserve == "flux") if antialias is None else bool(antialias),
    }
    rows = _row_range(wcs_in, frame.data.shape, wcs_out, out_shape)
    if rows is None:
        raise CombinationError(f"{frame.name}: does not overlap the target grid {out_shape}")
    rec = start_step(
        "resample_frame",
        parameters={**options, "shape": list(out_shape), "target": wcs_out.to_header_string(relax=True)},
        inputs={"frame": frame},
        software=("scipy", "reproject") if kernel == "exact" else ("scipy",),
        started=started,
    )
    if kernel == "exact":
        planes = _resample_exact(frame, wcs_in, wcs_out, out_shape, options)
    else:
        planes = _resample_interp(frame, wcs_in, wcs_out, out_shape, rows, options, resolve_threads(parallel))
    out, out_var, weight, flags = planes
    if not (weight > 0).any():
        raise CombinationError(
            f"{frame.name}: does not overlap the target grid {out_shape} (no output pixel has data)"
        )
    factor = _correlation(wcs_in, frame.data.shape, wcs_out, out_shape, kernel, options["antialias"])
    resampling = {**options, "noise_correlation": factor, "shape": list(out_shape)}
    result = ResampledFrame(
        out,
        uncertainty=None if out_var is None else StdDevUncertainty(np.sqrt(out_var, out=out_var), copy=False),
        wcs=wcs_out.deepcopy(),
        meta=_output_header(frame, options, factor, frame.unit),
        unit=frame.unit,
        flags=flags,
        weight=weight,
        resampling=resampling,
        stars=None,
        solution=frame.solution,
        provenance=frame.provenance,
    )
    outcome = {"noise_correlation": factor, "coverage": float(np.mean(weight >= min_weight))}
    return rec.finish(result, primary=frame, outcome=outcome)
