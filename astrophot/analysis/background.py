# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Sky background: a smooth 2-D model and its RMS, and its subtraction."""

import logging

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty

from astrophot.analysis._common import as_frame, bad_pixel_mask, float_data, frame_name
from astrophot.analysis._mesh import auto_box_size, mesh_background
from astrophot.analysis._regions import load_mask
from astrophot.exceptions import FrameMismatchError, FrameTypeError
from astrophot.frames import CalibratedFrame, FrameBase, SolvedFrame
from astrophot.provenance import start_step

__all__ = ["Background", "estimate_background", "subtract_background"]

log = logging.getLogger(__name__)

_ESTIMATORS = ("median", "mode")


class Background(tuple):
    """
    The sky of a frame, fitted once: background and RMS maps and the mesh they come from.

    What `estimate_background` returns (photutils' ``Background2D`` role). It
    unpacks as before, ``background, rms = estimate_background(frame)``, and
    is what `find_stars`, `assess_quality` and `measure_psf` take as
    ``background=``: given it, they use this sky instead of fitting their
    own, so a frame's background is estimated once in a night.

    Attributes
    ----------
    background, rms : `~astrophot.CalibratedFrame` or `~astrophot.SolvedFrame`
        The maps, in the frame's unit, with provenance.
    level, noise : float
        Median background level and RMS.
    gradient : tuple of float
        ``(d/dy, d/dx)`` of the best-fitting plane, per pixel.
    box_size : int
        Side of the mesh boxes in pixels.
    """

    def __new__(cls, background, rms, model):
        self = super().__new__(cls, (background, rms))
        self._model = model
        return self

    def __getnewargs__(self):  # pickling (a Dask task sends it): the mesh with the maps
        return (self[0], self[1], self._model)

    @property
    def background(self):
        return self[0]

    @property
    def rms(self):
        return self[1]

    @property
    def level(self):
        return float(self._model.median_level)

    @property
    def noise(self):
        return float(self._model.median_rms)

    @property
    def gradient(self):
        return tuple(float(g) for g in self._model.plane_gradient())

    @property
    def box_size(self):
        return int(self._model.box_size)

    def model_for(self, frame):
        """
        The mesh model when it describes ``frame``'s pixels in their unit, else None (maps only).

        Parameters
        ----------
        frame : frame or `~astropy.nddata.CCDData`
            The image the sky is wanted for.

        Returns
        -------
        ``MeshModel`` (private) or None
            The mesh the maps come from, when ``frame`` has the maps' shape and
            unit (or either unit is unknown); None otherwise.
        """
        unit = getattr(self[0], "unit", None)
        same_unit = unit is None or getattr(frame, "unit", None) is None or unit == frame.unit
        return self._model if same_unit and np.shape(self[0].data) == np.shape(frame.data) else None


def _set_card(header, key, value, comment):
    """Set a header card; a plain dict ``meta`` gets the value alone."""
    if isinstance(header, fits.Header):
        header[key] = (value, comment)
    else:
        header[key] = value


def _header_copy(frame):
    meta = frame.meta
    if meta is None:
        return fits.Header()
    return (
        meta.copy()
        if isinstance(meta, fits.Header)
        else fits.Header(dict(meta))
        if _cards_ok(meta)
        else dict(meta)
    )


def _cards_ok(meta):
    try:
        fits.Header(dict(meta))
    except Exception:
        return False
    return True


def _output_class(frame):
    return SolvedFrame if isinstance(frame, SolvedFrame) else CalibratedFrame


def _model(frame, *, box_size, filter_size, mask, protect, n_sigma, mask_stars, estimator, fwhm=None):
    """Validate the options and fit the mesh; returns (data, mesh model, options dict)."""
    if estimator not in _ESTIMATORS:
        raise ValueError(f"estimator must be one of {_ESTIMATORS}, not {estimator!r}")
    if n_sigma is None or not n_sigma > 0:
        raise ValueError(f"n_sigma must be positive, not {n_sigma!r}")
    name = frame_name(frame)
    data = float_data(frame)
    extra = load_mask(mask, data.shape, name=name, what="mask")
    protected = load_mask(protect, data.shape, name=name, what="protect mask")
    if protected is not None:
        extra = protected if extra is None else (extra | protected)
    bad = bad_pixel_mask(frame, data, extra=extra)
    if box_size is None:
        box_size = auto_box_size(data.shape, fwhm)
    box_size = int(box_size)
    if box_size < 4:
        raise ValueError(f"box_size must be at least 4 pixels, not {box_size}")
    if filter_size is None:
        filter_size = 1
    filter_size = int(filter_size)
    if filter_size < 1 or filter_size % 2 == 0:
        raise ValueError(f"filter_size must be a positive odd number, not {filter_size}")
    model = mesh_background(
        data,
        bad,
        box_size=box_size,
        filter_size=filter_size,
        n_sigma=float(n_sigma),
        mask_stars=mask_stars,
        estimator=estimator,
        name=name,
    )
    return data, bad, model


def estimate_background(
    frame,
    *,
    box_size=None,
    filter_size=3,
    mask=None,
    protect=None,
    n_sigma=3.0,
    mask_stars=True,
    estimator="median",
):
    """
    Estimate the smooth sky background of a frame and its RMS.

    Parameters
    ----------
    frame : `~astrophot.CalibratedFrame`, `~astropy.nddata.CCDData`, 2-D array, or path
        The image. Its mask, its `~astrophot.DQFlag` bad bits and non-finite
        pixels are left out.
    box_size : int, optional
        Side of the mesh boxes in pixels. Default: about 24 boxes across the
        short side of the image, between 32 and 128 pixels.
    filter_size : int, optional
        Size of the median filter applied to the mesh (odd; 1 for none).
    mask : array-like of bool, str or path-like, optional
        More pixels to leave out (True = ignore): a boolean array, a FITS mask
        file or a ds9 region file in image coordinates.
    protect : array-like of bool, str or path-like, optional
        Regions that are not sky (an extended nebula, a galaxy), given like
        ``mask``: the background under them is interpolated from the
        surrounding boxes instead of being measured, so they are not
        subtracted away.
    n_sigma : float, optional
        Clipping threshold of the box statistics.
    mask_stars : bool, optional
        Find the stars in a first pass and leave them out of a second one.
    estimator : {'median', 'mode'}, optional
        Level of a box: the clipped median, or Source Extractor's
        ``2.5 median - 1.5 mean`` where the box is not too skewed.

    Returns
    -------
    `Background`
        Unpacks as ``background, rms``: the background model and the
        per-pixel sky RMS, in the unit of ``frame`` (a `~astrophot.SolvedFrame`
        input gives `~astrophot.SolvedFrame` maps with its WCS). Their
        provenance continues that of ``frame`` with one
        ``estimate_background`` step; the header records ``BKGBOX``,
        ``BKGMED`` and ``BKGRMS``. Give it to `find_stars` and
        `assess_quality` (``background=``) so that they do not fit the sky
        again.

    Raises
    ------
    astrophot.exceptions.AnalysisError
        No unmasked sky is left.
    astrophot.exceptions.FrameMismatchError
        ``mask`` or ``protect`` does not match the image shape.
    astrophot.exceptions.UserRegionsError
        A region file cannot be read.

    See Also
    --------
    subtract_background : Remove the background from the frame.
    find_stars : Uses the same background model.
    astrophot.reduction.calibrate_frame : The stage before.

    Notes
    -----
    The image is binned (up to 4 x 4, masked pixels left out); in each box
    the level is the sigma-clipped median of the bin means and the RMS comes
    from the median within-bin variance. Bins that stand out from a first
    model are taken as stars, grown by a few pixels and left out of a second
    pass. Boxes with too few sky bins are filled from their neighbours, the
    mesh is median filtered, and a natural bicubic spline through the box
    centres gives the full map. This is the Source Extractor / SEP scheme
    with the stars masked, at about the cost of one ``sep.Background``.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import CalibratedFrame
    >>> from astrophot.analysis import estimate_background
    >>> rng = np.random.default_rng(0)
    >>> sky = 100.0 + 0.05 * np.arange(256)[None, :]
    >>> frame = CalibratedFrame(rng.normal(sky, 5.0, (256, 256)))
    >>> background, rms = estimate_background(frame)
    >>> error = np.abs(background.data - sky)
    >>> bool(np.median(error) < 0.3), round(float(np.median(rms.data)))
    (True, 5)
    """
    obj = as_frame(frame, purpose="estimate_background")
    parameters = {
        "box_size": box_size,
        "filter_size": filter_size,
        "mask": mask if isinstance(mask, (str, type(None))) else "array",
        "protect": protect if isinstance(protect, (str, type(None))) else "array",
        "n_sigma": n_sigma,
        "mask_stars": mask_stars,
        "estimator": estimator,
    }
    rec = start_step("estimate_background", parameters=parameters, inputs={"frame": obj})
    _, _, model = _model(
        obj,
        box_size=box_size,
        filter_size=filter_size,
        mask=mask,
        protect=protect,
        n_sigma=n_sigma,
        mask_stars=mask_stars,
        estimator=estimator,
    )
    outcome = {
        "box_size": model.box_size,
        "median_level": model.median_level,
        "median_rms": model.median_rms,
        "star_fraction": round(model.star_fraction, 4),
    }
    log.debug(
        "%s: background %.6g, rms %.6g (box %d)",
        obj.name,
        model.median_level,
        model.median_rms,
        model.box_size,
    )
    cls = _output_class(obj)
    maps = []
    for kind, values in (("Background", model.background_map()), ("Background RMS", model.rms_map())):
        header = _header_copy(obj)
        header["IMAGETYP"] = kind
        _set_card(header, "BKGBOX", model.box_size, "background mesh box size [pixel]")
        _set_card(header, "BKGMED", model.median_level, "median background level")
        _set_card(header, "BKGRMS", model.median_rms, "median background RMS")
        extra = {"solution": getattr(obj, "solution", None)} if cls is SolvedFrame else {}
        out = cls(values, unit=obj.unit, meta=header, wcs=obj.wcs, **extra)
        maps.append(rec.finish(out, primary=obj, outcome={**outcome, "map": kind}))
    return Background(maps[0], maps[1], model)


def subtract_background(frame, background=None, **options):
    """
    Subtract a sky background from a calibrated frame.

    Parameters
    ----------
    frame : `~astrophot.CalibratedFrame` or `~astrophot.SolvedFrame`
        The image (a plain `~astropy.nddata.CCDData` or array is taken as
        calibrated).
    background : `Background`, frame, `~astropy.nddata.CCDData`, array, `~astropy.units.Quantity` or float, optional
        The background to remove, in the unit of ``frame`` (a number is in
        that unit); of a `Background`, its map. Default: `estimate_background`
        of ``frame``.
    **options
        Passed to `estimate_background` when ``background`` is None.

    Returns
    -------
    same type as ``frame``
        ``frame - background``. Uncertainty, mask, flags and WCS are kept
        (the model's own error, averaged over a mesh box, is negligible
        beside the pixel noise). The provenance ends with one
        ``subtract_background`` step naming the background when it is a
        frame.

    Raises
    ------
    astrophot.exceptions.FrameTypeError
        ``frame`` is a raw frame or a calibration master.
    astrophot.exceptions.FrameMismatchError
        The background has another shape or an incompatible unit.

    See Also
    --------
    estimate_background : The background model.
    image_arithmetic : General arithmetic between frames.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import CalibratedFrame
    >>> from astrophot.analysis import subtract_background
    >>> frame = CalibratedFrame(np.full((64, 64), 250.0))
    >>> float(subtract_background(frame, 200.0).data.mean())
    50.0
    """
    if isinstance(frame, FrameBase) and not isinstance(frame, CalibratedFrame):
        raise FrameTypeError(
            f"{frame.name}: subtract_background needs a calibrated frame, not a {frame.frame_type} "
            "(run calibrate_frame first)"
        )
    obj = as_frame(frame, purpose="subtract_background")
    if not isinstance(obj, CalibratedFrame):
        obj = CalibratedFrame(obj, copy=False)
    name = frame_name(obj)
    if isinstance(background, Background):
        background = background.background  # the estimate_background result: its background map
    if background is None:
        background, _ = estimate_background(obj, **options)
    elif options:
        raise TypeError(f"options {sorted(options)} are only used when no background is given")
    inputs = {"frame": obj}
    if isinstance(background, FrameBase):
        inputs["background"] = background
    if isinstance(background, (CCDData, FrameBase)):
        values = np.asarray(background.data)
        unit = background.unit
    elif isinstance(background, u.Quantity):
        values = np.asarray(background.value)
        unit = background.unit
    else:
        values = np.asarray(background, dtype=float)
        unit = None
    if unit is not None and obj.unit is not None and unit != obj.unit:
        try:
            values = (values * unit).to_value(obj.unit)
        except u.UnitConversionError:
            raise FrameMismatchError(
                f"{name}: background unit {unit} cannot be subtracted from a frame in {obj.unit}"
            ) from None
    if values.ndim and values.shape != obj.data.shape:
        raise FrameMismatchError(
            f"{name}: background shape {values.shape} does not match the frame shape {obj.data.shape}"
        )
    rec = start_step(
        "subtract_background",
        parameters={"background": "frame" if values.ndim else float(values)},
        inputs=inputs,
    )
    data = np.asarray(obj.data, dtype=np.result_type(obj.data.dtype, np.float32)) - values
    uncertainty = None
    if obj.uncertainty is not None:
        uncertainty = StdDevUncertainty(np.array(obj.uncertainty.array, copy=True))
    header = _header_copy(obj)
    if values.ndim:
        _set_card(header, "BKGSUB", float(np.median(values)), "median background subtracted")
    else:
        _set_card(header, "BKGSUB", float(values), "background subtracted")
    cls = type(obj)
    extra = {"solution": obj.solution, "stars": obj.stars} if isinstance(obj, SolvedFrame) else {}
    out = cls(
        data,
        unit=obj.unit,
        meta=header,
        wcs=obj.wcs,
        uncertainty=uncertainty,
        mask=None if obj.mask is None else np.array(obj.mask, copy=True),
        flags=None if obj.flags is None else np.array(obj.flags, copy=True),
        source_path=obj.source_path,
        provenance=obj.provenance,
    )
    for key, value in extra.items():
        setattr(out, key, value)
    return rec.finish(out, primary=obj, outcome={"median_subtracted": float(np.median(values))})
