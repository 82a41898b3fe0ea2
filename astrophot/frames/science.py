# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Science frames: calibrated and plate-solved."""

import json

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import QTable, Table

from astrophot.frames._base import FrameBase

__all__ = ["CalibratedFrame", "SolvedFrame"]


class CalibratedFrame(FrameBase):
    """
    A calibrated science frame, in electrons by default (ADU on request).

    It carries a `~astropy.nddata.StdDevUncertainty`, `~astrophot.DQFlag`
    bits in ``flags`` and a boolean ``mask`` derived from them.
    """

    _default_unit = u.electron

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        if self.mask is None and self.flags is not None:
            self.mask = self.mask_from_flags()


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, u.Quantity):
        return str(value)
    return repr(value)


def _table_to_hdu(table, name):
    """A table as a BinTableHDU; units and metadata kept as JSON cards (any unit, any key)."""
    table = Table(table, copy=True)
    units = {}
    for column in table.columns.values():
        if column.unit is not None:
            units[column.name] = column.unit.to_string()
            column.unit = None
    meta = dict(table.meta)
    table.meta.clear()
    hdu = fits.table_to_hdu(table)
    hdu.name = name
    hdu.header["APUNITS"] = json.dumps(units)
    hdu.header["APMETA"] = json.dumps(meta, default=_json_default)
    return hdu


def _table_from_hdu(hdu):
    table = Table.read(hdu)
    units = json.loads(hdu.header.get("APUNITS", "{}"))
    for key in [k for k in table.meta if k in ("APUNITS", "APMETA", "EXTNAME")]:
        del table.meta[key]
    for column_name, unit in units.items():
        table[column_name].unit = u.Unit(unit, parse_strict="silent")
    table.meta.update(json.loads(hdu.header.get("APMETA", "{}")))
    return QTable(table)


class SolvedFrame(CalibratedFrame):
    """
    A calibrated frame with a verified celestial WCS.

    Extra attributes (keyword-only, kept by ``copy`` and slicing):

    stars : `~astropy.table.QTable` or None
        The star list used for the solution, with ``ra``/``dec`` columns.
    solution : dict or None
        The solution record (backend, matched stars, RMS, scale, ...).
    """

    _carried = ("stars", "solution")

    def _extra_hdus(self):
        hdus = []
        if self.stars is not None:
            hdus.append(_table_to_hdu(self.stars, "STARS"))
        if self.solution is not None:
            hdu = fits.ImageHDU(name="SOLUTION")
            hdu.header["APSOLN"] = json.dumps(self.solution, default=_json_default)
            hdus.append(hdu)
        return hdus

    @classmethod
    def _from_extra_hdus(cls, hdul):
        kwargs = {}
        if "STARS" in hdul:
            kwargs["stars"] = _table_from_hdu(hdul["STARS"])
        if "SOLUTION" in hdul:
            kwargs["solution"] = json.loads(hdul["SOLUTION"].header["APSOLN"])
        return kwargs
