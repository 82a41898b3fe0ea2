# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
astropy's unified I/O (``Frame.read``/``frame.write``) for astrophot frames.

The frames inherit `~astropy.nddata.CCDData`'s ``read`` and ``write``, whose
FITS reader and writer know nothing of the provenance sidecar, the flags or
the guard against overwriting raw data. Every frame class registers
`~astrophot.read_frame` and `~astrophot.write_frame` instead (specutils'
pattern), so ``RawFrame.read(path)`` is ``read_frame(path,
frame_type=RawFrame)`` and ``frame.write(path, overwrite=True)`` is
``write_frame(frame, path, overwrite=True)``; any other format is refused.
"""

import os

from astropy.io import registry

__all__ = ["register_frame_io"]

FORMAT = "fits"
_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz", ".fits.bz2")


def _identify(origin, path, fileobj, *args, **kwargs):
    return isinstance(path, str) and path.lower().endswith(_SUFFIXES)


def _reader(cls):
    def read(path, **kwargs):
        from astrophot.frames._base import FrameBase
        from astrophot.io import read_frame

        if not isinstance(path, (str, bytes, os.PathLike)) and isinstance(getattr(path, "name", None), str):
            path = path.name  # astropy opened the file to identify its format: read_frame opens it itself
        if cls is FrameBase:
            return read_frame(path, **kwargs)
        return read_frame(path, frame_type=cls, **kwargs)

    read.__doc__ = f"Read a FITS file and its sidecar as a {cls.__name__} (`~astrophot.read_frame`)."
    return read


def _write(frame, path, **kwargs):
    from astrophot.io import write_frame

    write_frame(frame, path, **kwargs)


def register_frame_io(cls):
    """Register `~astrophot.read_frame`/`~astrophot.write_frame` as ``cls``'s FITS reader and writer."""
    registry.register_reader(FORMAT, cls, _reader(cls), force=True)
    registry.register_writer(FORMAT, cls, _write, force=True)
    registry.register_identifier(FORMAT, cls, _identify, force=True)
