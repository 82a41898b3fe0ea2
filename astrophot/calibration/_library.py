# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The calibration library: index master frames and pick those that fit a light frame."""

import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.time import Time

from astrophot.calibration._checks import temperature_value
from astrophot.calibration._sources import FITS_NAME
from astrophot.exceptions import AstrophotUserWarning, CalibrationError, FrameReadError
from astrophot.frames import RawFrame

__all__ = ["CalibrationEntry", "CalibrationLibrary", "CalibrationSelection"]

log = logging.getLogger(__name__)

KINDS = ("bias", "dark", "flat", "badpix")
_FRAME_TYPES = {"bias": "MasterBias", "dark": "MasterDark", "flat": "MasterFlat", "badpix": "BadPixelMap"}
_STAMPS = {v: k for k, v in _FRAME_TYPES.items()}
_TELESCOPE_DIR = re.compile(r"^[Tt](\d{1,3})$")
_DATE_DIR = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")
_TINY = np.zeros((1, 1), dtype=np.uint8)


def _telescope_id(text):
    if text is None:
        return None
    match = _TELESCOPE_DIR.match(str(text).strip())
    if match:
        return f"T{int(match.group(1)):02d}"
    text = str(text).strip()
    return text.upper() or None


def _kind_of_imagetyp(value):
    from astrophot.io import classify_imagetyp

    kind = classify_imagetyp(value)
    if kind is None:
        return None
    if kind == "badpix":
        return "badpix"
    if kind.startswith("master "):
        return kind.split()[1]
    return None


@dataclass(frozen=True)
class CalibrationEntry:
    """
    One master frame of a calibration library.

    Attributes
    ----------
    path : `~pathlib.Path`
    kind : {'bias', 'dark', 'flat', 'badpix'}
    telescope : str or None
        ``'T20'``, from the directory, the file name or TELESCOP.
    binning : tuple of int or None
    shape : tuple of int or None
        ``(rows, columns)``.
    set_temperature : float or None
        Celsius.
    exposure : float or None
        Seconds.
    filter : str or None
        Flats.
    date : `~astropy.time.Time` or None
        From the date directory (``YYYY-MM`` or ``YYYY-MM-DD``) or DATE-OBS.
    bias_subtracted : bool or None
        Darks: from CALSTAT (``'BM'`` True, ``'M'`` False).
    origin : {'itelescope', 'astrophot'}
    """

    path: Path
    kind: str
    telescope: str | None = None
    binning: tuple | None = None
    shape: tuple | None = None
    set_temperature: float | None = None
    exposure: float | None = None
    filter: str | None = None
    date: Time | None = field(default=None, compare=False)
    bias_subtracted: bool | None = None
    origin: str = "itelescope"

    def read(self):
        """
        Read the master with `~astrophot.read_frame`.

        Returns
        -------
        `~astrophot.frames.FrameBase` subclass
            A `~astrophot.MasterBias`, `~astrophot.MasterDark`,
            `~astrophot.MasterFlat` or `~astrophot.BadPixelMap`.
        """
        from astrophot.io import read_frame

        return read_frame(self.path, frame_type=_FRAME_TYPES[self.kind])

    def describe(self):
        """
        A one-line description.

        Returns
        -------
        str
            The file name and the facts that matter for matching.
        """
        facts = []
        if self.telescope:
            facts.append(self.telescope)
        if self.binning:
            facts.append(f"bin {self.binning[0]}x{self.binning[1]}")
        if self.shape:
            facts.append(f"{self.shape[1]}x{self.shape[0]}")
        if self.set_temperature is not None:
            facts.append(f"SET-TEMP {self.set_temperature:g} C")
        if self.kind == "dark" and self.exposure is not None:
            facts.append(f"{self.exposure:g} s")
        if self.filter:
            facts.append(f"filter {self.filter}")
        if self.date is not None:
            facts.append(self.date.isot[:10])
        if self.kind == "dark" and self.bias_subtracted is not None:
            facts.append("bias removed" if self.bias_subtracted else "bias included")
        return f"{self.path.name} ({', '.join(facts)})"


@dataclass(frozen=True)
class CalibrationSelection:
    """
    The masters chosen for one light frame.

    Attributes
    ----------
    raw : str
        The light frame's name.
    bias, dark, flat, bad_pixels : `CalibrationEntry` or None
    reasons : dict
        Kind (``'bias'``, ``'dark'``, ``'flat'``, ``'bad_pixels'``) to why
        that master was picked (or why none was).
    warnings : tuple of str
        Stale masters, darks shorter than the light, ...
    """

    raw: str
    bias: CalibrationEntry | None = None
    dark: CalibrationEntry | None = None
    flat: CalibrationEntry | None = None
    bad_pixels: CalibrationEntry | None = None
    reasons: dict = field(default_factory=dict)
    warnings: tuple = ()

    def paths(self):
        """
        The chosen files.

        Returns
        -------
        dict
            Kind to `~pathlib.Path` (None where nothing was chosen).
        """
        return {
            k: (getattr(self, k).path if getattr(self, k) else None)
            for k in ("bias", "dark", "flat", "bad_pixels")
        }

    def read(self):
        """
        Read the chosen masters.

        Returns
        -------
        dict
            Kind to frame, read with `~astrophot.read_frame` (None where
            nothing was chosen).
        """
        return {
            k: (getattr(self, k).read() if getattr(self, k) else None)
            for k in ("bias", "dark", "flat", "bad_pixels")
        }

    def __str__(self):
        lines = [f"{self.raw}:"]
        for kind in ("bias", "dark", "flat", "bad_pixels"):
            entry = getattr(self, kind)
            chosen = entry.path if entry is not None else "none"
            lines.append(f"  {kind}: {chosen}")
            if kind in self.reasons:
                lines.append(f"    {self.reasons[kind]}")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def _header_of(path):
    """Header of the first image HDU (primary cards inherited), without reading the data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            for hdu in hdul:
                header = hdu.header
                naxis = header.get("ZNAXIS", header.get("NAXIS", 0))
                if hdu.is_image and naxis and hdu.name not in ("UNCERT", "MASK", "DQ"):
                    merged = header.copy()
                    if hdu is not hdul[0]:
                        for card in hdul[0].header.cards:
                            if (
                                card.keyword
                                and card.keyword not in merged
                                and card.keyword not in ("COMMENT", "HISTORY")
                            ):
                                merged.append(card)
                    if "ZNAXIS1" in merged:
                        merged["NAXIS1"], merged["NAXIS2"] = merged["ZNAXIS1"], merged["ZNAXIS2"]
                    return merged
    raise FrameReadError(f"{path}: no image data in any HDU")


def _info(header, path):
    return RawFrame(_TINY, unit="adu", meta=header, source_path=str(path))


def _date_from_path(path, root):
    for part in reversed(Path(path).relative_to(root).parts[:-1]):
        match = _DATE_DIR.match(part)
        if match:
            year, month, day = match.group(1), match.group(2), match.group(3) or "01"
            try:
                return Time(f"{year}-{month}-{day}T00:00:00", scale="utc")
            except ValueError:
                return None
    return None


def _telescope_from_path(path, root):
    for part in Path(path).relative_to(root).parts[:-1]:
        if _TELESCOPE_DIR.match(part):
            return _telescope_id(part)
    return None


class CalibrationLibrary:
    """
    An index of master calibration frames, and the choice of masters for a light.

    Parameters
    ----------
    root : path-like
        Searched recursively. iTelescope's layout
        ``<root>/<Tnn>/Masters/{Bias,Darks,Flats}/<date>/Master_*.fit`` is
        read from the names (telescope and date from the directories); any
        other FITS file is indexed when its header makes it a master: the
        astrophot stamp (masters written by `~astrophot.write_frame`) or an
        IMAGETYP such as ``'Master Dark'`` or ``'Bad Pixel Map'``.
    max_age : `~astropy.units.Quantity` or float, optional
        Masters further than this from the light's date (days when a
        number; default 365 d) are still chosen but with a warning.
    temperature_tolerance : float or `~astropy.units.Quantity`, optional
        Degrees between the light's and the master's SET-TEMP (default 1).

    Raises
    ------
    astrophot.exceptions.CalibrationError
        ``root`` is not a directory.

    See Also
    --------
    make_master_bias, make_master_dark, make_master_flat, find_bad_pixels

    Examples
    --------
    >>> from astrophot.calibration import CalibrationLibrary
    >>> from astrophot.datasets import simulate_night
    >>> night = simulate_night(getfixture("tmp_path"), n_lights=1, shape=(64, 96), seed=1)
    >>> library = CalibrationLibrary(night.library)
    >>> choice = library.select(night.lights[0])
    >>> choice.dark.path.name
    'Master_Dark_2_96x64_Bin2x2_Temp-15C_ExpTime900s.fit'
    >>> choice.reasons["dark"].split("; ")[1:]
    ['the nearest longer exposure', '5 days from the light']
    """

    def __init__(self, root, *, max_age=365 * u.day, temperature_tolerance=1.0):
        self.root = Path(root)
        if not self.root.is_dir():
            raise CalibrationError(f"{self.root}: the calibration library root is not a directory")
        self.max_age = max_age if isinstance(max_age, u.Quantity) else float(max_age) * u.day
        self.temperature_tolerance = temperature_value(temperature_tolerance)
        self.skipped = []
        self.entries = tuple(self._scan())
        log.info("%s: %d masters indexed", self.root, len(self.entries))

    def __len__(self):
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __repr__(self):
        counts = ", ".join(f"{sum(e.kind == k for e in self.entries)} {k}" for k in KINDS)
        return f"<CalibrationLibrary {self.root}: {counts}>"

    # ------------------------------------------------------------------
    def _scan(self):
        files = sorted(p for p in self.root.rglob("*") if p.is_file() and FITS_NAME.search(p.name))
        for path in files:
            try:
                entry = self._entry(path)
            except Exception as exc:
                self.skipped.append((path, str(exc)))
                log.warning("%s: not indexed, unreadable (%s)", path, exc)
                continue
            if entry is not None:
                yield entry

    def _entry(self, path):
        record = None
        if path.name.lower().startswith("master_"):
            try:
                from astrophot.instruments.itelescope import parse_filename

                record = parse_filename(path.name)
            except Exception as exc:
                log.debug("%s: name not parsed (%s); using the header", path, exc)
        header = _header_of(path)
        stamp = header.get("APFRAME")
        kind = _STAMPS.get(stamp)
        origin = "astrophot" if kind else "itelescope"
        if kind is None and record is not None and record.master_kind:
            kind = record.master_kind.lower()
        if kind is None:
            kind = _kind_of_imagetyp(header.get("IMAGETYP"))
        if kind is None:
            return None
        info = _info(header, path)
        shape = None
        if "NAXIS1" in header and "NAXIS2" in header:
            shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
        elif record is not None:
            shape = record.shape
        binning = (
            info.binning if ("XBINNING" in header or record is None) else (record.binning, record.binning)
        )
        set_temp = info.set_temperature
        set_temp = set_temp.to_value(u.deg_C) if set_temp is not None else None
        if set_temp is None and record is not None and record.set_temperature is not None:
            set_temp = record.set_temperature.to_value(u.deg_C)
        exposure = info.exposure_time
        exposure = exposure.to_value(u.s) if exposure is not None else None
        if exposure is None and record is not None and record.exposure is not None:
            exposure = record.exposure.to_value(u.s)
        filter_name = header.get("FILTER")
        filter_name = str(filter_name).strip() or None if filter_name is not None else None
        if filter_name is None and record is not None:
            filter_name = record.filter
        date = _date_from_path(path, self.root) or info.date_obs
        telescope = _telescope_from_path(path, self.root) or _telescope_id(info.telescope)
        calstat = str(header.get("CALSTAT", "")).strip().upper()
        bias_subtracted = ("B" in calstat) if calstat else None
        return CalibrationEntry(
            path=path,
            kind=kind,
            telescope=telescope,
            binning=binning,
            shape=shape,
            set_temperature=set_temp,
            exposure=exposure,
            filter=filter_name if kind == "flat" else None,
            date=date,
            bias_subtracted=bias_subtracted if kind == "dark" else None,
            origin=origin,
        )

    # ------------------------------------------------------------------
    def summary(self):
        """
        The index as text.

        Returns
        -------
        str
            One master a line, by kind.
        """
        lines = [repr(self)]
        for kind in KINDS:
            for entry in (e for e in self.entries if e.kind == kind):
                lines.append(f"  {kind:6s} {entry.describe()}")
        lines += [f"  unreadable {path} ({why})" for path, why in self.skipped]
        return "\n".join(lines)

    def _unreadable_note(self):
        """What could not be indexed, for a 'no master fits' message (empty if nothing)."""
        if not self.skipped:
            return ""
        first = "; ".join(f"{path.name} ({why})" for path, why in self.skipped[:3])
        more = f"; and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
        return f"; {len(self.skipped)} file(s) in it could not be read: {first}{more}"

    @staticmethod
    def _light(raw):
        if isinstance(raw, (str, Path)):
            header = _header_of(raw)
            info = _info(header, raw)
            shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
            return info, shape, str(raw)
        shape = tuple(np.shape(raw.data))
        name = getattr(raw, "name", None) or "<in-memory frame>"
        return raw, shape, name

    def select(self, raw, *, require=("bias", "dark", "flat"), max_age=None):
        """
        Choose the bias, dark, flat and bad-pixel map for a light frame.

        Parameters
        ----------
        raw : `~astrophot.RawFrame` or path-like
            The light frame (only its header is read).
        require : sequence of str, optional
            Kinds that must be found (default bias, dark and flat); others
            are None when missing.
        max_age : `~astropy.units.Quantity` or float, optional
            Overrides the library's ``max_age``.

        Returns
        -------
        CalibrationSelection
            Each pick with its reason; warnings for stale masters and darks
            shorter than the light.

        Raises
        ------
        astrophot.exceptions.CalibrationError
            A required kind has no suitable master: the message says what was
            looked for and what the library holds.

        Warns
        -----
        astrophot.exceptions.AstrophotUserWarning
            The selection's warnings.

        Notes
        -----
        A master fits when its telescope, binning and frame size equal the
        light's and its SET-TEMP is within the tolerance (facts a master
        lacks do not exclude it); flats must also have the light's filter
        (case-insensitive). Darks of the light's exposure are preferred,
        then the nearest longer, then the nearest shorter; among equals the
        nearest date wins. The bad-pixel map is the ``Master_Badpix_`` file
        named like the chosen dark when there is one.
        """
        info, shape, name = self._light(raw)
        max_age = self.max_age if max_age is None else max_age
        max_age = max_age if isinstance(max_age, u.Quantity) else float(max_age) * u.day
        for kind in require:
            if kind not in ("bias", "dark", "flat", "bad_pixels"):
                raise ValueError(f"require: unknown kind {kind!r}")
        light = {
            "telescope": _telescope_id(info.telescope),
            "binning": info.binning,
            "shape": shape,
            "set_temperature": None
            if info.set_temperature is None
            else info.set_temperature.to_value(u.deg_C),
            "filter": info.filter,
            "exposure": None if info.exposure_time is None else info.exposure_time.to_value(u.s),
            "date": info.date_obs,
        }
        chosen, reasons, notes = {}, {}, []
        for kind in ("bias", "dark", "flat"):
            entry, reason = self._choose(kind, light, name, required=kind in require)
            chosen[kind] = entry
            reasons[kind] = reason
            if entry is not None:
                notes.extend(self._age_note(entry, light, max_age))
                if kind == "dark" and light["exposure"] is not None and entry.exposure is not None:
                    if entry.exposure < light["exposure"] - 1e-3:
                        notes.append(
                            f"the dark {entry.path.name} ({entry.exposure:g} s) is shorter than the light "
                            f"({light['exposure']:g} s): its noise and hot pixels are scaled up"
                        )
        badpix, reason = self._bad_pixels(chosen.get("dark"), light)
        if badpix is None and "bad_pixels" in require:
            raise CalibrationError(f"{name}: no bad-pixel map in {self.root}: {reason}")
        reasons["bad_pixels"] = reason
        for note in notes:
            warnings.warn(f"{name}: {note}", AstrophotUserWarning, stacklevel=2)
        return CalibrationSelection(
            raw=name,
            bias=chosen["bias"],
            dark=chosen["dark"],
            flat=chosen["flat"],
            bad_pixels=badpix,
            reasons=reasons,
            warnings=tuple(notes),
        )

    def _age_note(self, entry, light, max_age):
        if entry.date is None or light["date"] is None:
            return []
        age = abs((light["date"] - entry.date).to(u.day))
        if age > max_age:
            return [f"{entry.path.name} is {age.value:.0f} days from the light (more than {max_age:g})"]
        return []

    def _fits(self, entry, light):
        """None when the entry fits the light, else the first reason it does not."""
        if light["telescope"] and entry.telescope and entry.telescope != light["telescope"]:
            return "telescope"
        if entry.binning and light["binning"] and tuple(entry.binning) != tuple(light["binning"]):
            return "binning"
        if entry.shape and tuple(entry.shape) != tuple(light["shape"]):
            return "frame size"
        if (
            entry.set_temperature is not None
            and light["set_temperature"] is not None
            and abs(entry.set_temperature - light["set_temperature"]) > self.temperature_tolerance
        ):
            return "set temperature"
        if entry.kind == "flat":
            if not light["filter"]:
                return "filter (the light has no FILTER)"
            if not entry.filter or entry.filter.lower() != light["filter"].lower():
                return "filter"
        return None

    def _looked_for(self, kind, light):
        parts = []
        if light["telescope"]:
            parts.append(f"telescope {light['telescope']}")
        b = light["binning"]
        parts.append(f"binning {b[0]}x{b[1]}")
        parts.append(f"{light['shape'][1]}x{light['shape'][0]} pixels")
        if light["set_temperature"] is not None:
            parts.append(f"SET-TEMP {light['set_temperature']:g} C (within {self.temperature_tolerance:g})")
        if kind == "flat":
            parts.append(f"filter {light['filter']!r}")
        if kind == "dark" and light["exposure"] is not None:
            parts.append(f"exposure {light['exposure']:g} s or the nearest")
        return ", ".join(parts)

    def _choose(self, kind, light, name, *, required):
        candidates = [e for e in self.entries if e.kind == kind]
        misfits = {}
        fitting = []
        for entry in candidates:
            why = self._fits(entry, light)
            if why is None:
                fitting.append(entry)
            else:
                misfits.setdefault(why, []).append(entry)
        if not fitting:
            have = "; ".join(e.describe() for e in candidates[:12]) or "none"
            if len(candidates) > 12:
                have += f"; and {len(candidates) - 12} more"
            rejected = ", ".join(f"{len(v)} for their {k}" for k, v in misfits.items())
            message = (
                f"no master {kind} fits: looked for {self._looked_for(kind, light)}; the library at "
                f"{self.root} holds {len(candidates)} {kind} master(s)"
                + (f" ({rejected} differ)" if rejected else "")
                + f": {have}"
                + self._unreadable_note()
            )
            if required:
                raise CalibrationError(f"{name}: {message}")
            return None, message

        def distance(entry):
            if entry.date is None or light["date"] is None:
                return np.inf
            return abs((light["date"] - entry.date).to_value(u.day))

        def key(entry):
            if kind != "dark" or light["exposure"] is None or entry.exposure is None:
                return (0, 0.0, distance(entry), str(entry.path))
            delta = entry.exposure - light["exposure"]
            rank = 0 if abs(delta) <= 1e-3 else (1 if delta > 0 else 2)
            return (rank, abs(delta), distance(entry), str(entry.path))

        best = min(fitting, key=key)
        reason = f"{best.describe()}: fits {self._looked_for(kind, light)}"
        if kind == "dark" and light["exposure"] is not None and best.exposure is not None:
            rank = key(best)[0]
            reason += [
                "; same exposure",
                "; the nearest longer exposure",
                "; the nearest exposure (shorter)",
            ][rank]
        d = distance(best)
        if np.isfinite(d):
            reason += f"; {d:.0f} days from the light"
        if len(fitting) > 1:
            reason += f" (best of {len(fitting)})"
        return best, reason

    def _bad_pixels(self, dark, light):
        maps = [e for e in self.entries if e.kind == "badpix"]
        if dark is not None:
            twin = dark.path.name.replace("Master_Dark_", "Master_Badpix_", 1)
            for entry in maps:
                if (
                    entry.path.parent == dark.path.parent
                    and entry.path.name.split(".")[0] == twin.split(".")[0]
                ):
                    return entry, f"{entry.path.name}: the bad-pixel map made from the chosen dark"
        fitting = [e for e in maps if self._fits(e, light) is None]
        if not fitting:
            return None, f"no bad-pixel map fits ({len(maps)} in the library)"

        def distance(entry):
            if entry.date is None or light["date"] is None:
                return np.inf
            return abs((light["date"] - entry.date).to_value(u.day))

        best = min(fitting, key=lambda e: (distance(e), str(e.path)))
        return best, f"{best.describe()}: fits the light's telescope, binning and size"
