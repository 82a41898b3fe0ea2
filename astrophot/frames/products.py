# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Products of the combination stages (resampled frames; stacks and mosaics are added here too).

`ResampledFrame` is what `~astrophot.resample_frame` returns: a `~astrophot.SolvedFrame`
on a target grid, with a ``weight`` plane (the kernel mass that came from good input pixels,
float32, 1 where the whole kernel sat on good pixels, 0 outside the input's footprint) besides
``data``, ``uncertainty`` and ``flags``. On disk the weight is the ``WEIGHT`` image extension.
"""

import json

import numpy as np
from astropy.io import fits

from astrophot.frames.science import (
    CalibratedFrame,
    SolvedFrame,
    _json_default,
    _table_from_hdu,
    _table_to_hdu,
)

__all__ = ["LineFrame", "ResampledFrame"]


class ResampledFrame(SolvedFrame):
    """
    A solved frame resampled onto a target grid.

    Extra attributes (keyword-only, kept by ``copy`` and slicing), besides those of
    `~astrophot.SolvedFrame`:

    weight : `numpy.ndarray` of float32 or None
        Kernel mass from good input pixels, same shape as ``data`` (0 to about 1).
    resampling : dict or None
        The resampling record: kernel, conserve, noise correlation factor, target shape.
    """

    _carried = ("stars", "solution", "weight", "resampling")

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        if self.weight is not None:
            weight = np.asarray(self.weight, dtype=np.float32)
            if weight.shape != self.data.shape:
                raise ValueError(f"weight shape {weight.shape} does not match data shape {self.data.shape}")
            self.weight = weight.copy() if kwargs.get("copy", False) else weight

    def _extra_hdus(self):
        hdus = super()._extra_hdus()
        if self.weight is not None:
            hdu = fits.ImageHDU(np.asarray(self.weight, dtype=np.float32), name="WEIGHT")
            hdu.header["COMMENT"] = "kernel mass from good input pixels"
            hdus.append(hdu)
        if self.resampling is not None:
            hdu = fits.ImageHDU(name="RESAMPLE")
            hdu.header["APRESAMP"] = json.dumps(self.resampling, default=_json_default)
            hdus.append(hdu)
        return hdus

    @classmethod
    def _from_extra_hdus(cls, hdul):
        kwargs = super()._from_extra_hdus(hdul)
        if "WEIGHT" in hdul:
            kwargs["weight"] = np.array(hdul["WEIGHT"].data, dtype=np.float32)
        if "RESAMPLE" in hdul:
            kwargs["resampling"] = json.loads(hdul["RESAMPLE"].header["APRESAMP"])
        return kwargs


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

    def _extra_hdus(self):
        hdus = []
        if self.stars is not None:
            hdus.append(_table_to_hdu(self.stars, "STARS"))
        if self.continuum is not None:
            hdu = fits.ImageHDU(name="CONTSCAL")
            hdu.header["APCONT"] = json.dumps(self.continuum, default=_json_default)
            hdus.append(hdu)
        return hdus

    @classmethod
    def _from_extra_hdus(cls, hdul):
        kwargs = {}
        if "STARS" in hdul:
            kwargs["stars"] = _table_from_hdu(hdul["STARS"])
        if "CONTSCAL" in hdul:
            kwargs["continuum"] = json.loads(hdul["CONTSCAL"].header["APCONT"])
        return kwargs

    @property
    def scale(self):
        """The continuum scale ``k`` (float) or None."""
        if not self.continuum:
            return None
        return float(np.asarray(self.continuum.get("k")))
