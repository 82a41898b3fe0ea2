# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Observing metadata: target, site, times and sky geometry, computed offline."""

import logging
import re
import threading
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, Angle, EarthLocation, SkyCoord, get_body, get_sun
from astropy.io import fits
from astropy.time import Time
from astropy.utils import iers
from erfa import ErfaWarning

from astrophot.exceptions import AstrophotError, AstrophotUserWarning
from astrophot.frames import FrameBase
from astrophot.provenance import start_step

__all__ = ["NameResolveError", "add_metadata", "load_keywords", "resolve_name"]

log = logging.getLogger(__name__)

#: Coordinates resolved in this session, by normalised name (no disk cache here:
#: stages do no I/O; the command line keeps a file cache).
_RESOLVED = {}


class NameResolveError(AstrophotError, RuntimeError):
    """A target name could not be turned into coordinates (offline, unknown name, time-out)."""


def _normalise_name(name):
    return re.sub(r"[\s_]+", "", str(name)).casefold()


def resolve_name(name, *, timeout=5.0, names=None):
    """
    Coordinates of a named object from a local table or the CDS Sesame resolver.

    Parameters
    ----------
    name : str
        Object name (``'M17'``, ``'NGC 6888'``).
    timeout : float, optional
        Seconds to wait for the network, in total (connection, DNS and reply).
    names : mapping, optional
        Local cache: name to `~astropy.coordinates.SkyCoord` or ``[ra_deg, dec_deg]``.
        Looked up first (case and spacing do not matter).

    Returns
    -------
    `~astropy.coordinates.SkyCoord`
        ICRS coordinates.

    Raises
    ------
    NameResolveError
        The name is unknown, the network is unreachable, or no answer came
        within ``timeout`` seconds.

    Notes
    -----
    The network lookup is `astropy.coordinates.SkyCoord.from_name` (CDS
    Sesame, which asks Simbad, NED and VizieR), run in a daemon thread that is
    abandoned after ``timeout`` seconds, so a silent network cannot hang the
    caller. Successful lookups are kept in memory for the session.

    Examples
    --------
    >>> float(resolve_name("M17", names={"m17": [275.196, -16.172]}).ra.deg)
    275.196
    """
    key = _normalise_name(name)
    for table in (names or {}, _RESOLVED):
        for other, value in table.items():
            if _normalise_name(other) == key:
                return _as_skycoord(value, what=f"cached coordinates of {name!r}")
    result = {}

    def lookup():
        from astropy.utils.data import conf as data_conf

        try:
            with data_conf.set_temp("remote_timeout", float(timeout)):
                result["coord"] = SkyCoord.from_name(name, cache=False)
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=lookup, name=f"astrophot-resolve-{key}", daemon=True)
    thread.start()
    thread.join(float(timeout))
    if thread.is_alive():
        raise NameResolveError(
            f"could not resolve {name!r}: no answer from the name resolver within {timeout:g} s "
            "(offline?); pass coordinates= or put RA/DEC in the header"
        )
    if "error" in result:
        exc = result["error"]
        detail = " ".join(str(exc).split())
        if len(detail) > 200:
            detail = detail[:200] + "..."
        raise NameResolveError(
            f"could not resolve {name!r} (offline, or an unknown name: {detail}); "
            "pass coordinates= or put RA/DEC in the header"
        ) from exc
    coord = result["coord"].icrs
    _RESOLVED[key] = coord
    return coord


def _as_skycoord(value, *, what):
    if isinstance(value, SkyCoord):
        return value.icrs
    try:
        if isinstance(value, str):
            text = value.strip()
            parts = text.replace(",", " ").split()
            if len(parts) == 2 and all(re.fullmatch(r"[+-]?\d+(\.\d*)?", p) for p in parts):
                return SkyCoord(float(parts[0]) * u.deg, float(parts[1]) * u.deg, frame="icrs")
            return SkyCoord(text, unit=(u.hourangle, u.deg), frame="icrs")
        ra, dec = value
        if isinstance(ra, str) and not re.fullmatch(r"\s*[+-]?\d+(\.\d*)?\s*", ra):
            return SkyCoord(Angle(ra, unit=u.hourangle), Angle(dec, unit=u.deg), frame="icrs")
        return SkyCoord(Angle(float(ra), unit=u.deg), Angle(float(dec), unit=u.deg), frame="icrs")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what}: cannot read {value!r} as coordinates ({exc})") from None


def load_keywords(keywords):
    """
    Keyword values from a mapping or a YAML file (the original ``ap_*`` scripts' ``yamlkeyval`` mode).

    Parameters
    ----------
    keywords : mapping, str or path-like
        ``{'TELESCOP': 'T05', 'DATE-OBS': '2023-05-20T03:10:00'}`` or a YAML file
        of such scalar ``key: value`` pairs.

    Returns
    -------
    dict
        Upper-case keyword to value; lists and mappings are left out with a
        warning.

    Raises
    ------
    ValueError
        The file is not a YAML mapping.
    """
    if keywords is None:
        return {}
    if isinstance(keywords, (str, Path)) or hasattr(keywords, "__fspath__"):
        import yaml

        path = Path(keywords)
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ValueError(f"{path}: cannot read keyword file ({exc})") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ValueError(
                f"{path}: a keyword file must be a mapping of KEY: value, got {type(loaded).__name__}"
            )
        source = str(path)
    else:
        loaded = dict(keywords)
        source = "keywords argument"
    values = {}
    for key, value in loaded.items():
        if isinstance(value, (list, tuple, dict, set)):
            warnings.warn(
                f"{source}: {key!r} is not a single value; left out", AstrophotUserWarning, stacklevel=3
            )
            continue
        if hasattr(value, "isoformat"):  # YAML dates
            value = value.isoformat()
        values[str(key).strip().upper()] = value
    return values


def _set(header, key, value, comment):
    card_key = key if len(key) <= 8 and re.fullmatch(r"[A-Z0-9_-]+", key) else f"HIERARCH {key}"
    # keep the card within 80 characters: astropy would warn that it truncates the comment
    width = max(20, len(str(value)) + 2) if not isinstance(value, str) else max(20, len(value) + 2)
    room = 80 - max(10, len(card_key) + 3) - width - 3
    comment = comment if len(comment) <= room else (comment[: max(room, 0)] if room > 8 else "")
    header[card_key] = (value, comment)


def _blank(header, key):
    value = header.get(key)
    return value is None or (isinstance(value, str) and not value.strip())


def _origin_record(frame):
    """The parsed iTelescope name of the frame's file, else of the raw file it came from."""
    paths = [frame.source_path] if frame.source_path else []
    for step in reversed(frame.provenance.steps):
        paths.extend(ref.path for ref in step.inputs if ref.frame_type == "RawFrame" and ref.path)
    for path in paths:
        record = _parse_name(path)
        if record is not None:
            return record
    return None


def _parse_name(path):
    if not path:
        return None
    try:
        from astrophot.instruments.itelescope import parse_filename

        return parse_filename(path)
    except Exception:
        return None


def _resolve_location(location, telescope_id, header, source):
    from astrophot.instruments.itelescope import Site, get_site, get_telescope, site_from_header

    if location is not None:
        if isinstance(location, EarthLocation):
            return location, "argument", None
        if isinstance(location, Site):
            return location.earth_location, "argument", location.name
        site = get_site(str(location))
        return site.earth_location, "argument", site.name
    table_site = None
    if telescope_id:
        try:
            table_site = get_telescope(telescope_id).site
        except Exception:
            table_site = None
    try:
        site = site_from_header(header, source=source)
    except Exception:
        site = None
    if site is not None:
        if site.elevation is None:
            # the header gives no height: take the table's when the table's site is the same place
            height = 0 * u.m
            if table_site is not None and table_site.elevation is not None:
                close = abs(site.latitude.deg - table_site.latitude.deg) < 0.1 and (
                    abs((site.longitude - table_site.longitude).wrap_at(180 * u.deg).deg) < 0.1
                )
                if close:
                    height = table_site.elevation
            location = EarthLocation.from_geodetic(lon=site.longitude, lat=site.latitude, height=height)
            return location, "header" + (" (height from the telescope table)" if height.value else ""), None
        return site.earth_location, "header", None
    if table_site is not None:
        return table_site.earth_location, f"telescope table ({telescope_id})", table_site.name
    return None, None, None


def _sky_geometry(coord, location, start, mid):
    """Alt-az, airmass, hour angle, Moon and Sun at mid-exposure (offline)."""
    from astroplan import moon_illumination

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with (
            iers.conf.set_temp("auto_download", False),
            iers.conf.set_temp("auto_max_age", None),
            iers.conf.set_temp("iers_degraded_accuracy", "warn"),
        ):
            times = Time([start.utc.isot, mid.utc.isot], scale="utc")
            frame = AltAz(obstime=times, location=location)
            altaz = coord.transform_to(frame)
            lst = mid.sidereal_time("apparent", longitude=location.lon)
            hour_angle = (lst - coord.ra).wrap_at(12 * u.hourangle)
            moon = get_body("moon", mid, location=location)
            moon_altaz = moon.transform_to(AltAz(obstime=mid, location=location))
            sun_altaz = get_sun(mid).transform_to(AltAz(obstime=mid, location=location))
            illumination = float(moon_illumination(mid))
            moon_separation = float(moon.separation(coord.transform_to(moon)).deg)
    for warning in caught:
        log.debug("sky geometry: %s", warning.message)
    alt = altaz.alt
    airmass = 1.0 / np.cos(np.pi / 2 - alt.rad)
    return {
        "alt": float(alt[1].deg),
        "az": float(altaz.az[1].deg),
        "airmass": float(airmass[1]) if alt[1].deg > 0 else None,
        "airmass_start": float(airmass[0]) if alt[0].deg > 0 else None,
        "hour_angle": float(hour_angle.hour),
        "moon_alt": float(moon_altaz.alt.deg),
        "moon_illumination": illumination,
        "moon_separation": moon_separation,
        "sun_alt": float(sun_altaz.alt.deg),
    }


def _times(probe, header):
    """Exposure start and mid-exposure; writes DATE-AVG, MJD-OBS and MJD-AVG."""
    start = probe.date_obs
    missing = []
    mid = None
    if start is None:
        missing.append("DATE-OBS")
    else:
        exposure = probe.exposure_time
        half = (exposure / 2) if exposure is not None else 0 * u.s
        if exposure is None:
            missing.append("EXPTIME (mid-exposure taken as the start)")
        mid = start + half
        _set(header, "DATE-AVG", mid.utc.isot, "[UTC] mid-exposure")
        _set(header, "MJD-OBS", round(float(start.utc.mjd), 8), "[d] MJD of exposure start (UTC)")
        _set(header, "MJD-AVG", round(float(mid.utc.mjd), 8), "[d] MJD of mid-exposure (UTC)")
    return start, mid, missing


def _set_telescope_and_observer(header, probe, record, telescope):
    """Write ``TELESCOP`` and ``OBSERVER`` (kept unless given or blank); returns the telescope id."""
    telescope_id = telescope or probe.telescope or getattr(record, "telescope", None)
    if telescope is not None or (_blank(header, "TELESCOP") and telescope_id):
        name = telescope_id
        try:
            from astrophot.instruments.itelescope import get_telescope

            name = f"iTelescope {get_telescope(telescope_id).id}"
        except Exception:
            pass
        _set(header, "TELESCOP", name, "telescope")
    user = getattr(record, "user", None)
    if user and _blank(header, "OBSERVER"):
        _set(header, "OBSERVER", user, "observer (iTelescope user, from the file name)")
    return telescope_id


def _set_target(header, probe, record, target):
    """Write ``OBJECT`` (kept unless given or blank); returns the target name."""
    target_name = target or probe.target or getattr(record, "target", None)
    if target_name and (target is not None or _blank(header, "OBJECT")):
        _set(header, "OBJECT", str(target_name), "target name")
    return target_name


def _set_coordinates(header, probe, source, target_name, *, coordinates, resolve, timeout, names):
    """Write ``RA-OBJ``/``DEC-OBJ``; returns the coordinates (or None) and where they came from."""
    coord, coord_source = None, None
    if coordinates is not None:
        coord, coord_source = _as_skycoord(coordinates, what="coordinates"), "argument"
    elif probe.coordinates is not None:
        coord, coord_source = probe.coordinates, "header"
    elif resolve:
        if not target_name:
            raise AstrophotError(f"{source}: no target name to resolve; pass target= or coordinates=")
        coord, coord_source = resolve_name(target_name, timeout=timeout, names=names), "name resolver"
    elif target_name and names:
        try:
            coord, coord_source = resolve_name(target_name, timeout=0, names=names), "names table"
        except NameResolveError:
            coord = None
    if coord is not None:
        _set(header, "RA-OBJ", round(float(coord.ra.deg), 7), "[deg] target right ascension (ICRS)")
        _set(header, "DEC-OBJ", round(float(coord.dec.deg), 7), "[deg] target declination (ICRS)")
    return coord, coord_source


def _set_site(header, location, telescope_id, source):
    """Write ``LAT-OBS``, ``LONG-OBS``, ``ALT-OBS``, ``OBSERVAT``; returns the site (or None), its source."""
    earth, site_source, site_name = _resolve_location(location, telescope_id, header, source)
    if earth is not None:
        lon, lat, height = earth.to_geodetic("WGS84")
        _set(header, "LAT-OBS", round(float(lat.deg), 7), "[deg +N WGS84] geodetic latitude")
        _set(header, "LONG-OBS", round(float(lon.deg), 7), "[deg +E WGS84] geodetic longitude")
        _set(header, "ALT-OBS", round(float(height.to_value(u.m)), 1), "[m] altitude above sea level")
        if site_name and _blank(header, "OBSERVAT"):
            _set(header, "OBSERVAT", site_name, "observatory")
    return earth, site_source


def _observation_times(probe, header, source):
    """`_times`; ERFA calls years past its leap-second table "dubious": logged, not raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ErfaWarning)
        start, mid, missing = _times(probe, header)
    for warning in caught:
        if issubclass(warning.category, ErfaWarning):
            log.debug("%s: %s", source, warning.message)
        else:
            # stacklevel 3: the caller of add_metadata
            warnings.warn(warning.message, warning.category, stacklevel=3)
    return start, mid, missing


def _set_sky_geometry(header, coord, earth, start, mid, source):
    """Write the airmass and the target's, Moon's and Sun's geometry at mid-exposure; returns them."""
    geometry = _sky_geometry(coord, earth, start, mid)
    if geometry["airmass"] is not None:
        _set(header, "AIRMASS", round(geometry["airmass"], 5), "sec(z) at mid-exposure")
    else:
        header.remove("AIRMASS", ignore_missing=True)
        log.info("%s: the target is below the horizon at mid-exposure; no AIRMASS", source)
    _set(header, "OBJCTALT", round(geometry["alt"], 4), "[deg] target altitude at mid-exposure")
    _set(header, "OBJCTAZ", round(geometry["az"], 4), "[deg] azimuth (N=0, E=90) at mid-exposure")
    _set(header, "OBJCTHA", round(geometry["hour_angle"], 5), "[h] target hour angle at mid-exposure")
    _set(header, "MOONPHAS", round(geometry["moon_illumination"], 4), "Moon illuminated fraction")
    _set(header, "MOONSEP", round(geometry["moon_separation"], 3), "[deg] Moon-target separation")
    _set(header, "MOONALT", round(geometry["moon_alt"], 3), "[deg] Moon altitude at mid-exposure")
    _set(header, "SUNALT", round(geometry["sun_alt"], 3), "[deg] Sun altitude at mid-exposure")
    return geometry


def add_metadata(
    frame,
    *,
    target=None,
    telescope=None,
    coordinates=None,
    location=None,
    keywords=None,
    resolve=False,
    timeout=5.0,
    names=None,
):
    """
    Add the observing metadata later stages and users need, offline.

    Parameters
    ----------
    frame : `~astrophot.frames.FrameBase`
        Usually a `~astrophot.CalibratedFrame` (any frame type is kept).
    target : str, optional
        Target name for ``OBJECT``. Default: ``OBJECT``/``OBSTARGET`` from the
        header, else the iTelescope file name.
    telescope : str, optional
        Telescope (``'T33'``) for ``TELESCOP`` and its site. Default: the
        header, else the file name.
    coordinates : `~astropy.coordinates.SkyCoord`, str or (ra, dec), optional
        Target coordinates (ICRS). Default: ``RA-OBJ``/``DEC-OBJ``,
        ``OBJCTRA``/``OBJCTDEC`` or ``RA``/``DEC`` from the header, else the
        name resolver when ``resolve`` is true.
    location : `~astropy.coordinates.EarthLocation`, `~astrophot.instruments.itelescope.Site` or str, optional
        Observing site. Default: ``SITELAT``/``SITELONG`` (or ``LAT-OBS``/
        ``LONG-OBS``) from the header, else the telescope's site in the
        iTelescope table.
    keywords : mapping or path-like, optional
        Keyword values (or a YAML file of them) written first, for frames
        whose headers lack them (iTelescope "Premium" sets).
    resolve : bool, optional
        Ask the CDS Sesame name resolver (network) for the target's
        coordinates when none are known. Off by default.
    timeout : float, optional
        Seconds to wait for the name resolver in total.
    names : mapping, optional
        Local name cache (name to coordinates), looked up before the network.

    Returns
    -------
    frame : same type as ``frame``
        A copy with ``OBJECT``, ``OBSERVER``, ``TELESCOP``, ``RA-OBJ``/``DEC-OBJ``
        [deg, ICRS], ``LAT-OBS``/``LONG-OBS`` [deg]/``ALT-OBS`` [m], ``DATE-AVG``/
        ``MJD-AVG`` (mid-exposure, UTC) and, at mid-exposure, ``AIRMASS``
        (sec z), ``OBJCTALT``/``OBJCTAZ`` [deg], ``OBJCTHA`` [h], ``MOONPHAS``
        (illuminated fraction), ``MOONSEP``/``MOONALT``/``SUNALT`` [deg].

    Raises
    ------
    NameResolveError
        ``resolve`` is true, no coordinates are known and the resolver
        fails (offline, unknown name) or does not answer within ``timeout``.
    ValueError
        ``coordinates`` or a keyword file cannot be read.

    Warns
    -----
    astrophot.exceptions.AstrophotUserWarning
        No coordinates, site or DATE-OBS: the sky-geometry keywords that
        need them are left out.

    See Also
    --------
    calibrate_frame, reject_cosmic_rays : earlier stages.
    astrophot.find_stars : the next stage.
    resolve_name : the name resolver.

    Notes
    -----
    Everything is computed offline: astropy's bundled IERS tables are used
    (no download; for dates past their range the UT1-UTC and polar motion
    are extrapolated or zero, which moves altitudes by well under an
    arcminute); the site comes from the header or the shipped iTelescope
    table, never from `astropy.coordinates.EarthLocation.of_site`.
    ``AIRMASS`` is sec z of the unrefracted altitude at mid-exposure; iTelescope
    (MaxIm DL/ACP) writes it for the exposure start.
    Existing ``OBJECT``, ``TELESCOP`` and ``OBSERVER`` values are kept unless
    an argument overrides them.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import CalibratedFrame, add_metadata
    >>> frame = CalibratedFrame(np.zeros((4, 4)), meta={
    ...     "DATE-OBS": "2018-07-04T14:03:03", "EXPTIME": 300.0,
    ...     "SITELAT": "-31 16 24", "SITELONG": "149 03 52", "ALT-OBS": 1165.0})
    >>> out = add_metadata(frame, target="M17", coordinates="18h20m48.12s -16d10m58.8s")
    >>> out.header["OBJECT"], round(out.header["AIRMASS"], 3)
    ('M17', 1.043)
    """
    if not isinstance(frame, FrameBase):
        raise TypeError(f"add_metadata needs an astrophot frame, not {type(frame).__name__}")
    extra = load_keywords(keywords)
    rec = start_step(
        "add_metadata",
        parameters={
            "target": target,
            "telescope": telescope,
            "coordinates": coordinates,
            "location": location if isinstance(location, (str, type(None))) else repr(location),
            "keywords": extra,
            "resolve": resolve,
            "timeout": timeout,
        },
        inputs={"frame": frame},
        software=("astroplan",),
    )
    header = fits.Header(frame.meta).copy()
    for key, value in extra.items():
        _set(header, key, value, "from user keywords")
    probe = FrameBase(frame.data, meta=header, unit=frame.unit, copy=False)
    source = frame.name
    record = _origin_record(frame)
    outcome = {}

    telescope_id = _set_telescope_and_observer(header, probe, record, telescope)
    target_name = _set_target(header, probe, record, target)
    coord, coord_source = _set_coordinates(
        header,
        probe,
        source,
        target_name,
        coordinates=coordinates,
        resolve=resolve,
        timeout=timeout,
        names=names,
    )
    outcome["coordinates_source"] = coord_source
    earth, site_source = _set_site(header, location, telescope_id, source)
    outcome["site_source"] = site_source
    start, mid, missing = _observation_times(probe, header, source)
    if coord is None:
        missing.append("target coordinates (pass coordinates= or resolve=True)")
    if earth is None:
        missing.append("site (SITELAT/SITELONG, a known telescope, or location=)")

    if mid is not None and coord is not None and earth is not None:
        previous = header.get("AIRMASS")
        outcome.update(_set_sky_geometry(header, coord, earth, start, mid, source))
        outcome["previous_airmass"] = previous
    elif missing:
        warnings.warn(
            f"{source}: no airmass or sky geometry: missing " + ", ".join(missing),
            AstrophotUserWarning,
            stacklevel=2,
        )
    outcome["missing"] = missing

    # a header-only step: the new frame shares the pixel arrays (and so their checksum) with its input
    out = frame.__class__(frame, copy=False)
    out.meta = header
    return rec.finish(out, primary=frame, outcome=outcome)
