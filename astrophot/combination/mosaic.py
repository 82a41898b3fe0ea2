# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""`make_mosaic`: pointings that only partly overlap, on one grid, their backgrounds matched."""

import logging
import time
import warnings

import numpy as np

from astrophot.combination import _combine
from astrophot.combination._grid import celestial_wcs, find_optimal_wcs, parse_target
from astrophot.combination._match import BackgroundMatch, footprint_counts, match_backgrounds
from astrophot.combination._normalize import frame_weights
from astrophot.combination._reject import REJECTIONS, auto_rejection
from astrophot.combination.stack import _product, _progress
from astrophot.exceptions import AstrophotUserWarning, CombinationError, FrameMismatchError
from astrophot.frames import FrameBase
from astrophot.frames._input import as_frame
from astrophot.provenance import start_step

__all__ = ["make_mosaic"]

log = logging.getLogger("astrophot.combination")

_MATCH = ("plane", "offset", None)
_WEIGHTS = ("noise", "exptime", "none")


def _check_frames(frames):
    """A list of frames with a celestial WCS, one filter and one unit (errors name the files)."""
    if isinstance(frames, FrameBase):
        frames = [frames]
    frames = list(frames)
    if not frames:
        raise CombinationError("make_mosaic: no frames given")
    frames = [as_frame(frame, role="make_mosaic") for frame in frames]  # frames or frame files
    for frame in frames:
        celestial_wcs(frame)
    by_filter = {}
    for frame in frames:
        by_filter.setdefault(frame.filter or "none", []).append(frame.name)
    if len(by_filter) > 1:
        listing = "; ".join(f"{key}: {', '.join(names)}" for key, names in sorted(by_filter.items()))
        raise FrameMismatchError(
            f"make_mosaic: frames of {len(by_filter)} filters ({listing}): a mosaic is of one filter "
            "(astrophot mosaic --by-filter makes one per filter)"
        )
    units = {str(f.unit) for f in frames}
    if len(units) > 1:
        listing = "; ".join(f"{f.name}: {f.unit}" for f in frames)
        raise FrameMismatchError(f"make_mosaic: frames in different units ({listing})")
    return frames


def _grid(frames, wcs):
    if wcs is None:
        return find_optimal_wcs(frames)
    return parse_target(wcs)


def _background(frames, grid, match_background, protect, reference, parallel, scales):
    """The `BackgroundMatch` (given, computed, or None) and its planes in electrons per second."""
    if isinstance(match_background, BackgroundMatch):
        match = match_background
        if len(match.names) != len(frames):
            raise ValueError(
                f"make_mosaic: the background match is of {len(match.names)} frames, not the {len(frames)} given"
            )
    elif match_background not in _MATCH:
        raise ValueError(
            f"make_mosaic: match_background must be 'plane', 'offset', None or a BackgroundMatch, "
            f"not {match_background!r}"
        )
    elif match_background is None:
        return None, None
    else:
        match = match_backgrounds(
            frames,
            *grid,
            model=match_background,
            protect=protect,
            reference=reference,
            scales=scales,
            parallel=parallel,
        )
    # a match made in the frames' own units (scales 1) is brought to electrons per second
    used = np.ones(len(frames)) if match.scales is None else np.asarray(match.scales, dtype=float)
    return match, match.planes * (np.asarray(scales, dtype=float) / used)[:, None]


def _noise(inputs):
    """Each frame's median pixel noise (electrons per second) from its uncertainty (1 without one)."""
    noise = np.ones(len(inputs))
    for k, item in enumerate(inputs):
        if item.sigma is None:
            continue
        sigma = np.asarray(item.sigma)
        step = max(1, int(np.sqrt(sigma.size / 250_000)))
        value = float(np.nanmedian(sigma[::step, ::step])) * item.to_rate
        noise[k] = value if np.isfinite(value) and value > 0 else 1.0
    return noise


def _weights(weights, inputs):
    if isinstance(weights, str) and weights not in _WEIGHTS:
        raise ValueError(f"make_mosaic: weights must be one of {_WEIGHTS} or a sequence, not {weights!r}")
    n = len(inputs)
    w, _ = frame_weights(
        weights,
        noise=_noise(inputs),
        factor=np.ones(n),
        exposure=[item.exposure for item in inputs],
        names=[item.name for item in inputs],
    )
    if np.any(w <= 0):
        raise ValueError("make_mosaic: every weight must be positive (leave a frame out instead)")
    return w


def _record(result, options, match, planes):
    frames = [dict(r) for r in result.records]
    if match is not None:
        for rec, plane in zip(frames, planes):
            rec.update(
                background_a=float(plane[0]), background_p=float(plane[1]), background_q=float(plane[2])
            )
        background = match.as_record()
        background.pop("frames")
        background["worst_seam_sigma"] = match.worst_seam()
        background["worst_seam_before_sigma"] = match.worst_seam(corrected=False)
    else:
        background = None
    return {
        **options,
        "rejection": result.rejection,
        "left_out": {},
        "frames": frames,
        "background": background,
    }


def _rejection(rejection, frames, wcs, shape):
    """``auto`` decided by the median number of frames covering the mosaic (none for a 2x2 mosaic)."""
    if rejection not in REJECTIONS:
        raise ValueError(f"make_mosaic: rejection must be one of {', '.join(REJECTIONS)}, not {rejection!r}")
    if rejection != "auto":
        return rejection, None
    counts = footprint_counts(frames, wcs, shape)
    depth = int(np.median(counts[counts > 0])) if np.any(counts > 0) else 1
    return auto_rejection(depth), depth


def _warn_single(inputs):
    if len(inputs) == 1:
        warnings.warn(
            f"{inputs[0].name}: a mosaic of a single frame: nothing was matched or rejected",
            AstrophotUserWarning,
            stacklevel=3,
        )
    missing = [item.name for item in inputs if item.rows is None]
    if missing:
        raise CombinationError(f"{', '.join(missing)}: do not overlap the mosaic's grid")


def make_mosaic(
    frames,
    *,
    wcs=None,
    match_background="plane",
    protect=None,
    reference=None,
    rejection="auto",
    sigma=(3.0, 3.0),
    weights="noise",
    kernel="lanczos3",
    center="mean",
    projection_error=0.001,
    min_weight=0.5,
    band_rows=None,
    parallel=None,
    progress=False,
):
    """
    Mosaic pointings that only partly overlap on one grid, their backgrounds matched.

    The frames' backgrounds are matched first (`~astrophot.combination.match_backgrounds`:
    each frame's star-masked sky model, ``protect`` regions left out, the difference of
    every overlapping pair fitted by a plane, one least-squares solution for a plane per
    frame over all the overlaps); then the frames are resampled onto the grid and combined
    band by band by the stacks' driver (`astrophot.combination._combine`), each frame's
    plane subtracted, with the weighted mean of the frames that cover each pixel and
    outlier rejection where enough of them do.

    Parameters
    ----------
    frames : sequence of `~astrophot.SolvedFrame` (or their paths)
        In electrons (with ``EXPTIME``) or electrons per second, of one filter.
    wcs : optional
        The output grid: `~astrophot.find_optimal_wcs` of all the frames (default), or a
        ``(wcs, shape)``, header, header file or frame.
    match_background : {"plane", "offset"}, None or `~astrophot.combination.BackgroundMatch`
        What each frame's background correction may be; None: no matching; or a match
        computed already (on the same frames and grid) to use as it is.
    protect : optional
        Regions that are not sky, left out of the matching (see `match_backgrounds`): a
        mask on the output grid, one mask per frame, or sky circles ``(SkyCoord, radius)``.
    reference : int, optional
        The frame whose background is kept (default: corrections of zero mean).
    rejection : str
        As `~astrophot.stack_frames`; ``auto`` chooses by the median number of frames
        covering the mosaic (its rule for ``n`` frames: none for a 2x2 mosaic, whose
        pixels are mostly covered by one or two frames).
    sigma : float or (float, float)
        Rejection limits.
    weights : {"noise", "exptime", "none"} or sequence of float
        ``noise``: inverse square of each frame's median pixel noise (its uncertainty).
    kernel : str
        Resampling kernel (see `~astrophot.resample_frame`; not ``exact``).
    center : {"mean", "median"}
    projection_error, min_weight : float
        See `~astrophot.resample_frame`.
    band_rows : int, optional
        Output rows per band.
    parallel : None, bool or int
        Threads (see `astrophot._concurrency`).
    progress : bool
        Log the share of rows combined (INFO, every 10%).

    Returns
    -------
    `~astrophot.StackedFrame`
        In electrons per second with the uncertainty, ``NO_DATA`` where no frame covers,
        the coverage, exposure, weight and rejection maps; ``combination["background"]``
        holds the matching (per-overlap residuals before and after, worst seam in sigma,
        frames left unconnected) and each frame's record its plane
        (``background_a + background_p x + background_q y``, electrons per second).

    Raises
    ------
    astrophot.exceptions.FrameMismatchError
        Frames of different filters or units (the message names the files).
    astrophot.exceptions.FrameTypeError
        A frame without a celestial WCS.
    astrophot.exceptions.CombinationError
        No frames, or a frame that misses the grid.

    Warns
    -----
    astrophot.exceptions.AstrophotUserWarning
        A single frame; frames that overlap no other frame (their background is not matched).

    See Also
    --------
    astrophot.find_optimal_wcs : One output grid covering a set of solved frames.
    astrophot.combination.match_backgrounds : The background planes that make the frames agree in their overlaps.
    astrophot.stack_frames : Stack solved frames of one target and filter.

    Examples
    --------
    >>> from astrophot import make_mosaic
    >>> from astrophot.datasets import make_mosaic_frames
    >>> frames, truth = make_mosaic_frames(shape=(60, 80), nebula=False, seed=1)
    >>> mosaic = make_mosaic(frames, kernel="bilinear")
    >>> mosaic.header["NCOMBINE"], int(mosaic.coverage.max())
    (4, 4)
    >>> bool(mosaic.combination["background"]["worst_seam_sigma"] < 0.5)
    True
    """
    started = time.perf_counter()
    frames = _check_frames(frames)
    wcs_out, shape = _grid(frames, wcs)
    rule, depth = _rejection(rejection, frames, wcs_out, shape)
    inputs = _combine.prepare_inputs(frames, wcs_out, shape)
    _warn_single(inputs)
    w = _weights(weights, inputs)
    scales = [item.to_rate for item in inputs]
    match, planes = _background(
        frames, (wcs_out, shape), match_background, protect, reference, parallel, scales
    )
    options = {
        "match_background": match.model if match is not None else None,
        "rejection": rejection,
        "coverage_depth": depth,
        "sigma": sigma,
        "normalize": "none",
        "weights": weights if isinstance(weights, str) else [float(v) for v in weights],
        "kernel": kernel,
        "center": center,
        "reference": reference,
        "shape": list(shape),
    }
    rec = start_step(
        "make_mosaic",
        parameters={**options, "target": wcs_out.to_header_string(relax=True)},
        inputs={"frames": frames},
        software=("scipy",),
        started=started,
    )
    result = _combine.combine_frames(
        inputs,
        wcs_out,
        shape,
        weights=w,
        background=planes,
        rejection=rule,
        sigma=sigma,
        center=center,
        kernel=kernel,
        projection_error=projection_error,
        min_weight=min_weight,
        band_rows=band_rows,
        parallel=parallel,
        progress=_progress(shape, "mosaic") if progress else None,
    )
    record = _record(result, options, match, planes)
    product = _product(frames[0], inputs, result, wcs_out, record)
    product.header["APBGMAT"] = (str(options["match_background"]), "astrophot mosaic background matching")
    outcome = {"n_combined": len(inputs), "frames": result.records, "background": record["background"]}
    return rec.finish(product, outcome=outcome)
