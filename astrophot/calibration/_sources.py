# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Inputs of the combiner: frames in memory and FITS files read band by band.

A source knows its shape, header and name without reading pixels, and
delivers rows ``r0:r1`` of its data exactly as `~astrophot.read_frame`
would return them (unsigned 16-bit restored, ``PEDESTAL`` added), so that
the checksum it computes while the rows stream past equals
`astrophot.frames.data_checksum` of the frame `~astrophot.read_frame` gives.
"""

import hashlib
import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData

from astrophot.exceptions import FrameReadError
from astrophot.frames import FrameBase, RawFrame, data_checksum
from astrophot.provenance import FrameReference

__all__ = ["FileSource", "FrameSource", "make_sources"]

log = logging.getLogger(__name__)

#: FITS file names the combiner accepts in a directory.
FITS_NAME = re.compile(r"\.(fits?|fts)(\.(gz|bz2|fz))?$", re.IGNORECASE)

_TINY = np.zeros((1, 1), dtype=np.uint8)
_SKIP_INHERIT = ("SIMPLE", "EXTEND", "NAXIS", "BITPIX", "COMMENT", "HISTORY", "")
_STORAGE_KEYS = ("BZERO", "BSCALE", "BLANK", "CHECKSUM", "DATASUM")


class _Source:
    """Common interface (see the module docstring)."""

    #: dtype of the values `read_rows` delivers (what read_frame returns).
    dtype = None
    #: True when some values may be invalid (non-finite or masked).
    may_be_invalid = False
    #: bytes held in memory for the whole run (frames read at once).
    resident_bytes = 0
    #: True when `update_checksum` must see every band (files read in bands).
    needs_checksum = False

    def __init__(self, name, shape, header, frame_type, path=None):
        self.name = name
        self.shape = tuple(int(n) for n in shape)
        self.header = header
        self.frame_type = frame_type
        self.path = path
        # header-only view for attribute access (exposure_time, binning ...)
        self.info = RawFrame(_TINY, unit="adu", meta=header, source_path=path or name)

    def open(self):
        """Prepare for `read_rows` (open files)."""

    def close(self):
        """Release files."""

    def read_rows(self, r0, r1, out):
        """Write rows ``r0:r1`` (flattened) into ``out`` (1-D, dtype ``self.dtype``)."""
        raise NotImplementedError

    def invalid_rows(self, r0, r1):
        """Boolean mask of rows ``r0:r1`` (flattened) or None."""
        return None

    def update_checksum(self, values):
        """Feed the canonical values of the next band to the running checksum."""

    def reference(self, role):
        """The `~astrophot.provenance.FrameReference` of this input."""
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} {self.shape}>"


class FrameSource(_Source):
    """A frame already in memory (or a file read once, whole)."""

    def __init__(self, frame, index=0):
        if isinstance(frame, FrameBase):
            name = frame.name
            path = frame.source_path
            frame_type = frame.frame_type
        else:
            name = f"<in-memory frame #{index}>"
            path = None
            frame_type = "CCDData"
        data = np.asarray(frame.data)
        if data.ndim != 2:
            raise FrameReadError(f"{name}: holds a {data.ndim}-D array; frames are 2-D")
        super().__init__(name, data.shape, _as_header(frame.meta), frame_type, path=path)
        self.frame = frame
        self.data = data
        self.mask = None if frame.mask is None else np.asarray(frame.mask, dtype=bool)
        self.dtype = data.dtype.newbyteorder("=")
        self.may_be_invalid = data.dtype.kind == "f" or self.mask is not None
        self._flat = data.reshape(-1) if data.flags.c_contiguous else None

    def read_rows(self, r0, r1, out):
        if self._flat is not None:
            n = self.shape[1]
            np.copyto(out, self._flat[r0 * n : r1 * n], casting="unsafe")
        else:
            np.copyto(out.reshape(r1 - r0, self.shape[1]), self.data[r0:r1], casting="unsafe")

    def invalid_rows(self, r0, r1):
        if self.mask is None:
            return None
        return self.mask[r0:r1].reshape(-1)

    def reference(self, role):
        if isinstance(self.frame, FrameBase):
            return self.frame.reference(role)
        return FrameReference(sha256=data_checksum(self.data), frame_type=self.frame_type, role=role)


def _as_header(meta):
    """A `~astropy.io.fits.Header` from a frame's meta (a Header or a dict)."""
    if isinstance(meta, fits.Header):
        return meta
    header = fits.Header()
    for key, value in (meta or {}).items():
        try:
            header[key] = value
        except (ValueError, TypeError, KeyError):
            log.debug("meta item %r cannot be a FITS card; left out", key)
    return header


def _image_hdu_index(hdul, path):
    """Index of the first 2-D image HDU, from headers only (as read_frame chooses)."""
    for index, hdu in enumerate(hdul):
        if not hdu.is_image or hdu.name in ("UNCERT", "MASK", "DQ"):
            continue
        header = hdu.header
        naxis = (
            header.get("ZNAXIS", header.get("NAXIS", 0))
            if isinstance(hdu, fits.CompImageHDU)
            else (header.get("NAXIS", 0))
        )
        if not naxis:
            continue
        if naxis != 2:
            raise FrameReadError(f"{path}: HDU {index} holds a {naxis}-D image; astrophot frames are 2-D")
        return index
    raise FrameReadError(f"{path}: no image data in any HDU")


def _merged_header(hdul, index):
    header = hdul[index].header.copy()
    if index != 0:
        for card in hdul[0].header.cards:
            if card.keyword and card.keyword not in header and card.keyword not in _SKIP_INHERIT:
                header.append(card)
    return header


def _encoding(header):
    """(disk dtype, output dtype, xor) for encodings read band by band, else None."""
    bitpix = header.get("BITPIX")
    bzero = header.get("BZERO", 0)
    bscale = header.get("BSCALE", 1)
    if "BLANK" in header or bscale != 1:
        return None
    table = {
        (8, 0): (">u1", np.uint8, None),
        (16, 0): (">i2", np.dtype(">i2"), None),
        (16, 32768): (">u2", np.uint16, 0x8000),
        (32, 0): (">i4", np.dtype(">i4"), None),
        (32, 2147483648): (">u4", np.uint32, 0x80000000),
        (-32, 0): (">f4", np.dtype(">f4"), None),
        (-64, 0): (">f8", np.dtype(">f8"), None),
    }
    try:
        return table[(int(bitpix), int(bzero))]
    except (KeyError, TypeError, ValueError):
        return None


class FileSource(_Source):
    """
    An uncompressed FITS file read band by band, once.

    Rows are read with ``os.preadv`` straight into the caller's buffer and
    converted (byte order, BZERO, PEDESTAL); the sha256 of the values is
    accumulated as they pass, so the file is never read twice.
    """

    def __init__(self, path, header, frame_type, data_offset, encoding):
        shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
        super().__init__(str(path), shape, header, frame_type, path=str(path))
        disk, out, xor = encoding
        self.disk_dtype = np.dtype(disk)
        self.data_offset = int(data_offset)
        self.xor = xor
        pedestal = header.get("PEDESTAL")
        try:
            pedestal = float(pedestal) if pedestal is not None else 0.0
        except (TypeError, ValueError):
            raise FrameReadError(f"{path}: PEDESTAL card is not a number ({pedestal!r})") from None
        self.pedestal = pedestal
        # read_frame: np.array(hdu.data) keeps astropy's dtype; PEDESTAL makes float32
        self.native_dtype = np.dtype(out)
        self.dtype = np.dtype(np.float32) if pedestal else self.native_dtype.newbyteorder("=")
        self.may_be_invalid = self.dtype.kind == "f"
        self.needs_checksum = True
        self._fd = None
        self._raw = None
        self._hash = None
        self._hashed_rows = 0

    def open(self):
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        self._hash = hashlib.sha256()
        self._hash.update(f"{self.dtype.newbyteorder('<').str}{self.shape}".encode())
        self._hashed_rows = 0

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _read_raw(self, r0, r1):
        nx = self.shape[1]
        nbytes = (r1 - r0) * nx * self.disk_dtype.itemsize
        if self._raw is None or self._raw.nbytes < nbytes:
            self._raw = np.empty(nbytes, dtype=np.uint8)
        view = self._raw[:nbytes]
        offset = self.data_offset + r0 * nx * self.disk_dtype.itemsize
        done = 0
        while done < nbytes:
            got = os.preadv(self._fd, [memoryview(view[done:])], offset + done)
            if got <= 0:
                raise FrameReadError(f"{self.path}: the file is truncated (rows {r0}-{r1} missing)")
            done += got
        return view.view(self.disk_dtype)

    def read_rows(self, r0, r1, out):
        raw = self._read_raw(r0, r1)
        if self.xor is not None:
            if self.pedestal:
                tmp = np.bitwise_xor(raw, self.xor, dtype=self.native_dtype)
                np.add(tmp, np.float32(self.pedestal), out=out, dtype=np.float32, casting="unsafe")
            else:
                np.bitwise_xor(raw, self.xor, out=out, casting="unsafe")
        elif self.pedestal:
            np.add(raw.astype(np.float32), np.float32(self.pedestal), out=out, casting="unsafe")
        else:
            np.copyto(out, raw, casting="unsafe")

    def update_checksum(self, values):
        if values.dtype.byteorder == ">":
            values = values.astype(values.dtype.newbyteorder("<"))
        self._hash.update(np.ascontiguousarray(values).view(np.uint8).data)

    def reference(self, role):
        return FrameReference(
            sha256=self._hash.hexdigest(),
            frame_type=self.frame_type,
            path=self.path,
            role=role,
            provenance_id=self.header.get("APPROVID"),
        )


def _guess_frame_type(path, header):
    try:
        from astrophot.io._fits import _guess_type

        return _guess_type(path, header).__name__
    except Exception:
        return "RawFrame"


def _open_path(path):
    """A FileSource when the file can be read band by band, else a FrameSource."""
    from astrophot.io import read_frame

    path = Path(path)
    if not path.exists():
        raise FrameReadError(f"{path}: no such file")
    if path.is_dir():
        raise FrameReadError(f"{path}: is a directory, not a FITS file")
    compressed = path.suffix.lower() in (".gz", ".bz2", ".fz")
    if not compressed:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                    index = _image_hdu_index(hdul, path)
                    hdu = hdul[index]
                    if not isinstance(hdu, fits.CompImageHDU):
                        header = _merged_header(hdul, index)
                        # the encoding comes from the image HDU's own cards
                        encoding = _encoding(hdu.header)
                        if encoding is not None and "UNCERT" not in hdul and "MASK" not in hdul:
                            offset = hdul.fileinfo(index)["datLoc"]
                            expected = offset + int(np.prod(hdu.shape)) * abs(int(hdu.header["BITPIX"])) // 8
                            if os.path.getsize(path) < expected:
                                raise FrameReadError(f"{path}: the file is truncated")
                            frame_type = _guess_frame_type(path, header)
                            for key in _STORAGE_KEYS:
                                header.remove(key, ignore_missing=True, remove_all=True)
                            return FileSource(path, header, frame_type, offset, encoding)
        except FrameReadError:
            raise
        except Exception as exc:
            raise FrameReadError(f"{path}: not a readable FITS file ({type(exc).__name__}: {exc})") from exc
    frame = read_frame(path)
    source = FrameSource(frame)
    source.resident_bytes = frame.data.nbytes
    log.debug("%s: read whole (compressed or scaled encoding)", path)
    return source


def make_sources(inputs):
    """
    Turn frames and paths into sources.

    Parameters
    ----------
    inputs : sequence of frame, `~astropy.nddata.CCDData` or path-like

    Returns
    -------
    list of sources
    """
    sources = []
    for index, item in enumerate(inputs):
        if isinstance(item, _Source):
            sources.append(item)
        elif isinstance(item, CCDData):
            sources.append(FrameSource(item, index))
        elif isinstance(item, (str, os.PathLike)):
            sources.append(_open_path(item))
        else:
            raise TypeError(
                f"input #{index} is a {type(item).__name__}; expected a frame, a CCDData or a FITS file path"
            )
    return sources
