# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Headers as MaxIm DL writes them on iTelescope.net, and the telescope facts behind them."""

import datetime
import logging
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle
from astropy.io import fits
from astropy.time import Time, TimeDelta

log = logging.getLogger(__name__)

__all__ = ["TelescopeInfo", "make_header", "telescope_info"]

#: Telescopes whose raw frames carry EGAIN (seen in real T05 files).
EGAIN_TELESCOPES = frozenset({"T05"})
#: Telescopes whose raw user frames lack OBJCTRA/OBJCTDEC (seen in a real T31 file).
NO_POINTING_TELESCOPES = frozenset({"T31"})
#: MaxIm DL writes empty strings as eight blanks.
_BLANK = " " * 8

# Used only when astrophot.instruments.itelescope is unavailable.
_FALLBACK = {
    "T20": dict(
        focal_length=530.0,
        aperture=106.0,
        pixel_size=9.0,
        shape=(2672, 4008),
        gain=1.4,
        read_noise=12.0,
        set_temperature=-15.0,
        camera="FLI ProLine PL11002M",
        latitude=32.90330833,
        longitude=-105.5287,
        timezone="America/Denver",
    ),
}


@dataclass(frozen=True)
class TelescopeInfo:
    """The telescope facts a simulation needs (None where unknown)."""

    id: str
    focal_length: float  # mm
    aperture: float  # mm
    pixel_size: float  # micron, unbinned
    shape: tuple  # unbinned (ny, nx)
    gain: float
    read_noise: float
    set_temperature: float
    camera: str
    latitude: float  # deg
    longitude: float  # deg, east positive
    timezone: str

    def scale(self, binning):
        """Pixel scale (arcsec/pixel) at a binning, or None."""
        if self.focal_length is None or self.pixel_size is None:
            return None
        return 206.264806 * self.pixel_size * binning / self.focal_length


def _value(q, unit):
    if q is None:
        return None
    if unit is u.deg_C:
        return float(q.to_value(u.deg_C, equivalencies=u.temperature()))
    return float(q.to_value(unit))


def telescope_info(telescope):
    """Facts for ``telescope`` ('T20' ...) from astrophot.instruments, else a small built-in table."""
    name = str(telescope).strip()
    try:
        from astrophot.instruments.itelescope import get_telescope
    except ImportError:  # pragma: no cover - instruments are part of the package
        get_telescope = None
    if get_telescope is not None:
        t = get_telescope(name)
        site = t.site
        return TelescopeInfo(
            id=t.id,
            focal_length=_value(t.focal_length, u.mm),
            aperture=_value(t.aperture, u.mm),
            pixel_size=_value(t.pixel_size, u.um),
            shape=tuple(t.shape) if t.shape is not None else None,
            gain=_value(t.gain, u.electron / u.adu),
            read_noise=_value(t.read_noise, u.electron),
            set_temperature=_value(t.set_temperature, u.deg_C),
            camera=t.camera,
            latitude=None if site is None else float(site.latitude.deg),
            longitude=None if site is None else float(site.longitude.deg),
            timezone=None if site is None else site.timezone,
        )
    key = name.upper().replace("ITELESCOPE", "").strip()
    if key not in _FALLBACK:  # pragma: no cover
        raise ValueError(f"unknown telescope {telescope!r}")
    return TelescopeInfo(id=key, **_FALLBACK[key])


def sexagesimal(value, *, hours=False, sign=False, decimals=0):
    """'-31 16 24' style strings as MaxIm DL writes them."""
    angle = Angle(value, u.hourangle if hours else u.deg)
    return angle.to_string(
        unit=u.hourangle if hours else u.deg, sep=" ", precision=decimals, pad=True, alwayssign=sign
    )


def local_time(utc, info):
    """The telescope computer's local clock time (naive datetime) for a UTC `Time`."""
    dt = utc.to_datetime(timezone=datetime.UTC)
    if info.timezone:
        try:
            from zoneinfo import ZoneInfo

            return dt.astimezone(ZoneInfo(info.timezone)).replace(tzinfo=None)
        except Exception:
            log.debug("no time zone data for %s; local time from the longitude", info.timezone)
    hours = round((info.longitude or 0.0) / 15.0)
    return (dt + datetime.timedelta(hours=hours)).replace(tzinfo=None)


def date_obs_string(time):
    """'YYYY-MM-DDThh:mm:ss.ss' (UT), as MaxIm DL 6 writes DATE-OBS."""
    return time.utc.strftime("%Y-%m-%dT%H:%M:%S.%f")[:22]


def make_header(
    kind,
    *,
    info,
    binning,
    exposure,
    date_obs,
    ccd_temperature,
    filter=None,
    target_coord=None,
    egain=None,
    pointing_keywords=None,
    data=None,
    pedestal=0,
):
    """
    A raw-frame header in the MaxIm DL 6 dialect of iTelescope.net.

    Parameters
    ----------
    kind : {'light', 'bias', 'dark', 'flat'}
    info : TelescopeInfo
    binning : int
    exposure : float
        Seconds.
    date_obs : `~astropy.time.Time`
    ccd_temperature : float
    filter : str, optional
        Written for lights and flats.
    target_coord : `~astropy.coordinates.SkyCoord`, optional
        Requested pointing, written as OBJCTRA/OBJCTDEC for lights when
        ``pointing_keywords``.
    egain : float, optional
        Written as EGAIN when given.
    pointing_keywords : bool, optional
        Default: True except for telescopes whose raw frames lack them (T31).
    data : numpy.ndarray, optional
        For the display hints CBLACK/CWHITE.
    pedestal : int
        PEDESTAL value.

    Returns
    -------
    `~astropy.io.fits.Header`
    """
    imagetyp = {"light": "Light Frame", "bias": "Bias Frame", "dark": "Dark Frame", "flat": "Flat Field"}[
        kind
    ]
    h = fits.Header()
    h.append(("DATE-OBS", date_obs_string(date_obs), "YYYY-MM-DDThh:mm:ss observation, UT"))
    h.append(("EXPTIME", float(exposure), "Exposure time in seconds"))
    h.append(("EXPOSURE", float(exposure), "Exposure time in seconds"))
    h.append(("SET-TEMP", float(info.set_temperature), "CCD temperature setpoint in C"))
    h.append(("CCD-TEMP", float(ccd_temperature), "CCD temperature at start of exposure in C"))
    if info.pixel_size is not None:
        h.append(("XPIXSZ", float(info.pixel_size * binning), "Pixel Width in microns (after binning)"))
        h.append(("YPIXSZ", float(info.pixel_size * binning), "Pixel Height in microns (after binning)"))
    h.append(("XBINNING", int(binning), "Binning factor in width"))
    h.append(("YBINNING", int(binning), "Binning factor in height"))
    h.append(("XORGSUBF", 0, "Subframe X position in binned pixels"))
    h.append(("YORGSUBF", 0, "Subframe Y position in binned pixels"))
    h.append(("READOUTM", "Normal", "Readout mode of image"))
    if egain is not None:
        h.append(("EGAIN", float(egain), "Electronic gain in e-/ADU"))
    if kind in ("light", "flat") and filter is not None:
        h.append(("FILTER", str(filter), "Filter used when taking image"))
    h.append(("IMAGETYP", imagetyp, "Type of image"))
    if kind == "light" and target_coord is not None:
        if pointing_keywords is None:
            pointing_keywords = info.id not in NO_POINTING_TELESCOPES
        if pointing_keywords:
            h.append(
                (
                    "OBJCTRA",
                    sexagesimal(target_coord.ra.hour, hours=True, decimals=2),
                    "Nominal Right Ascension",
                )
            )
            h.append(
                ("OBJCTDEC", sexagesimal(target_coord.dec.deg, sign=True, decimals=1), "Nominal Declination")
            )
    if info.focal_length is not None:
        h.append(("FOCALLEN", float(info.focal_length), "Focal length of telescope in mm"))
    if info.aperture is not None:
        h.append(("APTDIA", float(info.aperture), "Aperture diameter of telescope in mm"))
        h.append(("APTAREA", float(np.pi * (info.aperture / 2.0) ** 2), "Aperture area of telescope in mm^2"))
    h.append(("SBSTDVER", "SBFITSEXT Version 1.0", "Version of SBFITSEXT standard in effect"))
    h.append(("SWCREATE", "MaxIm DL Version 6.27 211016 1NURE", "Name of software"))
    if info.latitude is not None:
        h.append(("SITELAT", sexagesimal(info.latitude, sign=False), "Latitude of the imaging location"))
        h.append(("SITELONG", sexagesimal(info.longitude, sign=False), "Longitude of the imaging location"))
    h.append(("JD", float(date_obs.utc.jd), "Julian Date at time of exposure"))
    h.append(("OBJECT", _BLANK, ""))
    h.append(("TELESCOP", _BLANK, "telescope used to acquire this image"))
    h.append(("INSTRUME", (info.camera or "FLI").split()[0], "instrument or camera used"))
    h.append(("OBSERVER", _BLANK, ""))
    h.append(("NOTES", _BLANK, ""))
    h.append(("FLIPSTAT", _BLANK, ""))
    h.append(("CSTRETCH", "Medium", "Initial display stretch mode"))
    if data is not None:
        lo, hi = np.percentile(
            data[:: max(1, data.shape[0] // 64), :: max(1, data.shape[1] // 64)], [10, 99.5]
        )
        h.append(("CBLACK", int(lo), "Initial display black level in ADUs"))
        h.append(("CWHITE", int(max(hi, lo + 1)), "Initial display white level in ADUs"))
    h.append(("PEDESTAL", int(pedestal), "Correction to add for zero-based ADU"))
    h.append(("SWOWNER", "iTelescope.net", "Licensed owner of software"))
    return h


def gmst_hours(time):
    """Greenwich mean sidereal time (hours) from the UTC Julian date (no IERS tables needed)."""
    d = time.utc.jd - 2451545.0
    return (18.697374558 + 24.06570982441908 * d) % 24.0


def hour_angle(time, ra_deg, longitude_deg):
    """Hour angle (hours, -12..12) of ``ra`` at ``time`` for a site longitude (east positive)."""
    lst = (gmst_hours(time) + longitude_deg / 15.0) % 24.0
    return (lst - ra_deg / 15.0 + 12.0) % 24.0 - 12.0


def night_start(date, ra_deg, info):
    """A UTC start in the local evening of ``date`` with the target about 1 h east of the meridian."""
    day = Time(f"{date}T00:00:00", scale="utc")
    lon = info.longitude or 0.0
    # local 20:00 to 04:00 expressed in UT
    local_offset = round(lon / 15.0) / 24.0
    offsets = (20.0 / 24.0 - local_offset) + np.arange(0, 8.0 * 60.0, 5.0) / (24.0 * 60.0)
    times = day + TimeDelta(offsets, format="jd")
    ha = np.array([hour_angle(t, ra_deg, lon) for t in times])
    best = int(np.argmin(np.abs(ha + 1.0)))
    return Time(np.round(times[best].jd * 86400.0) / 86400.0, format="jd", scale="utc")
