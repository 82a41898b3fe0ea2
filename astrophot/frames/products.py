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

from astrophot.frames.science import SolvedFrame, _json_default

__all__ = ["ResampledFrame"]


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
