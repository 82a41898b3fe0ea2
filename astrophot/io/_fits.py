# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Reading and writing frames: FITS pixels plus an ASDF provenance sidecar."""

import contextlib
import glob
import hashlib
import logging
import os
import re
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from astropy.nddata.ccddata import _generate_wcs_and_update_header

from astrophot.exceptions import AstrophotUserWarning, FrameReadError, FrameWriteError, ProvenanceError
from astrophot.frames import FRAME_TYPES, BadPixelMap, CalibratedFrame, FrameBase, RawFrame
from astrophot.frames._base import data_checksum
from astrophot.frames._validate import warn_if_degenerate
from astrophot.io._atomic import (
    TMP_SUFFIX,
    clean_stale_temporaries,
    owned_temporary,
    parse_temporary,
    publish,
    safe_unlink,
    target_lock,
)
from astrophot.io._sidecar import _one_line, read_sidecar, sidecar_path, write_sidecar

__all__ = [
    "classify_imagetyp",
    "read_frame",
    "read_header_text",
    "read_product_header",
    "remove_stale_temporaries",
    "write_frame",
]

log = logging.getLogger(__name__)

#: Header keywords astrophot writes to tie a FITS file to its sidecar.
KEY_TYPE, KEY_SIDECAR, KEY_PROVID = "APFRAME", "APSIDECR", "APPROVID"
#: A frame whose pixels live in another product (``write_frame(..., pixels_from=)``): that
#: file's path relative to this one, and the sha256 of its pixel planes.
KEY_PIXREF, KEY_PIXSHA = "APPIXREF", "APPIXSHA"

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


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _first_line(exc):
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _check_header_strings(path, header):
    """Header strings with control characters (NUL, BEL, ...) are refused at read, naming the card."""
    for card in header.cards:
        try:
            value = card.value
        except Exception as exc:
            raise FrameReadError(
                f"{path}: card {card.keyword} cannot be parsed ({_first_line(exc)})"
            ) from None
        if isinstance(value, str) and _CONTROL.search(value):
            raise FrameReadError(f"{path}: card {card.keyword} holds control characters ({value!r})")


def _sidecar_name(path, header):
    """APSIDECR as a bare file name beside ``path`` (never a path elsewhere)."""
    name = str(header[KEY_SIDECAR]).strip()
    if not name or "/" in name or "\\" in name or name in (".", "..") or _CONTROL.search(name):
        raise FrameReadError(
            f"{path}: card {KEY_SIDECAR} = {name!r} is not a sidecar file name beside the FITS file"
        )
    return path.with_name(name)


def _pending_sidecar(side, provid):
    """A sidecar of id ``provid`` still under its temporary name (a writer between its two renames)."""
    if not provid:
        return None
    tag = _provenance_tag(provid)
    for candidate in side.parent.glob(f".{glob.escape(side.name)}.{tag}.*{TMP_SUFFIX}"):
        if parse_temporary(candidate):
            return candidate
    return None


def _read_bound_provenance(path, header):
    """
    The provenance bound to this FITS file: its sidecar when the ids agree.

    A writer publishes the FITS file first and the sidecar second; between
    the two (or after a crash there) the new sidecar is still under its
    temporary name, found by the FITS file's id. So a reader sees the old
    pair or the new pair, never a mixed one.
    """
    if not header.get(KEY_SIDECAR):
        return None
    side = _sidecar_name(path, header)
    provid = header.get(KEY_PROVID)
    provenance = None
    for _attempt in range(2):
        if side.exists():
            try:
                provenance = read_sidecar(side)
            except ProvenanceError:
                if _pending_sidecar(side, provid) is None and side.exists():
                    raise
            if provenance is not None and (not provid or provenance.id == provid):
                return provenance
        pending = _pending_sidecar(side, provid)
        if pending is not None:
            with contextlib.suppress(FileNotFoundError, ProvenanceError):
                return read_sidecar(pending)
    if provenance is not None:
        raise ProvenanceError(
            f"{path}: sidecar {side.name} belongs to another frame (id {provenance.id} != APPROVID {provid})"
        )
    warnings.warn(
        f"{path}: its provenance sidecar {side.name} is missing; history starts here",
        AstrophotUserWarning,
        stacklevel=3,
    )
    return None


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


_NOT_INHERITED = ("SIMPLE", "EXTEND", "NAXIS", "BITPIX", "COMMENT", "HISTORY", "")


def _image_header(hdul, index, hdu):
    """The frame's header: the image HDU's, with the primary header's cards it lacks (extensions)."""
    header = hdu.header.copy()
    primary_header = hdul[0].header
    if index == 0:
        return header
    if isinstance(hdu, fits.CompImageHDU) and KEY_TYPE in primary_header:
        return _compressed_product_header(primary_header, header)
    for card in primary_header.cards:  # inherit cards from the primary header that the extension lacks
        if card.keyword and card.keyword not in header and card.keyword not in _NOT_INHERITED:
            header.append(card)
    return header


def _compressed_product_header(primary, image):
    """The header of an astrophot product written with ``compress=True``: as if uncompressed."""
    header = primary.copy()
    for key in ("NAXIS1", "NAXIS2"):
        header.remove(key, ignore_missing=True)
    header["BITPIX"] = image["BITPIX"]
    header["NAXIS"] = image["NAXIS"]
    header.insert("NAXIS", ("NAXIS1", image["NAXIS1"]), after=True)
    header.insert("NAXIS1", ("NAXIS2", image["NAXIS2"]), after=True)
    return header


def _pixel_planes(hdul):
    """The uncertainty, mask and DQ planes of an open product (those it has)."""
    extras = {}
    if "UNCERT" in hdul:
        extras["uncertainty"] = StdDevUncertainty(_native(hdul["UNCERT"].data))
    if "MASK" in hdul:
        extras["mask"] = np.array(hdul["MASK"].data).astype(bool)
    if "DQ" in hdul:
        extras["flags"] = np.array(hdul["DQ"].data).astype(np.uint32)
    return extras


def _pixels_sha256(data, extras, *, data_sha256=None):
    """
    One sha256 over a product's pixel planes as stored (image, UNCERT, MASK, DQ).

    ``data_sha256``: the image plane's `data_checksum` when already known (not taken again).
    """
    h = hashlib.sha256()
    planes = [("data", data)]
    if "uncertainty" in extras:
        planes.append(("uncertainty", extras["uncertainty"].array))
    planes += [(key, extras[key]) for key in ("mask", "flags") if key in extras]
    for name, plane in planes:
        digest = data_sha256 if name == "data" and data_sha256 is not None else data_checksum(plane)
        h.update(f"{name}:{digest};".encode())
    return h.hexdigest()


def _file_pixels(path):
    """(data, image header, planes) of the product ``path``, read as `read_frame` reads them."""
    with fits.open(path, memmap=False) as hdul:
        if KEY_PIXREF in hdul[0].header:
            raise FrameReadError(
                f"{path}: holds no pixels itself (it refers to {hdul[0].header[KEY_PIXREF]}); "
                "refer to the file that holds them"
            )
        index, hdu = _find_image(hdul, path)
        return _native(hdu.data), hdu.header.copy(), _pixel_planes(hdul)


def _image_hdu_header(hdul, path):
    """The header of the image HDU `read_frame` takes, without reading its pixels."""
    for index, hdu in enumerate(hdul):
        if not hdu.is_image or hdu.name in _OUR_EXTENSIONS:
            continue
        if hdu.header.get("NAXIS", 0) >= 2 or isinstance(hdu, fits.CompImageHDU):
            return index, hdu
    raise FrameReadError(f"{path}: no image data in any HDU")


def read_product_header(path):
    """
    The header of the frame in ``path`` as `read_frame` gives it (WCS cards, ``NAXIS1``/``NAXIS2``
    of the image), reading headers only: also for tile-compressed products and for frames
    whose pixels are in another file (``write_frame(..., pixels_from=)``), whose own primary
    header has ``NAXIS = 0``.
    """
    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        primary = hdul[0].header
        if KEY_PIXREF in primary:
            ref = Path(path).parent / str(primary[KEY_PIXREF])
            if not ref.is_file():
                raise FrameReadError(f"{path}: its pixels are in {ref}, which does not exist")
            with fits.open(ref, memmap=False, lazy_load_hdus=True) as other:
                image = _image_hdu_header(other, ref)[1].header.copy()
            return _compressed_product_header(primary, image)
        index, hdu = _image_hdu_header(hdul, path)
        return _image_header(hdul, index, hdu)


def _referenced_pixels(path, primary):
    """
    The pixels of a frame written with ``pixels_from``: read from the file its header names,
    refused when that file is missing or its pixels are not those recorded.
    """
    ref = Path(path).parent / str(primary[KEY_PIXREF])
    expected = str(primary.get(KEY_PIXSHA, ""))
    if not ref.is_file():
        raise FrameReadError(f"{path}: its pixels are in {ref}, which does not exist")
    try:
        data, image_header, extras = _file_pixels(ref)
    except FrameReadError as exc:
        raise FrameReadError(f"{path}: its pixels are in {ref}, which cannot be read ({exc})") from None
    except Exception as exc:
        raise FrameReadError(f"{path}: its pixels are in {ref}, not a readable FITS file ({exc})") from None
    found = _pixels_sha256(data, extras)
    if found != expected:
        raise FrameReadError(
            f"{path}: its pixels are in {ref}, whose pixels changed since {Path(path).name} was written "
            f"(sha256 {found[:16]}..., recorded {expected[:16]}...); remake {Path(path).name} from it"
        )
    header = _compressed_product_header(primary, image_header)
    for key in (KEY_PIXREF, KEY_PIXSHA):
        header.remove(key, ignore_missing=True)
    return data, header, extras


def _read_image(path, cls):
    """The pixels, header and extra planes of ``path`` and the frame class (``cls`` or guessed)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False) as hdul:
                if KEY_PIXREF in hdul[0].header:
                    data, header, extras = _referenced_pixels(path, hdul[0].header)
                else:
                    index, hdu = _find_image(hdul, path)
                    data = _native(hdu.data)
                    header = _image_header(hdul, index, hdu)
                    extras = _pixel_planes(hdul)
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
    return data, header, extras, cls


def _restore_stored_values(path, data, header):
    """Drop the storage cards of ``header`` and add MaxIm DL's ``PEDESTAL`` to ``data``."""
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
    return data


def _header_wcs(path, header):
    """The header and its celestial WCS (None when there is none or it cannot be read)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header, wcs = _generate_wcs_and_update_header(header)
    except Exception as exc:
        # stacklevel 3: the caller of read_frame
        warnings.warn(f"{path}: ignoring an unreadable WCS ({exc})", AstrophotUserWarning, stacklevel=3)
        wcs = None
    if wcs is not None and not wcs.has_celestial:
        wcs = None
    return header, wcs


def _header_unit(header, cls):
    """The unit of ``BUNIT`` (blank: dimensionless); ADU when absent or unknown (a bad-pixel map: dimensionless)."""
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
    return unit


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
        from the sidecar when there is one. A frame written with
        ``pixels_from`` gets its pixels from the file it names.

    Raises
    ------
    astrophot.exceptions.FrameReadError
        The file is missing, not FITS, truncated or holds no 2-D image; or
        its pixels are in another file (``pixels_from``) that is missing or
        whose pixels are no longer those recorded (naming both files).

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
    data, header, extras, cls = _read_image(path, _resolve_type(frame_type))
    data = _restore_stored_values(path, data, header)
    header, wcs = _header_wcs(path, header)
    unit = _header_unit(header, cls)

    _check_header_strings(path, header)
    provenance = _read_bound_provenance(path, header)
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
    last = provenance.steps[-1] if provenance is not None and provenance.steps else None
    if last is not None and last.output is not None:
        frame._recorded_checksum = last.output.sha256
    _warn_degenerate(frame, "read")
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


def _image_hdu(data, *, name=None, header=None, compress=False):
    """An image HDU; with ``compress`` a lossless tile-compressed one (GZIP_2 for floats, RICE_1 for integers)."""
    data = np.asarray(data)
    if not compress:
        if name is None:
            return fits.PrimaryHDU(data, header=header)
        return fits.ImageHDU(data, header=header, name=name)
    if data.dtype.kind == "f":
        # quantize_level=0: no quantisation, the floats come back bit for bit (byte-shuffled gzip)
        options = {"compression_type": "GZIP_2", "quantize_level": 0.0}
    else:
        options = {"compression_type": "RICE_1"}
    return fits.CompImageHDU(data, header=header, name=name or "IMAGE", **options)


def _build_hdulist(frame, sidecar_name, compress=False, reference=None):
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
    if reference is not None:  # the pixels stay in the product referred to: header and extras only
        # (a long value leaves no room for a comment: astropy would warn that it truncates it)
        header[KEY_PIXREF] = (
            reference[0],
            "file holding this frame's pixels" if len(reference[0]) <= 30 else "",
        )
        header[KEY_PIXSHA] = reference[1]  # sha256 of its pixel planes (64 hex digits fill the card)
        return fits.HDUList([fits.PrimaryHDU(header=header), *frame._extra_hdus()])
    if compress:
        # the cards stay in the primary header (readers find the frame type there); pixels compressed
        hdus = [fits.PrimaryHDU(header=header), _image_hdu(frame.data, compress=True)]
    else:
        hdus = [fits.PrimaryHDU(np.asarray(frame.data), header=header)]
    if frame.uncertainty is not None:
        uncert = frame.uncertainty
        if not isinstance(uncert, StdDevUncertainty):
            uncert = uncert.represent_as(StdDevUncertainty)
        hdu = _image_hdu(np.asarray(uncert.array, dtype=np.float32), name="UNCERT", compress=compress)
        hdu.header["UTYPE"] = "StdDevUncertainty"
        hdus.append(hdu)
    if frame.mask is not None and not isinstance(frame, BadPixelMap):
        mask = np.asarray(frame.mask, dtype=bool)
        # a calibrated frame's mask is rebuilt from its DQ flags on reading: write it only when it differs
        derived = isinstance(frame, CalibratedFrame) and frame.flags is not None
        if not derived or not np.array_equal(mask, frame.mask_from_flags()):
            hdus.append(_image_hdu(mask.astype(np.uint8), name="MASK", compress=compress))
    if frame.flags is not None:
        hdus.append(_image_hdu(_smallest_flags(frame.flags), name="DQ", compress=compress))
    hdus.extend(frame._extra_hdus())
    return fits.HDUList(hdus)


def _provenance_tag(provid):
    """The id as it appears in a pending sidecar's temporary name (32 hex digits)."""
    provid = str(provid)
    if re.fullmatch(r"[0-9a-f]{32}", provid):
        return provid
    return hashlib.md5(provid.encode(), usedforsecurity=False).hexdigest()


def _warn_degenerate(frame, action):
    """Warn, with the numbers, about a frame that is mostly NaN or infinite."""
    warn_if_degenerate(frame, frame.name if action == "read" else action, masked=False, stacklevel=3)


def _check_target(frame, path):
    if not isinstance(frame, FrameBase):
        raise TypeError(f"write_frame needs an astrophot frame, not {type(frame).__name__}")
    if not re.search(r"\.(fits?|fts)$", path.name, re.IGNORECASE):
        raise FrameWriteError(
            f"{path}: frames are written as .fits files (got {path.suffix or 'no suffix'!r})"
        )
    if not path.name.isascii() or not path.name.isprintable():
        raise FrameWriteError(
            f"{path}: the file name must be printable ASCII (its sidecar's name goes into the FITS card "
            f"{KEY_SIDECAR}); rename it, e.g. {path.name.encode('ascii', 'replace').decode().replace('?', '_')!r}"
        )
    if path.resolve() in _raw_paths(frame):
        raise FrameWriteError(f"{path}: refusing to write over raw data this frame was read from")
    if not path.parent.is_dir():
        raise FrameWriteError(f"{path}: directory {path.parent} does not exist")


def _is_our_sidecar(side, fits_name):
    """True when ``side`` is an astrophot sidecar written for ``fits_name`` (an orphan may be replaced)."""
    try:
        head = side.read_bytes()[:65536]
    except OSError:
        return False
    return b"fits_file: " + fits_name.encode() in head or b"fits_file: '" + fits_name.encode() in head


def _recoverer(path, side):
    """For stale temporaries: a pending sidecar whose id the published FITS file carries completes the pair."""

    def recover(tmp, target, tag):
        if tag is None or target != side or not path.exists():
            return False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                provid = fits.getheader(path, 0).get(KEY_PROVID)
        except Exception:
            return False
        if provid is None or _provenance_tag(provid) != tag:
            return False
        os.replace(tmp, side)
        log.info("%s: completed the pair an interrupted write left (sidecar %s)", path, side.name)
        return True

    return recover


def _publish_pair(tmp_fits, tmp_side, path, side, overwrite):
    """Under the target's lock: FITS first (link or replace), then the sidecar."""
    recover = _recoverer(path, side)
    keep = (tmp_fits, tmp_side)
    clean_stale_temporaries(path.parent, target=side, recover=recover, keep=keep)
    clean_stale_temporaries(path.parent, target=path, keep=keep)
    if path.exists():
        if not overwrite:
            raise FileExistsError(path)
        if not _is_astrophot_product(path):
            raise FrameWriteError(
                f"{path}: exists and was not written by astrophot (raw data?); refusing to overwrite"
            )
    elif side.exists() and not _is_our_sidecar(side, path.name):
        raise FrameWriteError(
            f"{side}: exists and is not the sidecar of an astrophot {path.name}; refusing to replace it"
        )
    publish(tmp_fits, path, overwrite=overwrite)
    os.replace(tmp_side, side)


def _pixel_reference(frame, path, pixels_from):
    """(path relative to ``path``'s folder, sha256) of a product holding exactly ``frame``'s pixels."""
    source = Path(pixels_from)
    if source.resolve() == path.resolve():
        raise FrameWriteError(f"{path}: pixels_from names the file being written")
    try:
        data, _, extras = _file_pixels(source)
        held = read_frame(source)
    except FrameReadError as exc:
        raise FrameWriteError(f"{path}: cannot take the pixels from {source}: {exc}") from None
    if not _is_astrophot_product(source):
        raise FrameWriteError(
            f"{path}: {source} was not written by astrophot; pixels_from takes its products"
        )
    mine = (frame.data, getattr(frame.uncertainty, "array", None), frame.flags, frame.mask)
    theirs = (held.data, getattr(held.uncertainty, "array", None), held.flags, held.mask)
    for name, a, b in zip(("data", "uncertainty", "flags", "mask"), mine, theirs):
        same = (a is None and b is None) or (
            a is not None
            and b is not None
            and np.shape(a) == np.shape(b)
            and np.array_equal(a, b, equal_nan=True)
        )
        if not same:
            raise FrameWriteError(
                f"{path}: the frame's {name} differs from that of {source}; pixels_from needs the file "
                "holding exactly this frame's pixels"
            )
    relative = Path(os.path.relpath(source.resolve(), path.resolve().parent)).as_posix()
    if not relative.isascii() or not relative.isprintable():
        raise FrameWriteError(
            f"{path}: the path to {source} must be printable ASCII (it goes into {KEY_PIXREF})"
        )
    # the file's image equals the frame's (checked above): with the same dtype its checksum is the frame's
    same_dtype = np.dtype(frame.data.dtype).newbyteorder("<") == np.dtype(data.dtype).newbyteorder("<")
    known = frame.checksum() if same_dtype and hasattr(frame, "checksum") else None
    return relative, _pixels_sha256(data, extras, data_sha256=known)


def write_frame(frame, path, *, overwrite=False, compress=False, pixels_from=None):
    """
    Write a frame as ``name.fits`` plus its provenance sidecar ``name.asdf``.

    Both files are written completely under temporary names beside the
    target, then published: the FITS file first, in one step, then the
    sidecar. The FITS header carries the provenance id the sidecar holds, and
    a reader that finds the FITS file published but the sidecar not yet (a
    crash between the two steps) reads the new sidecar under its temporary
    name; so a reader always sees the old pair or the new pair. Writers of one
    name are serialised by a lock; with ``overwrite=False`` the name is taken
    with a hard link, which fails if it exists, so of two concurrent writers
    exactly one wins. Temporaries carry this host and process id: a later
    write removes those of dead processes (`clean_stale_temporaries` does it
    for a whole directory).

    Parameters
    ----------
    frame : `~astrophot.frames.FrameBase` subclass
    path : str or path-like
        The FITS file to write (``.fits``, ``.fit`` or ``.fts``; a printable
        ASCII name, since the sidecar's name goes into a FITS card).
    overwrite : bool, optional
        Replace an existing astrophot product. A file astrophot did not write
        (raw data) and any path raw data of this frame was read from are never
        overwritten.
    compress : bool, optional
        Tile-compress the images losslessly (FITS tile compression: GZIP_2
        for floating-point planes, RICE_1 for integer planes such as DQ). The
        pixels read back bit for bit; a calibrated 4008x2672 frame of sky
        noise shrinks to about 60% (see the docs' table of sizes), at a few
        seconds more per write. The primary header keeps every card.
    pixels_from : str or path-like, optional
        An astrophot product holding exactly this frame's pixels (data,
        uncertainty, DQ flags, mask), such as the calibrated frame a
        `~astrophot.SolvedFrame` was solved from. The file written then keeps
        the header (with the WCS), the extensions of its type (star list,
        solution) and, in ``APPIXREF``/``APPIXSHA``, that file's path relative
        to it and a sha256 of its pixels, instead of a second copy of them:
        `read_frame` takes the pixels from there and refuses, naming both
        files, when that file is missing or its pixels changed. Keep the two
        files together (moving both keeps the relative path).

    Returns
    -------
    path : `pathlib.Path`
        The FITS file written. ``frame.source_path`` is set to it when unset.

    Raises
    ------
    astrophot.exceptions.FrameWriteError
        The file exists, is raw data, has a non-ASCII name, or cannot be
        written (the message carries the operating system's error).

    Warns
    -----
    astrophot.exceptions.AstrophotUserWarning
        The frame is mostly NaN/infinite or mostly masked (with the numbers).

    See Also
    --------
    read_frame, clean_stale_temporaries
    """
    path = Path(path)
    _check_target(frame, path)
    if path.exists() and not overwrite:
        raise FrameWriteError(f"{path}: already exists (pass overwrite=True to replace it)")
    side = sidecar_path(path)
    _warn_degenerate(frame, str(path))
    reference = None if pixels_from is None else _pixel_reference(frame, path, pixels_from)
    tmp_fits = owned_temporary(path)
    tmp_side = owned_temporary(side, tag=_provenance_tag(frame.provenance.id))
    try:
        hdul = _build_hdulist(frame, side.name, compress=compress, reference=reference)
        with open(tmp_fits, "wb") as handle:
            hdul.writeto(handle, output_verify="silentfix")
        write_sidecar(tmp_side, frame.provenance, fits_name=path.name, frame_type=frame.frame_type)
        with target_lock(path):
            _publish_pair(tmp_fits, tmp_side, path, side, overwrite)
    except FileExistsError:
        raise FrameWriteError(f"{path}: already exists (pass overwrite=True to replace it)") from None
    except FrameWriteError:
        raise
    except Exception as exc:
        raise FrameWriteError(f"{path}: write failed ({_one_line(exc)})") from exc
    finally:
        safe_unlink(tmp_fits)
        safe_unlink(tmp_side)
    if frame.source_path is None:
        frame.source_path = str(path)
    return path


def remove_stale_temporaries(directory, *, recursive=True):
    """
    Remove the temporaries that writers killed in ``directory`` left behind.

    Only files astrophot names as its own temporaries whose process is dead
    on this host are touched (a running writer's are kept), plus asdf's
    ``.asdf_tmp*`` and the ``.name.*.tmp`` of older astrophot versions when
    more than an hour old. A sidecar whose FITS file was published just
    before the crash completes its pair instead of being removed. `write_frame`
    does this for its own target; a night run calls it when it starts.

    Parameters
    ----------
    directory : path-like
    recursive : bool, optional
        Also in every sub-directory (default True).

    Returns
    -------
    list of `pathlib.Path`
        The files removed.
    """
    directory = Path(directory)
    folders = [directory]
    if recursive:
        folders += sorted(p for p in directory.rglob("*") if p.is_dir())
    removed = []
    for folder in folders:
        removed += clean_stale_temporaries(folder, recover=_recover_any)
        removed += _remove_legacy(folder)
    return removed


def _recover_any(tmp, target, tag):
    if tag is None or not target.name.endswith(".asdf"):
        return False
    for suffix in (".fits", ".fit", ".fts"):
        fits_path = target.with_name(target.name[: -len(".asdf")] + suffix)
        if fits_path.exists():
            with target_lock(fits_path):
                return _recoverer(fits_path, target)(tmp, target, tag)
    return False


def _remove_legacy(folder):
    import time

    removed = []
    now = time.time()
    for entry in folder.glob(".*.tmp"):
        try:
            if entry.is_file() and now - entry.stat().st_mtime > 3600:
                safe_unlink(entry)
                removed.append(entry)
        except OSError:
            continue
    return removed
