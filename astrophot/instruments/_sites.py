# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Observatory sites: the iTelescope.net sites and sites read from FITS headers."""

import logging
import math
import re
from dataclasses import dataclass, field
from types import MappingProxyType

import astropy.units as u
from astropy.coordinates import Angle, EarthLocation

from astrophot.exceptions import AstrophotError, MissingKeywordError

__all__ = [
    "SITES",
    "Site",
    "UnknownSiteError",
    "get_site",
    "parse_sexagesimal",
    "site_from_header",
]

log = logging.getLogger(__name__)

_SPEC = "astrophot reference spec of the original pipeline, section 4 (site table)"


class UnknownSiteError(AstrophotError, ValueError):
    """A site name or MPC code that is not in `SITES`."""


@dataclass(frozen=True)
class Site:
    """
    An observatory site (WGS84 geodetic position).

    Parameters
    ----------
    name : str
        Observatory name, as written to ``OBSERVAT`` (``"iTelescope New Mexico"``).
    mpc_code : str or None
        Minor Planet Center observatory code (``"H06"``), or `None`.
    latitude, longitude : `~astropy.coordinates.Angle`
        Geodetic latitude (north positive) and longitude (east positive).
    elevation : `~astropy.units.Quantity` or None
        Height above sea level in metres, or `None` where unknown.
    timezone : str or None
        IANA time-zone name (``"America/Denver"``), or `None` where unknown.
    description : str
        Where the site is, in words.
    aliases : tuple of str
        Other names accepted by `get_site`.
    sources : mapping of str to str
        Where each fact comes from (field name to a short note).

    Notes
    -----
    Sites compare equal when all their fields do; the hash uses the name,
    the MPC code and the coordinates.
    """

    name: str
    mpc_code: str | None
    latitude: Angle
    longitude: Angle
    elevation: u.Quantity | None = None
    timezone: str | None = None
    description: str = field(default="", repr=False)
    aliases: tuple = field(default=(), repr=False)
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False)

    def __post_init__(self):
        lat = Angle(self.latitude, unit=u.deg)
        lon = Angle(self.longitude, unit=u.deg).wrap_at(180 * u.deg)
        if not (lat.isscalar and lon.isscalar):
            raise ValueError(f"site {self.name!r}: latitude and longitude must be scalars")
        if abs(lat.deg) > 90:
            raise ValueError(f"site {self.name!r}: latitude {lat.deg} deg is outside -90..90")
        object.__setattr__(self, "latitude", lat)
        object.__setattr__(self, "longitude", lon)
        if self.elevation is not None:
            object.__setattr__(self, "elevation", u.Quantity(self.elevation, u.m))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    def __hash__(self):
        return hash((self.name, self.mpc_code, float(self.latitude.deg), float(self.longitude.deg)))

    @property
    def earth_location(self):
        """
        `~astropy.coordinates.EarthLocation` of the site, built from the numbers.

        No network is used. Where the elevation is unknown the height is 0 m
        (which changes airmass and refraction only negligibly).
        """
        height = self.elevation if self.elevation is not None else 0 * u.m
        return EarthLocation.from_geodetic(lon=self.longitude, lat=self.latitude, height=height)


_SEXAGESIMAL = re.compile(
    r"^\s*(?P<sign>[+-]?)\s*(?P<d>\d+(?:\.\d*)?)"
    r"(?:[\s:]+(?P<m>\d+(?:\.\d*)?))?"
    r"(?:[\s:]+(?P<s>\d+(?:\.\d*)?))?"
    r"\s*(?P<hemi>[NnSsEeWw]?)\s*$"
)


def parse_sexagesimal(text):
    """
    Read a sexagesimal (or decimal) angle string as MaxIm DL writes it.

    The sign applies to the whole angle, so ``'-00 30 00'`` is -0.5 degrees
    (a detail that a naive ``int(d) + m/60`` gets wrong).

    Parameters
    ----------
    text : str or float
        ``'+32 54 11.91'``, ``'-31:16:24'``, ``'149 04 11'``, ``'32.9'``,
        ``'31 16 24 S'`` (a trailing S or W negates), or a number.

    Returns
    -------
    float
        The angle in degrees.

    Raises
    ------
    ValueError
        If the text is not an angle, or minutes/seconds are 60 or more.

    Examples
    --------
    >>> parse_sexagesimal('-00 30 00')
    -0.5
    >>> round(parse_sexagesimal('+32 54 11.91'), 6)
    32.903308
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"angle {text!r} is not finite")
        return value
    match = _SEXAGESIMAL.match(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a sexagesimal angle like '+32 54 11.91'")
    degrees = float(match["d"])
    minutes = float(match["m"] or 0)
    seconds = float(match["s"] or 0)
    if minutes >= 60 or seconds >= 60:
        raise ValueError(f"{text!r}: minutes and seconds must be below 60")
    if (match["m"] is not None and "." in match["d"]) or (match["s"] is not None and "." in match["m"]):
        raise ValueError(f"{text!r}: only the last field may have a fraction")
    value = degrees + minutes / 60 + seconds / 3600
    negative = match["sign"] == "-"
    if match["hemi"] and match["hemi"].upper() in "SW":
        if negative:
            raise ValueError(f"{text!r}: both a minus sign and an S/W hemisphere")
        negative = True
    return -value if negative else value


def _site(name, code, lat, lon, elevation_m, timezone, description, aliases):
    return Site(
        name=name,
        mpc_code=code,
        latitude=Angle(parse_sexagesimal(lat), unit=u.deg),
        longitude=Angle(parse_sexagesimal(lon), unit=u.deg),
        elevation=elevation_m * u.m,
        timezone=timezone,
        description=description,
        aliases=aliases,
        sources={
            "name": _SPEC,
            "mpc_code": _SPEC,
            "latitude": _SPEC + " (WGS84)",
            "longitude": _SPEC + " (WGS84, east positive)",
            "elevation": _SPEC,
            "timezone": "IANA zone for the UTC offset and DST rule given in " + _SPEC,
        },
    )


#: The iTelescope.net sites, keyed by MPC code.
SITES = MappingProxyType(
    {
        site.mpc_code: site
        for site in (
            _site(
                "iTelescope New Mexico",
                "H06",
                "+32 54 11.91",
                "-105 31 43.32",
                2222,
                "America/Denver",
                "Mayhill, New Mexico, USA",
                ("New Mexico", "Mayhill", "NM"),
            ),
            _site(
                "iTelescope Siding Spring",
                "Q62",
                "-31 16 24",
                "+149 04 11",
                1118,
                "Australia/Sydney",
                "Siding Spring Observatory, New South Wales, Australia",
                ("Siding Spring", "SSO", "Siding Spring Observatory", "Australia"),
            ),
            _site(
                "iTelescope Astrocamp",
                "I89",
                "+38 09 56",
                "-2 19 37",
                1607,
                "Europe/Madrid",
                "AstroCamp, Nerpio, Spain",
                ("Astrocamp", "Nerpio", "Spain"),
            ),
            _site(
                "iTelescope Sierra Remote",
                "U69",
                "+37 04 13",
                "-119 24 47",
                1403,
                "America/Los_Angeles",
                "Sierra Remote Observatories, Auberry, California, USA",
                ("Sierra Remote", "Sierra Remote Observatories", "SRO", "Auberry"),
            ),
        )
    }
)


def _normalise(text):
    return re.sub(r"[\s_\-.]+", " ", str(text)).strip().casefold()


def get_site(name_or_code):
    """
    Look up an iTelescope site by MPC code or name.

    Parameters
    ----------
    name_or_code : str
        An MPC code (``'Q62'``), the site name (``'iTelescope Siding Spring'``)
        or an alias (``'Siding Spring'``, ``'SSO'``, ``'Nerpio'``); case and
        the ``iTelescope`` prefix do not matter.

    Returns
    -------
    Site
        The entry of `SITES`.

    Raises
    ------
    UnknownSiteError
        If nothing matches; the message lists the known sites.

    See Also
    --------
    site_from_header : A site from a FITS header (any observatory).
    get_telescope : A telescope, which knows its site.

    Examples
    --------
    >>> get_site('q62').name
    'iTelescope Siding Spring'
    >>> get_site('Nerpio').mpc_code
    'I89'
    """
    key = _normalise(name_or_code)
    stripped = re.sub(r"^itelescope( net)? ", "", key)
    for site in SITES.values():
        names = {site.mpc_code, site.name, *site.aliases}
        normalised = {_normalise(n) for n in names}
        if key in normalised or stripped in normalised:
            return site
    known = ", ".join(f"{s.mpc_code} ({s.name})" for s in SITES.values())
    raise UnknownSiteError(f"unknown site {name_or_code!r}; known sites: {known}")


def _header_value(header, keys):
    for key in keys:
        if key in header:
            value = header[key]
            if isinstance(value, str) and not value.strip():
                continue
            return key, value
    return None, None


def site_from_header(header, *, source=None):
    """
    The observing site written in a FITS header.

    Reads the sexagesimal strings ``SITELAT``/``SITELONG`` that MaxIm DL
    writes (falling back to the decimal ``LAT-OBS`` and ``LONG-OBS`` or
    ``LON-OBS``), and the elevation from ``SITEELEV`` or ``ALT-OBS``.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or mapping
        The header.
    source : str, optional
        The file the header came from, used in error messages.

    Returns
    -------
    Site
        Named after ``OBSERVAT`` or ``SITENAME`` when present (else
        ``'header site'``), with ``mpc_code=None``, ``timezone=None`` and
        ``elevation=None`` when the header has none.

    Raises
    ------
    MissingKeywordError
        If the latitude or the longitude is absent.
    ValueError
        If a value cannot be read as an angle or elevation.

    See Also
    --------
    get_site : The iTelescope sites by name or MPC code.

    Notes
    -----
    Longitudes are taken as east positive, as in every iTelescope header
    seen (``SITELONG = '149 04 11'`` at Siding Spring). The header's site may
    differ slightly from the `SITES` table (a T33 header gives
    ``SITELONG = '149 03 52'`` and ``ALT-OBS = 1165`` for Siding Spring).

    Examples
    --------
    >>> from astropy.io import fits
    >>> header = fits.Header({'SITELAT': '-31 16 24', 'SITELONG': '149 04 11'})
    >>> site = site_from_header(header)
    >>> print(site.latitude.to_string(sep=' '), site.longitude.to_string(sep=' '))
    -31 16 24 149 04 11
    """
    where = source or "<header>"
    values = {}
    for what, keys in (
        ("latitude", ("SITELAT", "LAT-OBS", "OBSGEO-B")),
        ("longitude", ("SITELONG", "LONG-OBS", "LON-OBS", "OBSGEO-L")),
    ):
        key, value = _header_value(header, keys)
        if key is None:
            raise MissingKeywordError(keys[0], keys[1:], source=where, purpose=f"the site {what}")
        try:
            values[what] = parse_sexagesimal(value)
        except ValueError as exc:
            raise ValueError(f"{where}: {key} = {value!r} is not an angle ({exc})") from None
    elevation = None
    key, value = _header_value(header, ("SITEELEV", "ALT-OBS", "OBSGEO-H"))
    if key is not None:
        try:
            elevation = float(value) * u.m
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {key} = {value!r} is not an elevation in metres") from None
    _, name = _header_value(header, ("OBSERVAT", "SITENAME"))
    name = str(name).strip() if name is not None else "header site"
    if abs(values["latitude"]) > 90:
        raise ValueError(f"{where}: latitude {values['latitude']} deg is outside -90..90")
    return Site(
        name=name,
        mpc_code=None,
        latitude=Angle(values["latitude"], unit=u.deg),
        longitude=Angle(values["longitude"], unit=u.deg),
        elevation=elevation,
        timezone=None,
        description=f"read from the FITS header of {where}",
        sources={"latitude": where, "longitude": where, "elevation": where},
    )
