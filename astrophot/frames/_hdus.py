# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The extra FITS extensions a frame type declares: tables, JSON records and image planes."""

import json

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import QTable, Table

__all__ = []

#: Extension kinds besides an image plane (whose kind is its numpy dtype).
TABLE = "table"
RECORD = "record"


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


def record_hdu(record, extname, card):
    """An empty image HDU holding ``record`` as JSON in header card ``card``."""
    hdu = fits.ImageHDU(name=extname)
    hdu.header[card] = json.dumps(record, default=_json_default)
    return hdu


def to_hdus(frame, extensions):
    """
    The HDUs of the attributes ``extensions`` declares that are set on ``frame``.

    Each entry is ``(attribute, kind, extname, card)``: kind `TABLE` (a table as a
    BinTableHDU), `RECORD` (a dict as JSON in header card ``card`` of an empty image
    HDU), or a numpy dtype (an array as an image HDU, ``card`` its COMMENT or None).
    """
    hdus = []
    for name, kind, extname, card in extensions:
        value = getattr(frame, name, None)
        if value is None:
            continue
        if kind == TABLE:
            hdus.append(_table_to_hdu(value, extname))
        elif kind == RECORD:
            hdus.append(record_hdu(value, extname, card))
        else:
            hdu = fits.ImageHDU(np.asarray(value, dtype=kind), name=extname)
            if card:
                hdu.header["COMMENT"] = card
            hdus.append(hdu)
    return hdus


def from_hdus(hdul, extensions):
    """Keyword arguments read back from the extensions ``extensions`` declares (see `to_hdus`)."""
    kwargs = {}
    for name, kind, extname, card in extensions:
        if extname not in hdul:
            continue
        if kind == TABLE:
            kwargs[name] = _table_from_hdu(hdul[extname])
        elif kind == RECORD:
            kwargs[name] = json.loads(hdul[extname].header[card])
        else:
            kwargs[name] = np.array(hdul[extname].data, dtype=kind)
    return kwargs
