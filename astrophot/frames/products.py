# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Products of the combination stages: resampled frames, stacks and mosaics, line images.

`ResampledFrame` is what `~astrophot.resample_frame` returns: a `~astrophot.SolvedFrame`
on a target grid, with a ``weight`` plane (the kernel mass that came from good input pixels,
float32, 1 where the whole kernel sat on good pixels, 0 outside the input's footprint) besides
``data``, ``uncertainty`` and ``flags``. On disk the weight is the ``WEIGHT`` image extension.

`StackedFrame` is what `~astrophot.stack_frames` (and `~astrophot.make_mosaic`) return:
a solved frame in electrons per second with its maps (coverage, exposure, weight,
rejection low/high) and the combination record, written as FITS image extensions
``COVERAGE``, ``EXPOSURE``, ``WEIGHT``, ``REJLOW``, ``REJHIGH`` beside the image and its
``UNCERT``, and a ``FRAMES`` table of the per-frame records.
"""

import json

import numpy as np
from astropy.table import Table

from astrophot.frames._hdus import RECORD, TABLE, _table_from_hdu, _table_to_hdu, record_hdu
from astrophot.frames.science import CalibratedFrame, SolvedFrame

__all__ = ["LineFrame", "ResampledFrame", "StackedFrame"]


class ResampledFrame(SolvedFrame):
    """
    A solved frame resampled onto a target grid.

    Extra attributes (keyword-only, kept by ``copy`` and slicing), besides those of
    `~astrophot.SolvedFrame`:

    weight : `numpy.ndarray` of float32 or None
        Kernel mass from good input pixels, same shape as ``data`` (0 to about 1).
    resampling : dict or None
        The resampling record: kernel, conserve, noise correlation factor, target shape.

    Parameters
    ----------
    data : array-like, `~astropy.nddata.CCDData` or frame
        The pixels (or a frame to convert).
    *args, **kwargs
        Passed to `~astrophot.SolvedFrame`, with the extra attributes above.

    Raises
    ------
    ValueError
        A ``weight`` of another shape than ``data``.
    """

    _carried = ("stars", "solution", "weight", "resampling")
    _extensions = (
        *SolvedFrame._extensions,
        ("weight", np.float32, "WEIGHT", "kernel mass from good input pixels"),
        ("resampling", RECORD, "RESAMPLE", "APRESAMP"),
    )

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        if self.weight is not None:
            weight = np.asarray(self.weight, dtype=np.float32)
            if weight.shape != self.data.shape:
                raise ValueError(f"weight shape {weight.shape} does not match data shape {self.data.shape}")
            self.weight = weight.copy() if kwargs.get("copy", False) else weight


class LineFrame(CalibratedFrame):
    """
    A continuum-subtracted emission-line image, made by `~astrophot.subtract_continuum`.

    Same unit as the narrow-band frame, with an uncertainty, `~astrophot.DQFlag`
    bits and the narrow frame's WCS.

    Extra attributes (keyword-only, kept by ``copy`` and slicing):

    continuum : dict or None
        How the continuum was removed: the scale ``k`` and its uncertainty
        ``k_err``, ``method`` (``'stars'``, ``'noise'``, ``'bandwidth'`` or
        ``'given'``), ``n_stars``, ``scatter``, ``eps``, the sky levels of
        both frames, the PSF FWHMs and which frame was convolved.
    stars : `~astropy.table.QTable` or None
        The stars the scale was measured on: positions, broad-band magnitude,
        ``k`` per star, ``used``, and ``residual`` (the fraction of each
        star's narrow-band flux left in the line image).
    """

    _carried = ("continuum", "stars")
    _extensions = (("stars", TABLE, "STARS", None), ("continuum", RECORD, "CONTSCAL", "APCONT"))

    # a property, documented as an attribute: no Returns section (RT01 ignored)
    @property
    def scale(self):  # numpydoc ignore=RT01
        """The continuum scale ``k`` (float) or None."""
        if not self.continuum:
            return None
        return float(np.asarray(self.continuum.get("k")))


#: The maps of a `StackedFrame`: attribute, FITS extension, dtype, what the extension holds.
STACK_MAPS = (
    ("coverage", "COVERAGE", np.uint16, "frames that contributed to each pixel, after rejection"),
    ("exposure_map", "EXPOSURE", np.float32, "seconds of exposure that contributed, after rejection"),
    ("weight", "WEIGHT", np.float32, "sum of the weights of the contributing frames"),
    ("rejected_low", "REJLOW", np.uint16, "values rejected below the limits at each pixel"),
    ("rejected_high", "REJHIGH", np.uint16, "values rejected above the limits at each pixel"),
)


class StackedFrame(SolvedFrame):
    """
    A stack or mosaic of solved frames on one grid, in electrons per second.

    The data are the weighted combination of the kept values (`~astrophot.stack_frames`),
    with an uncertainty propagated through the weights and the kept count, and
    ``NO_DATA`` flags (and NaN) where no frame covers. Header ``EXPTIME`` is the total
    exposure of the frames combined and ``NCOMBINE`` their number.

    Extra attributes (keyword-only, kept by ``copy`` and slicing), besides those of
    `~astrophot.SolvedFrame`:

    coverage : `numpy.ndarray` of uint16 or None
        Frames that contributed to each pixel, after rejection (FITS ``COVERAGE``).
    exposure_map : `numpy.ndarray` of float32 or None
        Seconds of exposure that contributed to each pixel, after rejection (``EXPOSURE``).
    weight : `numpy.ndarray` of float32 or None
        Sum of the weights of the contributing frames (``WEIGHT``).
    rejected_low, rejected_high : `numpy.ndarray` of uint16 or None
        Values rejected below and above the limits at each pixel (``REJLOW``, ``REJHIGH``).
    combination : dict or None
        The combination record: rejection rule, limits, normalisation, weighting, kernel,
        the frames left out and why, and ``frames``, one record per frame combined
        (``file``, ``weight``, ``scale``, ``offset``, ``exposure``, ``rejected_fraction``
        ...; the ``FRAMES`` table extension on disk).

    Parameters
    ----------
    data : array-like, `~astropy.nddata.CCDData` or frame
        The pixels (or a frame to convert).
    *args, **kwargs
        Passed to `~astrophot.SolvedFrame`, with the extra attributes above.

    Raises
    ------
    ValueError
        A map of another shape than ``data``.
    """

    _carried = ("stars", "solution", *(name for name, *_ in STACK_MAPS), "combination")
    _extensions = (
        *SolvedFrame._extensions,
        *((name, dtype, extname, comment) for name, extname, dtype, comment in STACK_MAPS),
    )

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        for name, _, dtype, _ in STACK_MAPS:
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value, dtype=dtype)
            if value.shape != self.data.shape:
                raise ValueError(f"{name} shape {value.shape} does not match data shape {self.data.shape}")
            setattr(self, name, value.copy() if kwargs.get("copy", False) else value)

    # a property, documented as an attribute: no Returns section (RT01 ignored)
    @property
    def n_combined(self):  # numpydoc ignore=RT01
        """The number of frames combined (header ``NCOMBINE``), or None."""
        value = self.header.get("NCOMBINE")
        return None if value is None else int(value)

    def _extra_hdus(self):
        hdus = super()._extra_hdus()
        if self.combination is not None:
            record = dict(self.combination)
            frames = record.pop("frames", None)
            hdus.append(record_hdu(record, "COMBINE", "APCOMB"))
            if frames:
                hdus.append(_table_to_hdu(Table(rows=frames), "FRAMES"))
        return hdus

    @classmethod
    def _from_extra_hdus(cls, hdul):
        kwargs = super()._from_extra_hdus(hdul)
        if "COMBINE" in hdul:
            record = json.loads(hdul["COMBINE"].header["APCOMB"])
            if "FRAMES" in hdul:
                table = _table_from_hdu(hdul["FRAMES"])
                record["frames"] = [{key: _plain_value(row[key]) for key in table.colnames} for row in table]
            kwargs["combination"] = record
        return kwargs


def _plain_value(value):
    value = value.item() if hasattr(value, "item") else value
    return value
