# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""iTelescope.net file names: parse them, make them, derive output names."""

import datetime
import math
import os
import pathlib
import re
from dataclasses import dataclass

import astropy.units as u

from astrophot.exceptions import AstrophotError

__all__ = [
    "FilenameError",
    "ITelescopeFilename",
    "make_master_filename",
    "make_raw_filename",
    "output_name",
    "parse_filename",
]

#: The kinds of file a name can describe.
KINDS = ("raw", "calibrated", "premium", "master")

#: The master calibration kinds.
MASTER_KINDS = ("Bias", "Dark", "Flat", "Badpix")

RAW_PATTERN = (
    "<raw|calibrated|cal>-<Tnn>-<user>-<target>-<yyyymmdd>-<hhmmss>-<filter>-BIN<b>-<E|W>-<exptime>-<seq>"
)
PREMIUM_PATTERN = "Calibrated-iTelescope-<Target_Words>-<exp>s-<filter>-<n>"
MASTER_PATTERN = (
    "Master_<Bias|Dark|Badpix>_<b>_<NX>x<NY>_Bin<b>x<b>_Temp<T>C_ExpTime<t><ms|s> or "
    "Master_Flat_<F>_<b>_<F>_<NX>x<NY>_Bin<b>x<b>_Temp<T>C_ExpTime<t><ms|s>"
)
_SUFFIX = "ending .fit, .fits or .fts (optionally + .gz, .bz2 or .fz)"

_FITS_EXTENSIONS = (".fit", ".fits", ".fts")
_COMPRESSIONS = (".gz", ".bz2", ".fz")
_RAW_PREFIXES = ("raw", "calibrated", "cal")
_PREMIUM_PREFIX = "Calibrated-iTelescope-"

_TELESCOPE = re.compile(r"^[Tt](\d{1,3})$")
_NUMBER = r"\d+(?:\.\d+)?"
_EXPOSURE = re.compile(rf"^({_NUMBER})$")
_PREMIUM_EXPOSURE = re.compile(rf"^({_NUMBER})s$")
_TOKEN = re.compile(r"^[A-Za-z0-9_+.]+$")
_PANEL = re.compile(r"^(?P<target>.+?)_x(?P<x>\d+)_y(?P<y>\d+)$")
_MASTER_TAIL = (
    r"_(?P<nx>\d+)x(?P<ny>\d+)_Bin(?P<bx>\d+)x(?P<by>\d+)"
    rf"_Temp(?P<temp>[+-]?{_NUMBER})C_ExpTime(?P<exp>{_NUMBER})(?P<unit>ms|s)$"
)
_MASTER = re.compile(r"^Master_(?P<kind>Bias|Dark|Badpix)_(?P<b>\d+)" + _MASTER_TAIL)
_MASTER_FLAT = re.compile(
    r"^Master_Flat_(?P<f1>[A-Za-z0-9+]+)_(?P<b>\d+)_(?P<f2>[A-Za-z0-9+]+)" + _MASTER_TAIL
)
_DATE = re.compile(r"\d{8}")
_TIME = re.compile(r"\d{6}")
_DIGITS = re.compile(r"\d+")
_BIN = re.compile(r"BIN(\d+)", re.IGNORECASE)
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class FilenameError(AstrophotError, ValueError):
    """
    A file name that does not follow an iTelescope pattern.

    Parameters
    ----------
    name : str
        The file name.
    problem : str
        What is wrong.
    expected : str, optional
        The pattern that was expected.
    """

    def __init__(self, name, problem, expected=None):
        self.name = name
        self.problem = problem
        self.expected = expected
        super().__init__(name, problem, expected)

    def __str__(self):
        msg = f"{self.name!r}: {self.problem}"
        if self.expected:
            msg += f"; expected {self.expected}"
        return msg


@dataclass(frozen=True)
class ITelescopeFilename:
    """
    The fields of an iTelescope file name (see `parse_filename`).

    Fields a kind of name does not carry are `None`.

    Parameters
    ----------
    name : str
        The file name parsed (directories removed).
    kind : str
        ``'raw'``, ``'calibrated'``, ``'premium'`` or ``'master'``.
    prefix : str
        The prefix as written: ``'raw'``, ``'calibrated'`` (iTelescope's
        calibration), ``'cal'`` (astrophot's output), ``'Calibrated-iTelescope'``
        (Premium sets) or ``'Master'``. A ``cal-`` prefix in front of a Premium
        or master name gives ``'cal'`` with the inner name's kind.
    telescope : str or None
        ``'T20'`` (upper case, two digits at least).
    user : str or None
        The iTelescope user name.
    target : str or None
        Target with underscores turned into spaces (``'NGC 6888'``), the mosaic
        panel suffix removed.
    mosaic_panel : tuple of int or None
        ``(x, y)`` of a Telescopius mosaic panel (``CygnusLoop_x1_y2`` -> ``(1, 2)``).
    filter : str or None
        Filter name as written (``'Ha'``, ``'Red'``, ``'Lum'``).
    binning : int or None
        Binning factor.
    pier_side : str or None
        ``'E'`` or ``'W'`` (German-equatorial pier side at the exposure).
    exposure : `~astropy.units.Quantity` or None
        Exposure time in seconds.
    sequence : int or None
        Sequence number (raw names) or set index (Premium names).
    local_time : `datetime.datetime` or None
        The ``yyyymmdd-hhmmss`` stamp of a raw name as a naive datetime. It is
        the **local** clock time of the telescope's control computer, **not
        UT**: it can differ from ``DATE-OBS`` by many hours. Never use it as the
        observation time; use the header's ``DATE-OBS``.
    master_kind : str or None
        ``'Bias'``, ``'Dark'``, ``'Flat'`` or ``'Badpix'`` for master files.
    shape : tuple of int or None
        Master frame shape in numpy order ``(NY, NX)`` (the name writes ``NXxNY``).
    set_temperature : `~astropy.units.Quantity` or None
        Master CCD set-point (Celsius).
    extension : str
        ``'.fit'``, ``'.fits'`` or ``'.fts'`` as written.
    compression : str or None
        ``'.gz'``, ``'.bz2'`` or ``'.fz'``, or `None`.
    """

    name: str
    kind: str
    prefix: str
    telescope: str | None = None
    user: str | None = None
    target: str | None = None
    mosaic_panel: tuple | None = None
    filter: str | None = None
    binning: int | None = None
    pier_side: str | None = None
    exposure: u.Quantity | None = None
    sequence: int | None = None
    local_time: datetime.datetime | None = None
    master_kind: str | None = None
    shape: tuple | None = None
    set_temperature: u.Quantity | None = None
    extension: str = ".fit"
    compression: str | None = None

    def __hash__(self):
        return hash(self.name)

    @property
    def is_astrophot_output(self):
        """True for names astrophot derived (``cal-`` prefix)."""
        return self.prefix == "cal"


def _basename(name):
    text = os.fspath(name)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    return re.split(r"[\\/]", text)[-1]


def _split_suffixes(name):
    """(stem, extension, compression) or FilenameError."""
    lower = name.lower()
    compression = None
    for comp in _COMPRESSIONS:
        if lower.endswith(comp):
            compression = name[-len(comp) :]
            name, lower = name[: -len(comp)], lower[: -len(comp)]
            break
    for ext in _FITS_EXTENSIONS:
        if lower.endswith(ext):
            stem = name[: -len(ext)]
            if not stem:
                break
            return stem, name[-len(ext) :], compression
    return None


def _number(text):
    value = float(text)
    return int(value) if value.is_integer() else value


def _target_and_panel(token):
    match = _PANEL.match(token)
    panel = None
    if match is not None:
        token = match["target"]
        panel = (int(match["x"]), int(match["y"]))
    target = token.replace("_", " ").strip()
    return target, panel


def parse_filename(name):
    """
    Read the fields of an iTelescope.net file name.

    Parameters
    ----------
    name : str or path-like
        A file name or path; directories are ignored. Recognised forms (each
        ending ``.fit``, ``.fits`` or ``.fts``, optionally compressed
        ``.gz``, ``.bz2`` or ``.fz``):

        - raw frames ``raw-<Tnn>-<user>-<target>-<yyyymmdd>-<hhmmss>-<filter>-BIN<b>-<E|W>-<exptime>-<seq>``;
        - the same with ``calibrated-`` (iTelescope's calibration) or ``cal-``
          (astrophot's output, see `output_name`);
        - a short ``calibrated-<Tnn>-<target>-<filter>-<exp>s`` form (as in
          the header samples of the shared test data: no user, time, binning,
          pier side or sequence);
        - Premium sets ``Calibrated-iTelescope-<Target_Words>-<exp>s-<filter>-<n>``;
        - masters ``Master_<Bias|Dark|Badpix>_<b>_<NX>x<NY>_Bin<b>x<b>_Temp<T>C_ExpTime<t><ms|s>``
          and ``Master_Flat_<F>_<b>_<F>_<NX>x<NY>_Bin<b>x<b>_Temp<T>C_ExpTime<t>s``;
        - ``cal-`` followed by a Premium or master name.

    Returns
    -------
    ITelescopeFilename
        The fields; see its attributes. ``local_time`` is local clock time,
        never UT.

    Raises
    ------
    FilenameError
        If the name follows none of the forms; the message names the file,
        the problem and the pattern expected.

    See Also
    --------
    make_raw_filename : The inverse for raw frames.
    output_name : The name astrophot gives a processed frame.

    Notes
    -----
    Targets may contain hyphens (``HE_2300-0630``): the fields after the
    target are counted from the right. A ``_x<i>_y<j>`` target suffix is a
    Telescopius mosaic panel and goes to ``mosaic_panel``.

    Examples
    --------
    >>> f = parse_filename('raw-T05-davestrickland-NGC_6888-20200716-231744-Ha-BIN1-E-180-001.fit')
    >>> f.telescope, f.target, f.filter, f.binning, f.pier_side, f.exposure, f.sequence
    ('T05', 'NGC 6888', 'Ha', 1, 'E', <Quantity 180. s>, 1)
    >>> parse_filename('Master_Dark_2_2004x1336_Bin2x2_Temp-15C_ExpTime900s.fit').shape
    (1336, 2004)
    """
    base = _basename(name)
    split = _split_suffixes(base)
    if split is None:
        raise FilenameError(base, "not a FITS file name", _SUFFIX)
    stem, extension, compression = split
    common = {"name": base, "extension": extension, "compression": compression}
    if stem.startswith("Master_"):
        return _parse_master(stem, common)
    if stem.startswith(_PREMIUM_PREFIX):
        return _parse_premium(stem, common)
    prefix, sep, rest = stem.partition("-")
    if not sep or prefix not in _RAW_PREFIXES:
        raise FilenameError(
            base,
            f"unknown prefix {prefix!r}",
            f"{RAW_PATTERN}, or {PREMIUM_PATTERN}, or {MASTER_PATTERN}",
        )
    if prefix == "cal" and (rest.startswith("Master_") or rest.startswith(_PREMIUM_PREFIX)):
        inner = parse_filename(rest + extension + (compression or ""))
        return _replace(inner, name=base, prefix="cal")
    return _parse_raw(prefix, rest, common)


def _replace(record, **changes):
    values = {f: getattr(record, f) for f in record.__dataclass_fields__}
    values.update(changes)
    return ITelescopeFilename(**values)


def _parse_telescope(base, token, expected):
    match = _TELESCOPE.match(token)
    if match is None:
        raise FilenameError(base, f"{token!r} is not a telescope id like 'T20'", expected)
    return f"T{int(match[1]):02d}"


def _parse_raw(prefix, rest, common):
    base = common["name"]
    fields = rest.split("-")
    kind = "raw" if prefix == "raw" else "calibrated"
    if len(fields) < 10:
        if prefix in ("calibrated", "cal") and len(fields) >= 4 and _PREMIUM_EXPOSURE.match(fields[-1]):
            return _parse_short(prefix, fields, common)
        raise FilenameError(
            base,
            f"has {len(fields) + 1} '-'-separated fields, at least 11 are needed",
            RAW_PATTERN,
        )
    telescope = _parse_telescope(base, fields[0], RAW_PATTERN)
    user = fields[1]
    date, time, filter_, bin_, pier, exposure, sequence = fields[-7:]
    target_token = "-".join(fields[2:-7])
    if not user or not _TOKEN.match(user):
        raise FilenameError(base, f"user {user!r} is empty or has odd characters", RAW_PATTERN)
    if not target_token.strip("_"):
        raise FilenameError(base, "the target is empty", RAW_PATTERN)
    if not (_DATE.fullmatch(date) and _TIME.fullmatch(time)):
        raise FilenameError(base, f"{date}-{time} is not a <yyyymmdd>-<hhmmss> time stamp", RAW_PATTERN)
    try:
        local_time = datetime.datetime(
            int(date[:4]), int(date[4:6]), int(date[6:]), int(time[:2]), int(time[2:4]), int(time[4:])
        )
    except ValueError:
        raise FilenameError(base, f"{date}-{time} is not a valid date and time", RAW_PATTERN) from None
    if not _TOKEN.match(filter_):
        raise FilenameError(base, f"filter {filter_!r} is empty or has odd characters", RAW_PATTERN)
    match = _BIN.fullmatch(bin_)
    if match is None or int(match[1]) < 1:
        raise FilenameError(base, f"{bin_!r} is not a binning like 'BIN1'", RAW_PATTERN)
    if pier not in ("E", "W"):
        raise FilenameError(base, f"pier side {pier!r} is not 'E' or 'W'", RAW_PATTERN)
    if not _EXPOSURE.match(exposure):
        raise FilenameError(base, f"exposure {exposure!r} is not a number of seconds", RAW_PATTERN)
    if not _DIGITS.fullmatch(sequence):
        raise FilenameError(base, f"sequence {sequence!r} is not a number", RAW_PATTERN)
    target, panel = _target_and_panel(target_token)
    return ITelescopeFilename(
        kind=kind,
        prefix=prefix,
        telescope=telescope,
        user=user,
        target=target,
        mosaic_panel=panel,
        filter=filter_,
        binning=int(match[1]),
        pier_side=pier,
        exposure=u.Quantity(float(exposure), u.s),
        sequence=int(sequence),
        local_time=local_time,
        **common,
    )


def _parse_short(prefix, fields, common):
    base = common["name"]
    expected = "calibrated-<Tnn>-<target>-<filter>-<exp>s"
    telescope = _parse_telescope(base, fields[0], expected)
    filter_ = fields[-2]
    target_token = "-".join(fields[1:-2])
    if not target_token.strip("_") or not _TOKEN.match(filter_):
        raise FilenameError(base, "empty target or odd filter", expected)
    target, panel = _target_and_panel(target_token)
    return ITelescopeFilename(
        kind="calibrated",
        prefix=prefix,
        telescope=telescope,
        target=target,
        mosaic_panel=panel,
        filter=filter_,
        exposure=float(_PREMIUM_EXPOSURE.match(fields[-1])[1]) * u.s,
        **common,
    )


def _parse_premium(stem, common):
    base = common["name"]
    fields = stem[len(_PREMIUM_PREFIX) :].split("-")
    if len(fields) < 4:
        problem = f"has too few '-'-separated fields after {_PREMIUM_PREFIX!r}"
        raise FilenameError(base, problem, PREMIUM_PATTERN)
    exposure, filter_, index = fields[-3:]
    target_token = "-".join(fields[:-3])
    match = _PREMIUM_EXPOSURE.match(exposure)
    if match is None:
        raise FilenameError(base, f"exposure {exposure!r} is not like '900s'", PREMIUM_PATTERN)
    if not _TOKEN.match(filter_):
        raise FilenameError(base, f"filter {filter_!r} is empty or has odd characters", PREMIUM_PATTERN)
    if not _DIGITS.fullmatch(index):
        raise FilenameError(base, f"set index {index!r} is not a number", PREMIUM_PATTERN)
    if not target_token.strip("_"):
        raise FilenameError(base, "the target is empty", PREMIUM_PATTERN)
    target, panel = _target_and_panel(target_token)
    return ITelescopeFilename(
        kind="premium",
        prefix="Calibrated-iTelescope",
        target=target,
        mosaic_panel=panel,
        filter=filter_,
        exposure=float(match[1]) * u.s,
        sequence=int(index),
        **common,
    )


def _parse_master(stem, common):
    base = common["name"]
    match = _MASTER.match(stem)
    filter_ = None
    if match is not None:
        kind = match["kind"]
    else:
        match = _MASTER_FLAT.match(stem)
        if match is None:
            raise FilenameError(base, "is not a master calibration file name", MASTER_PATTERN)
        kind = "Flat"
        if match["f1"] != match["f2"]:
            raise FilenameError(
                base, f"the two filter fields differ ({match['f1']!r} and {match['f2']!r})", MASTER_PATTERN
            )
        filter_ = match["f1"]
    binning = int(match["b"])
    bx, by = int(match["bx"]), int(match["by"])
    if not (bx == by == binning) or binning < 1:
        raise FilenameError(
            base, f"binning {binning} and Bin{bx}x{by} disagree (or are not positive)", MASTER_PATTERN
        )
    nx, ny = int(match["nx"]), int(match["ny"])
    if nx < 1 or ny < 1:
        raise FilenameError(base, f"frame size {nx}x{ny} is not positive", MASTER_PATTERN)
    exposure = float(match["exp"]) * (u.ms if match["unit"] == "ms" else u.s)
    return ITelescopeFilename(
        kind="master",
        prefix="Master",
        master_kind=kind,
        filter=filter_,
        binning=binning,
        shape=(ny, nx),
        set_temperature=float(match["temp"]) * u.deg_C,
        exposure=exposure.to(u.s),
        **common,
    )


# --- making names ---------------------------------------------------------------


def _check_token(what, value, *, allow_hyphen=False):
    text = str(value)
    bad = set(" /\\") | (set() if allow_hyphen else {"-"})
    if not text or any(c in bad for c in text) or not text.isprintable():
        forbidden = "spaces, slashes" + ("" if allow_hyphen else " or '-'")
        raise FilenameError(text, f"{what} must be non-empty, without {forbidden}")
    return text


def _seconds(what, value):
    if isinstance(value, u.Quantity):
        try:
            seconds = value.to_value(u.s)
        except u.UnitConversionError:
            raise FilenameError(str(value), f"{what} must be a time") from None
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise FilenameError(str(value), f"{what} must be a finite, non-negative time")
    return seconds


def _format_number(value):
    value = round(float(value), 6)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _format_extension(extension):
    split = _split_suffixes("x" + extension)
    if split is None or split[0] != "x":
        raise FilenameError(extension, "is not a FITS extension", _SUFFIX)
    return extension


def _telescope_id(telescope):
    tel = getattr(telescope, "id", telescope)
    match = _TELESCOPE.match(str(tel).strip())
    if match is None:
        match = re.match(r"^(?:itelescope(?:\.net)?[\s_\-]*)?t?[\s_\-]*(\d{1,3})$", str(tel).strip(), re.I)
    if match is None:
        raise FilenameError(str(tel), "is not a telescope id like 'T20'")
    return f"T{int(match[1]):02d}"


def make_raw_filename(
    *,
    telescope,
    user,
    target,
    local_time,
    filter,
    binning,
    pier_side,
    exposure,
    sequence,
    mosaic_panel=None,
    prefix="raw",
    extension=".fit",
):
    """
    The iTelescope name of a raw frame (the inverse of `parse_filename`).

    Parameters
    ----------
    telescope : str or Telescope
        ``'T20'`` (``'t20'``, ``'iTelescope T20'`` and a `Telescope` work too).
    user : str
        The iTelescope user name (no spaces or ``-``).
    target : str
        Target name; spaces become underscores.
    local_time : `datetime.datetime`
        Local clock time of the telescope computer (not UT), written as
        ``yyyymmdd-hhmmss``.
    filter : str
        Filter name (no spaces or ``-``).
    binning : int
        Binning factor.
    pier_side : {'E', 'W'}
        Pier side (``'East'`` and ``'West'`` are accepted).
    exposure : `~astropy.units.Quantity` or float
        Exposure time (seconds if a number); written as an integer when whole.
    sequence : int
        Sequence number, written with three digits at least.
    mosaic_panel : tuple of int, optional
        ``(x, y)`` mosaic panel, appended to the target as ``_x<x>_y<y>``.
    prefix : {'raw', 'calibrated', 'cal'}, optional
        The prefix; ``'raw'`` by default.
    extension : str, optional
        ``'.fit'`` (iTelescope's) by default; ``'.fits'``, ``'.fts'`` and
        compressed forms such as ``'.fit.gz'`` are accepted.

    Returns
    -------
    str
        The file name (no directory).

    Raises
    ------
    FilenameError
        If a field cannot be written into a name that parses back.

    See Also
    --------
    parse_filename : Read the fields back.
    make_master_filename : Names of master calibration files.

    Examples
    --------
    >>> import datetime
    >>> make_raw_filename(telescope='T20', user='jdoe', target='Cygnus Loop',
    ...                   mosaic_panel=(1, 2),
    ...                   local_time=datetime.datetime(2021, 7, 8, 22, 6, 4),
    ...                   filter='Ha', binning=1, pier_side='E', exposure=300,
    ...                   sequence=1)
    'raw-T20-jdoe-Cygnus_Loop_x1_y2-20210708-220604-Ha-BIN1-E-300-001.fit'
    """
    if prefix not in _RAW_PREFIXES:
        raise FilenameError(str(prefix), f"prefix must be one of {', '.join(_RAW_PREFIXES)}")
    tel = _telescope_id(telescope)
    user = _check_token("user", user)
    if not _TOKEN.match(user):
        raise FilenameError(user, "user may hold letters, digits, '_', '+' and '.' only")
    target_text = str(target).strip()
    if not target_text or "/" in target_text or "\\" in target_text or not target_text.isprintable():
        raise FilenameError(str(target), "target must be non-empty, without slashes")
    target_token = re.sub(r"\s", "_", target_text)
    if mosaic_panel is not None:
        x, y = (int(v) for v in mosaic_panel)
        if x < 0 or y < 0:
            raise FilenameError(str(mosaic_panel), "mosaic panel indices must not be negative")
        target_token += f"_x{x}_y{y}"
    elif _PANEL.match(target_token):
        raise FilenameError(target_text, "target ends like a mosaic panel; pass mosaic_panel instead")
    if not isinstance(local_time, datetime.datetime):
        raise FilenameError(str(local_time), "local_time must be a datetime.datetime")
    filter_ = _check_token("filter", filter)
    if not _TOKEN.match(filter_):
        raise FilenameError(filter_, "filter may hold letters, digits, '_', '+' and '.' only")
    if isinstance(binning, bool) or int(binning) != binning or binning < 1:
        raise FilenameError(str(binning), "binning must be a positive integer")
    side = str(pier_side).strip().upper()
    side = {"EAST": "E", "WEST": "W"}.get(side, side)
    if side not in ("E", "W"):
        raise FilenameError(str(pier_side), "pier side must be 'E' or 'W'")
    seconds = _seconds("exposure", exposure)
    if isinstance(sequence, bool) or int(sequence) != sequence or sequence < 0:
        raise FilenameError(str(sequence), "sequence must be a non-negative integer")
    stamp = local_time.strftime("%Y%m%d-%H%M%S")
    return (
        f"{prefix}-{tel}-{user}-{target_token}-{stamp}-{filter_}-BIN{int(binning)}-{side}-"
        f"{_format_number(seconds)}-{int(sequence):03d}{_format_extension(extension)}"
    )


def make_master_filename(kind, *, binning, shape, set_temperature, exposure, filter=None, extension=".fit"):
    """
    The iTelescope calibration-library name of a master frame.

    Parameters
    ----------
    kind : {'Bias', 'Dark', 'Flat', 'Badpix'}
        Master kind (case-insensitive).
    binning : int
        Binning factor.
    shape : tuple of int
        Frame shape in numpy order ``(NY, NX)``; the name writes ``NXxNY``.
    set_temperature : `~astropy.units.Quantity` or float
        CCD set-point (Celsius if a number).
    exposure : `~astropy.units.Quantity` or float
        Exposure time (seconds if a number); below one second it is written
        in milliseconds (``0ms`` for a bias).
    filter : str, optional
        Filter; required for flats, refused for the others.
    extension : str, optional
        ``'.fit'`` by default.

    Returns
    -------
    str
        The file name, as in the iTelescope calibration library.

    Raises
    ------
    FilenameError
        If the fields do not make a valid name.

    See Also
    --------
    parse_filename : Read the fields back.
    make_raw_filename : Names of raw frames.

    Examples
    --------
    >>> make_master_filename('Dark', binning=2, shape=(1336, 2004), set_temperature=-15, exposure=900)
    'Master_Dark_2_2004x1336_Bin2x2_Temp-15C_ExpTime900s.fit'
    >>> make_master_filename('flat', binning=1, shape=(1472, 2184), set_temperature=-10, exposure=46,
    ...                      filter='Ha')
    'Master_Flat_Ha_1_Ha_2184x1472_Bin1x1_Temp-10C_ExpTime46s.fit'
    """
    kinds = {k.lower(): k for k in MASTER_KINDS}
    if str(kind).lower() not in kinds:
        raise FilenameError(str(kind), f"master kind must be one of {', '.join(MASTER_KINDS)}")
    kind = kinds[str(kind).lower()]
    if isinstance(binning, bool) or int(binning) != binning or binning < 1:
        raise FilenameError(str(binning), "binning must be a positive integer")
    ny, nx = (int(n) for n in shape)
    if nx < 1 or ny < 1:
        raise FilenameError(str(shape), "shape must be positive")
    if isinstance(set_temperature, u.Quantity):
        temp = set_temperature.to_value(u.deg_C, equivalencies=u.temperature())
    else:
        temp = float(set_temperature)
    seconds = _seconds("exposure", exposure)
    if seconds < 1 and round(seconds * 1000, 6).is_integer():
        exp_text = f"{_format_number(seconds * 1000)}ms"
    else:
        exp_text = f"{_format_number(seconds)}s"
    tail = f"{nx}x{ny}_Bin{int(binning)}x{int(binning)}_Temp{_format_number(temp)}C_ExpTime{exp_text}"
    if kind == "Flat":
        if filter is None:
            raise FilenameError("Master_Flat", "a flat needs its filter")
        filt = _check_token("filter", filter)
        if "_" in filt or not _TOKEN.match(filt):
            raise FilenameError(filt, "a master flat filter may hold letters, digits and '+' only")
        name = f"Master_Flat_{filt}_{int(binning)}_{filt}_{tail}"
    else:
        if filter is not None:
            raise FilenameError(f"Master_{kind}", "only flats carry a filter")
        name = f"Master_{kind}_{int(binning)}_{tail}"
    return name + _format_extension(extension)


def output_name(raw_name, prefix="cal", *, extension=".fits"):
    """
    The name astrophot gives the product of an iTelescope file.

    ``raw-T20-...-001.fit`` becomes ``cal-T20-...-001.fits``: the ``raw-``
    (or ``calibrated-``/``cal-``) prefix is swapped, the extension becomes
    ``.fits`` and any compression suffix is dropped. Premium and master
    names keep their whole stem behind the new prefix
    (``cal-Calibrated-iTelescope-...fits``).

    Parameters
    ----------
    raw_name : str or path-like
        The input name or path. Only the last path component changes.
    prefix : str, optional
        New prefix (letters, digits and underscores), ``'cal'`` by default.
    extension : str, optional
        ``'.fits'`` by default.

    Returns
    -------
    str or `pathlib.Path`
        Of the same type as the input (a `~pathlib.Path` for path objects),
        in the same directory.

    Raises
    ------
    FilenameError
        If ``raw_name`` is not an iTelescope name, the prefix is invalid, or
        the result would be the input name itself.

    See Also
    --------
    parse_filename : The names accepted.

    Examples
    --------
    >>> output_name('night/raw-T20-jdoe-M31-20210708-220604-Ha-BIN1-E-300-001.fit')
    'night/cal-T20-jdoe-M31-20210708-220604-Ha-BIN1-E-300-001.fits'
    """
    if not _PREFIX.match(str(prefix)):
        raise FilenameError(str(prefix), "prefix may hold letters, digits and '_' only (no '-')")
    record = parse_filename(raw_name)
    stem = record.name[: len(record.name) - len(record.extension) - len(record.compression or "")]
    if record.kind in ("raw", "calibrated") and record.prefix in _RAW_PREFIXES:
        body = stem.partition("-")[2]
    else:
        body = stem.partition("-")[2] if record.prefix == "cal" else stem
    new = f"{prefix}-{body}{_format_extension(extension)}"
    if new == record.name:
        raise FilenameError(record.name, f"the output name with prefix {prefix!r} is the input name")
    if isinstance(raw_name, os.PathLike):
        return pathlib.Path(raw_name).with_name(new)
    text = os.fspath(raw_name)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    return text[: len(text) - len(record.name)] + new
