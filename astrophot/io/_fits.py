# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Reading and writing frames: FITS pixels plus an ASDF provenance sidecar."""

import logging
import os
import re
import uuid
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from astropy.nddata.ccddata import _generate_wcs_and_update_header

from astrophot.exceptions import AstrophotUserWarning, FrameReadError, FrameWriteError, ProvenanceError
from astrophot.frames import FRAME_TYPES, BadPixelMap, CalibratedFrame, FrameBase, RawFrame
from astrophot.io._sidecar import read_sidecar, sidecar_path, write_sidecar

__all__ = ["classify_imagetyp", "read_frame", "read_header_text", "write_frame"]

log = logging.getLogger(__name__)

#: Header keywords astrophot writes to tie a FITS file to its sidecar.
KEY_TYPE, KEY_SIDECAR, KEY_PROVID = "APFRAME", "APSIDECR", "APPROVID"

_IMAGETYP = [
    (re.compile(r"master\s*bias|^mbias"), "MasterBias"),
    (re.compile(r"master\s*dark|^mdark"), "MasterDark"),
    (re.compile(r"master\s*flat|^mflat"), "MasterFlat"),
    (re.compile(r"bad\s*pix|badpixel"), "BadPixelMap"),
]
_MASTER_NAME = re.compile(r"^Master_(Bias|Dark|Flat|Badpix)_", re.IGNORECASE)
_STORAGE_KEYS = ("BZERO", "BSCALE", "BLANK", "CHECKSUM", "DATASUM")
_OUR_EXTENSIONS = ("UNCERT", "MASK", "DQ")


def classify_imagetyp(value):
    """
    Normalise an IMAGETYP value.

    Returns
    -------
    str or None
        'light', 'bias', 'dark', 'flat', 'master bias', 'master dark',
        'master flat', 'badpix' or None when unknown.

    Examples
    --------
    >>> classify_imagetyp("Light Frame"), classify_imagetyp("Flat Field")
    ('light', 'flat')
    >>> classify_imagetyp("MASTER DARK")
    'master dark'
    """
    if value is None:
        return None
    text = str(value).strip().lower()
    if not text:
        return None
    for kind in ("bias", "dark", "flat"):
        if "master" in text and kind in text:
            return f"master {kind}"
    if "bad" in text and "pix" in text:
        return "badpix"
    if "bias" in text or "zero" in text or "offset" in text:
        return "bias"
    if "dark" in text:
        return "dark"
    if "flat" in text:
        return "flat"
    if "light" in text or "object" in text or "science" in text:
        return "light"
    return None


def read_header_text(path):
    """
    Read a FITS header saved as text (one 80-character card a line).

    Invalid cards (free text some programs write) are kept as they are and
    logged at DEBUG level instead of warning.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    `astropy.io.fits.Header`
    """
    text = Path(path).read_text(errors="replace")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        header = fits.Header.fromstring(text, sep="\n")
        # touching every card parses it; invalid ones warn here, not later
        for card in header.cards:
            _ = card.value
    for warning in caught:
        log.debug("%s: %s", path, warning.message)
    return header


def _resolve_type(frame_type):
    if frame_type is None:
        return None
    if isinstance(frame_type, type) and issubclass(frame_type, FrameBase):
        return frame_type
    try:
        return FRAME_TYPES[str(frame_type)]
    except KeyError:
        raise ValueError(
            f"unknown frame type {frame_type!r}; expected one of {sorted(FRAME_TYPES)}"
        ) from None


def _guess_type(path, header):
    stamp = header.get(KEY_TYPE)
    if stamp in FRAME_TYPES:
        return FRAME_TYPES[stamp]
    match = _MASTER_NAME.match(Path(path).name)
    if match:
        kind = match.group(1).lower()
        return FRAME_TYPES["BadPixelMap" if kind == "badpix" else f"Master{kind.title()}"]
    imagetyp = str(header.get("IMAGETYP", "")).strip().lower()
    for pattern, name in _IMAGETYP:
        if pattern.search(imagetyp):
            return FRAME_TYPES[name]
    calstat = str(header.get("CALSTAT", "")).strip().upper()
    if classify_imagetyp(imagetyp) == "light" and calstat and any(c in calstat for c in "BDF"):
        return CalibratedFrame
    return RawFrame


def _stamped_type(path, header):
    """The frame type the file says it holds: astrophot's stamp or an iTelescope master name."""
    stamp = header.get(KEY_TYPE)
    if stamp in FRAME_TYPES:
        return stamp
    match = _MASTER_NAME.match(Path(path).name)
    if match:
        kind = match.group(1).lower()
        return "BadPixelMap" if kind == "badpix" else f"Master{kind.title()}"
    return None


def _native(array):
    """A FITS array in native byte order (FITS is big-endian on disk; files are read with memmap off)."""
    array = np.asarray(array)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _find_image(hdul, path):
    for index, hdu in enumerate(hdul):
        if not hdu.is_image or hdu.name in _OUR_EXTENSIONS:
            continue
        if hdu.header.get("NAXIS", 0) == 0 and not isinstance(hdu, fits.CompImageHDU):
            continue
        data = hdu.data
        if data is None:
            continue
        if data.ndim != 2:
            raise FrameReadError(f"{path}: HDU {index} holds a {data.ndim}-D image; astrophot frames are 2-D")
        return index, hdu
    raise FrameReadError(f"{path}: no image data in any HDU")


def read_frame(path, *, frame_type=None):
    """
    Read a FITS file as the right typed frame.

    Parameters
    ----------
    path : str or path-like
        A ``.fit``/``.fits``/``.fts`` file, optionally gzip/bzip2 or
        tile-compressed. The image is taken from the primary HDU or the first
        image extension.
    frame_type : str or type, optional
        Force a frame type (``"MasterDark"`` or `~astrophot.MasterDark`).
        Otherwise the type comes from astrophot's own header stamp, an
        iTelescope master file name (``Master_Dark_...``) or IMAGETYP.

    Returns
    -------
    frame : `~astrophot.frames.FrameBase` subclass
        Unsigned data stored with BZERO are restored; MaxIm DL's ``PEDESTAL``
        is added to the data and its card removed; the provenance is read
        from the sidecar when there is one.

    Raises
    ------
    astrophot.exceptions.FrameReadError
        The file is missing, not FITS, truncated or holds no 2-D image.

    See Also
    --------
    write_frame

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import RawFrame, read_frame, write_frame
    >>> path = getfixture("tmp_path") / "frame.fits"
    >>> _ = write_frame(RawFrame(np.ones((4, 4)), meta={"EXPTIME": 10.0}), path)
    >>> read_frame(path).exposure_time
    <Quantity 10. s>
    """
    path = Path(path)
    if not path.exists():
        raise FrameReadError(f"{path}: no such file")
    if path.is_dir():
        raise FrameReadError(f"{path}: is a directory, not a FITS file")
    cls = _resolve_type(frame_type)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False) as hdul:
                index, hdu = _find_image(hdul, path)
                data = _native(hdu.data)
                header = hdu.header.copy()
                primary_header = hdul[0].header
                if index != 0:
                    # inherit cards from the primary header that the extension lacks
                    for card in primary_header.cards:
                        if (
                            card.keyword
                            and card.keyword not in header
                            and card.keyword
                            not in (
                                "SIMPLE",
                                "EXTEND",
                                "NAXIS",
                                "BITPIX",
                                "COMMENT",
                                "HISTORY",
                                "",
                            )
                        ):
                            header.append(card)
                extras = {}
                if "UNCERT" in hdul:
                    extras["uncertainty"] = StdDevUncertainty(_native(hdul["UNCERT"].data))
                if "MASK" in hdul:
                    extras["mask"] = np.array(hdul["MASK"].data).astype(bool)
                if "DQ" in hdul:
                    extras["flags"] = np.array(hdul["DQ"].data).astype(np.uint32)
                if cls is None:
                    cls = _guess_type(path, header)
                extras.update(cls._from_extra_hdus(hdul))
        except FrameReadError:
            raise
        except Exception as exc:
            raise FrameReadError(f"{path}: not a readable FITS file ({type(exc).__name__}: {exc})") from exc
    for warning in caught:
        text = str(warning.message)
        if "truncated" in text.lower():
            raise FrameReadError(f"{path}: the file is truncated ({text})")
        if issubclass(warning.category, fits.verify.VerifyWarning) or "verify" in text.lower():
            log.debug("%s: %s", path, text)
        elif not issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning)):
            log.debug("%s: warning while reading: %s", path, text)

    # storage cards describe the file, not the restored values
    for key in _STORAGE_KEYS:
        header.remove(key, ignore_missing=True, remove_all=True)
    pedestal = header.get("PEDESTAL")
    if pedestal is not None:
        try:
            pedestal = float(pedestal)
        except (TypeError, ValueError):
            raise FrameReadError(f"{path}: PEDESTAL card is not a number ({pedestal!r})") from None
        if pedestal != 0:
            data = data.astype(np.float32) + np.float32(pedestal)
        header.remove("PEDESTAL", remove_all=True)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header, wcs = _generate_wcs_and_update_header(header)
    except Exception as exc:
        warnings.warn(f"{path}: ignoring an unreadable WCS ({exc})", AstrophotUserWarning, stacklevel=2)
        wcs = None
    if wcs is not None and not wcs.has_celestial:
        wcs = None

    unit_text = header.get("BUNIT")
    unit = None
    if unit_text is not None and not str(unit_text).strip():
        unit = u.dimensionless_unscaled
    elif unit_text:
        try:
            unit = u.Unit(str(unit_text).strip(), parse_strict="silent")
            if isinstance(unit, u.UnrecognizedUnit):
                unit = None
        except ValueError:
            unit = None
    if unit is None:
        unit = u.dimensionless_unscaled if cls is BadPixelMap else u.adu

    provenance = None
    if header.get(KEY_SIDECAR):
        side = path.with_name(str(header[KEY_SIDECAR]))
        if side.exists():
            provenance = read_sidecar(side)
            if header.get(KEY_PROVID) and provenance.id != header[KEY_PROVID]:
                raise ProvenanceError(
                    f"{path}: sidecar {side.name} belongs to another frame "
                    f"(id {provenance.id} != APPROVID {header[KEY_PROVID]})"
                )
        else:
            warnings.warn(
                f"{path}: its provenance sidecar {side.name} is missing; history starts here",
                AstrophotUserWarning,
                stacklevel=2,
            )
    stamp = _stamped_type(path, header)
    for key in (KEY_TYPE, KEY_SIDECAR, KEY_PROVID):
        header.remove(key, ignore_missing=True)

    frame = cls(
        data,
        unit=unit,
        meta=header,
        wcs=wcs,
        provenance=provenance,
        source_path=str(path),
        **extras,
    )
    frame.stamped_type = stamp
    return frame


def _raw_paths(frame):
    """Paths that hold raw data this frame came from (never written to)."""
    paths = set()
    if isinstance(frame, RawFrame) and frame.source_path:
        paths.add(Path(frame.source_path).resolve())
    for step in frame.provenance.steps:
        for ref in step.inputs:
            if ref.frame_type == "RawFrame" and ref.path:
                paths.add(Path(ref.path).resolve())
    return paths


def _is_astrophot_product(path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return KEY_TYPE in fits.getheader(path, 0)
    except Exception:
        return False


def _smallest_flags(flags):
    """DQ flags in the smallest unsigned integer type holding the bits set (uint8 for most frames)."""
    flags = np.asarray(flags)
    top = int(flags.max()) if flags.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return flags.astype(dtype, copy=False)
    return flags.astype(np.uint32)  # pragma: no cover - DQFlag fits in 32 bits


def _build_hdulist(frame, sidecar_name):
    header = frame.header.copy() if frame.header is not None else fits.Header()
    header = fits.Header(header)
    for key in (*_STORAGE_KEYS, KEY_TYPE, KEY_SIDECAR, KEY_PROVID, "PEDESTAL"):
        header.remove(key, ignore_missing=True, remove_all=True)
    if frame.wcs is not None:
        header.extend(frame.wcs.to_header(relax=True), update=True)
    header["BUNIT"] = frame.unit.to_string()
    header[KEY_TYPE] = (frame.frame_type, "astrophot frame type")
    # a long name leaves no room for the comment (astropy would warn that it truncates it)
    sidecar_comment = "astrophot provenance sidecar (ASDF)" if len(sidecar_name) <= 30 else ""
    header[KEY_SIDECAR] = (sidecar_name, sidecar_comment)
    header[KEY_PROVID] = (frame.provenance.id, "astrophot provenance id")
    hdus = [fits.PrimaryHDU(np.asarray(frame.data), header=header)]
    if frame.uncertainty is not None:
        uncert = frame.uncertainty
        if not isinstance(uncert, StdDevUncertainty):
            uncert = uncert.represent_as(StdDevUncertainty)
        hdu = fits.ImageHDU(np.asarray(uncert.array, dtype=np.float32), name="UNCERT")
        hdu.header["UTYPE"] = "StdDevUncertainty"
        hdus.append(hdu)
    if frame.mask is not None and not isinstance(frame, BadPixelMap):
        mask = np.asarray(frame.mask, dtype=bool)
        # a calibrated frame's mask is rebuilt from its DQ flags on reading: write it only when it differs
        derived = isinstance(frame, CalibratedFrame) and frame.flags is not None
        if not derived or not np.array_equal(mask, frame.mask_from_flags()):
            hdus.append(fits.ImageHDU(mask.astype(np.uint8), name="MASK"))
    if frame.flags is not None:
        hdus.append(fits.ImageHDU(_smallest_flags(frame.flags), name="DQ"))
    hdus.extend(frame._extra_hdus())
    return fits.HDUList(hdus)


def write_frame(frame, path, *, overwrite=False):
    """
    Write a frame as ``name.fits`` plus its provenance sidecar ``name.asdf``.

    The write is atomic: both files are written to temporary names in the
    target directory and renamed into place, so an interrupted write leaves
    neither behind.

    Parameters
    ----------
    frame : `~astrophot.frames.FrameBase` subclass
    path : str or path-like
        The FITS file to write (``.fits``, ``.fit`` or ``.fts``).
    overwrite : bool, optional
        Replace an existing astrophot product. A file astrophot did not write
        (raw data) and any path raw data of this frame was read from are never
        overwritten.

    Returns
    -------
    path : `pathlib.Path`
        The FITS file written. ``frame.source_path`` is set to it when unset.

    Raises
    ------
    astrophot.exceptions.FrameWriteError
        The file exists, is raw data, or cannot be written.

    See Also
    --------
    read_frame
    """
    if not isinstance(frame, FrameBase):
        raise TypeError(f"write_frame needs an astrophot frame, not {type(frame).__name__}")
    path = Path(path)
    if not re.search(r"\.(fits?|fts)$", path.name, re.IGNORECASE):
        raise FrameWriteError(
            f"{path}: frames are written as .fits files (got {path.suffix or 'no suffix'!r})"
        )
    side = sidecar_path(path)
    target = path.resolve()
    if target in _raw_paths(frame):
        raise FrameWriteError(f"{path}: refusing to write over raw data this frame was read from")
    for existing in (path, side):
        if existing.exists():
            if not overwrite:
                raise FrameWriteError(f"{existing}: already exists (pass overwrite=True to replace it)")
    if path.exists() and not _is_astrophot_product(path):
        raise FrameWriteError(
            f"{path}: exists and was not written by astrophot (raw data?); refusing to overwrite"
        )
    if not path.parent.exists():
        raise FrameWriteError(f"{path}: directory {path.parent} does not exist")

    token = uuid.uuid4().hex[:12]
    tmp_fits = path.with_name(f".{path.name}.{token}.tmp")
    tmp_side = side.with_name(f".{side.name}.{token}.tmp")
    try:
        hdul = _build_hdulist(frame, side.name)
        hdul.writeto(tmp_fits, output_verify="silentfix")
        write_sidecar(tmp_side, frame.provenance, fits_name=path.name, frame_type=frame.frame_type)
        os.replace(tmp_side, side)
        try:
            os.replace(tmp_fits, path)
        except BaseException:
            side.unlink(missing_ok=True)
            raise
    except FrameWriteError:
        raise
    except Exception as exc:
        raise FrameWriteError(f"{path}: write failed ({type(exc).__name__}: {exc})") from exc
    finally:
        tmp_fits.unlink(missing_ok=True)
        tmp_side.unlink(missing_ok=True)
    if frame.source_path is None:
        frame.source_path = str(path)
    return path
