# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The common base of every astrophot frame."""

import hashlib
import re

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle, SkyCoord
from astropy.nddata import CCDData
from astropy.time import Time

from astrophot.exceptions import InvalidKeywordError, MissingKeywordError
from astrophot.frames._hdus import from_hdus, to_hdus
from astrophot.frames._unified import register_frame_io
from astrophot.frames._validate import valid_integer, valid_number
from astrophot.frames.dqflags import flags_to_mask
from astrophot.provenance import FrameReference, Provenance

__all__ = ["FrameBase", "data_checksum"]

#: Header keywords (first preferred) read for each frame attribute.
KEYWORD_ALTERNATIVES = {
    "exposure_time": ("EXPOSURE", "EXPTIME"),
    "gain": ("GAIN", "EGAIN"),
    "date_obs": ("DATE-OBS", "DATE"),
    "filter": ("FILTER",),
    "binning": ("XBINNING", "YBINNING"),
    "set_temperature": ("SET-TEMP",),
    "ccd_temperature": ("CCD-TEMP",),
    "telescope": ("TELESCOP",),
    "target": ("OBJECT", "OBSTARGET"),
    "coordinates": ("RA-OBJ/DEC-OBJ", "OBJCTRA/OBJCTDEC", "RA/DEC", "CRVAL1/CRVAL2"),
}

_GAIN_UNIT = u.electron / u.adu


def data_checksum(data):
    """
    Return the sha256 hex digest of an array's values, shape and dtype.

    The digest is independent of byte order and memory layout, so the same
    pixels give the same checksum in memory and after a FITS round trip.

    Parameters
    ----------
    data : array-like

    Returns
    -------
    str
    """
    arr = np.asarray(data)
    canonical = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    h = hashlib.sha256()
    h.update(f"{canonical.dtype.str}{canonical.shape}".encode())
    h.update(canonical.view(np.uint8).reshape(-1).data)
    return h.hexdigest()


def _clean_str(value):
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _to_float(value):
    """Numbers and numeric strings to float; anything else to None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        return None


class FrameBase(CCDData):
    """
    Base class of the typed astrophot frames: a `~astropy.nddata.CCDData`
    that carries its provenance and, optionally, data-quality flags.

    Parameters
    ----------
    data : array-like, `~astropy.nddata.CCDData` or `FrameBase`
        The pixels (or a frame to convert; its provenance and flags are kept
        unless given here).
    *args, **kwargs
        Passed to `~astropy.nddata.CCDData`.
    provenance : `~astrophot.provenance.Provenance`, optional
        Where the frame came from. A new, empty record by default.
    flags : array-like of int, optional
        `~astrophot.DQFlag` bits, same shape as ``data``.
    source_path : str or path-like, optional
        The file the frame was read from (set by `~astrophot.read_frame`).

    Notes
    -----
    Arithmetic methods (``add``, ``subtract``, ``multiply``, ``divide`` and
    the collapse methods) return plain `~astropy.nddata.CCDData`: the type of
    a frame only changes through astrophot transforms, which know what the
    result is.
    """

    #: Default unit when none is given (subclasses override).
    _default_unit = None
    #: Extra keyword-only attributes a subclass carries (copied by ``copy``/slicing).
    _carried = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Frame.read / frame.write go through read_frame / write_frame (sidecar, flags, raw guard)
        register_frame_io(cls)

    def __init__(self, data, *args, provenance=None, flags=None, source_path=None, **kwargs):
        carried = {name: kwargs.pop(name, None) for name in self._carried}
        if isinstance(data, FrameBase):
            for name in self._carried:
                if carried[name] is None:
                    carried[name] = getattr(data, name, None)
            if provenance is None:
                provenance = data.provenance
            if flags is None and data.flags is not None:
                flags = data.flags.copy() if kwargs.get("copy", False) else data.flags
            if source_path is None:
                source_path = data.source_path
        if (
            "unit" not in kwargs
            and self._default_unit is not None
            and not isinstance(data, CCDData)
            and not isinstance(data, u.Quantity)
        ):
            kwargs["unit"] = self._default_unit
        super().__init__(data, *args, **kwargs)
        if self.mask is not None:
            self.mask = np.asarray(self.mask, dtype=bool)
        self.provenance = provenance if provenance is not None else Provenance.new()
        self.flags = flags
        self.source_path = str(source_path) if source_path is not None else None
        #: The frame type the file itself says (APFRAME or a master file name), set by read_frame.
        self.stamped_type = getattr(data, "stamped_type", None) if isinstance(data, FrameBase) else None
        self._checksum = None
        #: The output checksum its sidecar records (set by read_frame; checked by `checksum`).
        self._recorded_checksum = None
        for name, value in carried.items():
            setattr(self, name, value)

    # ------------------------------------------------------------------
    # flags and mask
    @property
    def flags(self):
        """`~astrophot.DQFlag` bits (uint32 array) or None."""
        return self._flags

    @flags.setter
    def flags(self, value):
        if value is None:
            self._flags = None
            return
        value = np.asarray(value)
        if value.shape != self.data.shape:
            raise ValueError(f"flags shape {value.shape} does not match data shape {self.data.shape}")
        self._flags = value.astype(np.uint32, copy=False)

    def mask_from_flags(self, bits=None):
        """Return the boolean mask derived from ``flags`` (all False when none)."""
        if self._flags is None:
            return np.zeros(self.data.shape, dtype=bool)
        return flags_to_mask(self._flags, bits=bits)

    # ------------------------------------------------------------------
    # provenance
    @property
    def provenance(self):
        """The frame's `~astrophot.provenance.Provenance`."""
        return self._provenance

    @provenance.setter
    def provenance(self, value):
        if not isinstance(value, Provenance):
            raise TypeError(f"provenance must be a Provenance, not {type(value).__name__}")
        self._provenance = value

    @property
    def frame_type(self):
        """The frame type name (the class name)."""
        return type(self).__name__

    @property
    def name(self):
        """
        A short description for messages: the file name, or for a frame made in memory
        the type and the file its steps started from (``<CalibratedFrame of raw-...fit>``).
        """
        if self.source_path:
            return self.source_path
        origin = self._origin_path()
        return f"<{self.frame_type} of {origin}>" if origin else f"<in-memory {self.frame_type}>"

    def _origin_path(self):
        """The file of the primary input of the earliest step that names one (None if none)."""
        provenance = self.__dict__.get("_provenance")
        for step in getattr(provenance, "steps", ()) or ():
            for ref in step.inputs:
                if ref.path:
                    return ref.path
        return None

    @property
    def data(self):
        """The pixel array (`~astropy.nddata.CCDData.data`); assigning new pixels drops the cached checksum."""
        return CCDData.data.fget(self)

    @data.setter
    def data(self, value):
        CCDData.data.fset(self, value)
        self._checksum = None  # new pixels: `checksum` takes it again

    def checksum(self):
        """
        The sha256 of the pixel data (see `data_checksum`), cached.

        For a frame read from a file, the first call compares it with the
        output checksum the sidecar recorded and warns when they differ.
        """
        if self._checksum is None:
            self._checksum = data_checksum(self.data)
            recorded, self._recorded_checksum = self._recorded_checksum, None
            if recorded is not None and recorded != self._checksum:
                import warnings

                from astrophot.exceptions import AstrophotUserWarning

                warnings.warn(
                    f"{self.name}: its pixels differ from the checksum its provenance records "
                    f"(sha256 {recorded[:12]}..., now {self._checksum[:12]}...): edited after it was written, "
                    "or changed in memory since it was read; the provenance no longer describes them",
                    AstrophotUserWarning,
                    stacklevel=2,
                )
        return self._checksum

    def reference(self, role=None):
        """A `~astrophot.provenance.FrameReference` to this frame."""
        return FrameReference(
            sha256=self.checksum(),
            frame_type=self.frame_type,
            path=self.source_path,
            role=role,
            provenance_id=self.provenance.id,
        )

    # ------------------------------------------------------------------
    # rules from STYLE.md: copies, arithmetic and slicing
    def copy(self):
        """Return a deep copy that keeps provenance, flags and source."""
        return self.__class__(self, copy=True)

    def _plain(self):
        return CCDData(
            self.data,
            uncertainty=self.uncertainty,
            mask=self.mask,
            wcs=self.wcs,
            meta=self.meta,
            unit=self.unit,
            copy=False,
        )

    def add(self, operand, **kwargs):
        """Add ``operand``; returns a plain `~astropy.nddata.CCDData`."""
        return self._plain().add(operand, **kwargs)

    def subtract(self, operand, **kwargs):
        """Subtract ``operand``; returns a plain `~astropy.nddata.CCDData`."""
        return self._plain().subtract(operand, **kwargs)

    def multiply(self, operand, **kwargs):
        """Multiply by ``operand``; returns a plain `~astropy.nddata.CCDData`."""
        return self._plain().multiply(operand, **kwargs)

    def divide(self, operand, **kwargs):
        """Divide by ``operand``; returns a plain `~astropy.nddata.CCDData`."""
        return self._plain().divide(operand, **kwargs)

    def sum(self, **kwargs):
        """Collapse by sum; returns plain `~astropy.nddata.CCDData`."""
        return self._plain().sum(**kwargs)

    def mean(self, **kwargs):
        """Collapse by mean; returns plain `~astropy.nddata.CCDData`."""
        return self._plain().mean(**kwargs)

    def min(self, **kwargs):
        """Collapse by min; returns plain `~astropy.nddata.CCDData`."""
        return self._plain().min(**kwargs)

    def max(self, **kwargs):
        """Collapse by max; returns plain `~astropy.nddata.CCDData`."""
        return self._plain().max(**kwargs)

    def _slice(self, item):
        kwargs = super()._slice(item)
        kwargs["provenance"] = self.provenance
        kwargs["flags"] = None if self._flags is None else self._flags[item]
        kwargs["source_path"] = self.source_path
        for name in self._carried:
            value = getattr(self, name, None)
            if isinstance(value, np.ndarray) and value.shape == self.data.shape:
                value = value[item]  # per-pixel attributes are sliced with the data
            kwargs[name] = value
        return kwargs

    # ------------------------------------------------------------------
    # hooks for I/O: extra HDUs a frame type writes and reads back
    #: Extra extensions this frame type writes: ``(attribute, kind, EXTNAME, card)``
    #: (see `astrophot.frames._hdus.to_hdus`).
    _extensions = ()

    def _extra_hdus(self):
        """HDUs beyond data/UNCERT/MASK/DQ that this frame type writes."""
        return to_hdus(self, self._extensions)

    @classmethod
    def _from_extra_hdus(cls, hdul):
        """Keyword arguments for ``__init__`` read back from extra HDUs."""
        return from_hdus(hdul, cls._extensions)

    # ------------------------------------------------------------------
    # header attributes
    def _card(self, *keys):
        for key in keys:
            if key in self.header:
                value = self.header[key]
                if _clean_str(value) is not None:
                    return key, value
        return None, None

    def _filename_record(self):
        if not self.source_path:
            return None
        try:
            from astrophot.instruments.itelescope import parse_filename
        except ImportError:  # pragma: no cover - instruments are part of the package
            return None
        try:
            return parse_filename(self.source_path)
        except Exception:
            return None

    def _valid_number(self, attribute, keys):
        """The first valid value of ``keys``; present-but-invalid cards raise when none is valid."""
        invalid = None
        for key in keys:
            value = self.header.get(key)
            if _clean_str(value) is None:
                continue
            try:
                return valid_number(attribute, key, value, self.name)
            except InvalidKeywordError as exc:
                invalid = invalid or exc
        if invalid is not None:
            raise invalid
        return None

    @property
    def exposure_time(self):
        """Exposure time (EXPOSURE or EXPTIME) as a `~astropy.units.Quantity` in s, or None.

        Raises `~astrophot.exceptions.InvalidKeywordError` when the card is
        present but not a finite number from 0 to 1e6 s.
        """
        value = self._valid_number("exposure_time", KEYWORD_ALTERNATIVES["exposure_time"])
        return None if value is None else value * u.s

    @property
    def gain(self):
        """Gain (GAIN or EGAIN, numeric strings accepted) in electron/adu, or None.

        The first card with a positive finite value (at most 1000) wins;
        `~astrophot.exceptions.InvalidKeywordError` when cards are present but
        none is valid.
        """
        value = self._valid_number("gain", KEYWORD_ALTERNATIVES["gain"])
        return None if value is None else value * _GAIN_UNIT

    @property
    def date_obs(self):
        """Start of the exposure as a UTC `~astropy.time.Time`, or None.

        Reads DATE-OBS with or without fractional seconds, a DATE-OBS that
        holds only the date plus TIME-OBS or UT, or the old DATE
        ('dd/mm/yy') plus TIME-OBS/UT.
        """
        header = self.header
        date = _clean_str(header.get("DATE-OBS"))
        tod = _clean_str(header.get("TIME-OBS")) or _clean_str(header.get("UT"))
        if date is None:
            old = _clean_str(header.get("DATE"))
            if old and re.fullmatch(r"\d\d/\d\d/\d\d", old) and tod:
                dd, mm, yy = old.split("/")
                year = int(yy) + (1900 if int(yy) > 50 else 2000)
                date = f"{year:04d}-{mm}-{dd}"
            elif old and re.fullmatch(r"\d{4}-\d\d-\d\d", old) and tod:
                date = old
            else:
                return None
        if "T" not in date and tod:
            date = f"{date}T{tod}"
        try:
            return Time(date, format="isot", scale="utc")
        except ValueError:
            try:
                return Time(date, scale="utc")
            except ValueError:
                key = "DATE-OBS" if _clean_str(header.get("DATE-OBS")) else "DATE"
                raise InvalidKeywordError(
                    key, header.get(key), "not an ISO date and time (yyyy-mm-ddThh:mm:ss)", source=self.name
                ) from None

    @property
    def filter(self):
        """Filter name (FILTER, stripped), or None."""
        value = _clean_str(self.header.get("FILTER"))
        if value is None:
            record = self._filename_record()
            value = getattr(record, "filter", None)
        return value

    @property
    def binning(self):
        """(x, y) binning from XBINNING/YBINNING; (1, 1) when absent (integers 1-16, else an error)."""
        x = self.header.get("XBINNING")
        x = 1 if _clean_str(x) is None else valid_integer("XBINNING", x, self.name)
        y = self.header.get("YBINNING")
        y = x if _clean_str(y) is None else valid_integer("YBINNING", y, self.name)
        return (x, y)

    @property
    def set_temperature(self):
        """CCD set-point (SET-TEMP) in deg_C, or None."""
        value = self._valid_number("set_temperature", ("SET-TEMP",))
        return None if value is None else value * u.deg_C

    @property
    def ccd_temperature(self):
        """Measured CCD temperature (CCD-TEMP) in deg_C, or None."""
        value = self._valid_number("ccd_temperature", ("CCD-TEMP",))
        return None if value is None else value * u.deg_C

    @property
    def telescope(self):
        """Telescope: TELESCOP when not blank, else from an iTelescope file name."""
        value = _clean_str(self.header.get("TELESCOP"))
        if value is None:
            record = self._filename_record()
            value = getattr(record, "telescope", None)
        return value

    @property
    def target(self):
        """Target: OBJECT, OBSTARGET, or an iTelescope file name's target."""
        _, value = self._card(*KEYWORD_ALTERNATIVES["target"])
        value = _clean_str(value)
        if value is None:
            record = self._filename_record()
            value = getattr(record, "target", None)
        return value

    @property
    def coordinates(self):
        """Pointing/target coordinates (ICRS `~astropy.coordinates.SkyCoord`) or None.

        RA-OBJ/DEC-OBJ, OBJCTRA/OBJCTDEC or RA/DEC; sexagesimal strings of RA
        are hours, numbers are degrees.
        """
        for ra_key, dec_key in (("RA-OBJ", "DEC-OBJ"), ("OBJCTRA", "OBJCTDEC"), ("RA", "DEC")):
            ra = self.header.get(ra_key)
            dec = self.header.get(dec_key)
            if _clean_str(ra) is None or _clean_str(dec) is None:
                continue
            try:
                if isinstance(ra, str) and _to_float(ra) is None:
                    ra_angle = Angle(ra.strip(), unit=u.hourangle)
                else:
                    ra_angle = Angle(float(ra), unit=u.deg)
                dec_angle = Angle(str(dec).strip() if isinstance(dec, str) else float(dec), unit=u.deg)
                return SkyCoord(ra_angle, dec_angle, frame="icrs")
            except (ValueError, TypeError):
                continue
        return None

    def require(self, attribute, *, purpose=None):
        """
        Return a header attribute, raising if it is missing.

        Parameters
        ----------
        attribute : str
            One of ``exposure_time``, ``gain``, ``date_obs``, ``filter``,
            ``set_temperature``, ``ccd_temperature``, ``telescope``, ``target``,
            ``coordinates``.
        purpose : str, optional
            What the value is needed for (goes into the message).

        Raises
        ------
        astrophot.exceptions.MissingKeywordError
            Naming the file, the keyword and its accepted alternatives.
        astrophot.exceptions.InvalidKeywordError
            The card is present but unusable (an exposure time must also be
            positive here), naming the file, the card and the value.
        """
        value = getattr(self, attribute)
        if value is None:
            keys = KEYWORD_ALTERNATIVES.get(attribute, (attribute.upper(),))
            raise MissingKeywordError(keys[0], keys[1:], source=self.name, purpose=purpose)
        if attribute == "exposure_time" and value.value <= 0:
            # a stage that needs an exposure time (dark scaling, rates) needs a positive one
            key, card = self._card(*KEYWORD_ALTERNATIVES["exposure_time"])
            why = "must be > 0 s" + (f" for {purpose}" if purpose else "")
            raise InvalidKeywordError(key, card, why, source=self.name)
        return value

    def __repr__(self):
        return f"<{self.frame_type} {self.data.shape} {self.unit} from {self.name}>"


register_frame_io(FrameBase)
