# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Where a solver should look: field centre, search radius and pixel scale."""

import logging
import math
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord

__all__ = ["SolveHint", "hint_from_frame"]

log = logging.getLogger(__name__)

_ARCSEC_PER_PIX = u.arcsec / u.pix
#: Header keywords holding a pixel scale in arcsec per (binned) pixel.
_SCALE_KEYS = ("PIXSCALE", "SECPIX", "SCALE")
#: iTelescope's calibrated frames: plate scale at the frame's binning (arcsec/pix).
_ITELESCOPE_SCALE_KEYS = ("iTelescopePlateScaleH", "iTelescopePlateScaleV")
#: Mount (not target) coordinates some systems write, in degrees (PANOPTES).
_MOUNT_KEYS = (("RA-MNT", "DEC-MNT"),)


@dataclass(frozen=True)
class SolveHint:
    """
    What is known before solving: where the field is and how big a pixel is.

    Parameters
    ----------
    center : `~astropy.coordinates.SkyCoord` or None
        Approximate field centre (ICRS), or None to search the whole sky.
    radius : `~astropy.units.Quantity` or None
        How far (angle) the true centre may be from ``center``.
    scale : `~astropy.units.Quantity` or None
        Expected pixel scale (arcsec / pix), or None when unknown.
    scale_low, scale_high : `~astropy.units.Quantity` or None
        The range of pixel scales to search.
    sources : dict
        Where each value came from (for messages and provenance).
    """

    center: SkyCoord | None = None
    radius: u.Quantity | None = None
    scale: u.Quantity | None = None
    scale_low: u.Quantity | None = None
    scale_high: u.Quantity | None = None
    sources: dict = field(default_factory=dict)

    @property
    def has_position(self):
        """True when a centre is known."""
        return self.center is not None

    @property
    def has_scale(self):
        """True when a pixel-scale range is known."""
        return self.scale_low is not None and self.scale_high is not None

    def scale_range_arcsec(self):
        """``(low, high)`` pixel scale in arcsec/pix (floats), or None."""
        if not self.has_scale:
            return None
        return (self.scale_low.to_value(_ARCSEC_PER_PIX), self.scale_high.to_value(_ARCSEC_PER_PIX))

    def field_diagonal(self, shape):
        """Largest field diagonal (deg) for a frame ``shape`` or None without a scale."""
        if not self.has_scale:
            return None
        ny, nx = shape
        return math.hypot(nx, ny) * self.scale_high.to_value(_ARCSEC_PER_PIX) / 3600.0

    def as_record(self):
        """A small dict for provenance and the solution record."""
        record = {"sources": dict(self.sources)}
        if self.center is not None:
            record["ra"] = round(float(self.center.ra.deg), 6)
            record["dec"] = round(float(self.center.dec.deg), 6)
        if self.radius is not None:
            record["radius_deg"] = round(float(self.radius.to_value(u.deg)), 4)
        if self.scale is not None:
            record["scale_arcsec"] = round(float(self.scale.to_value(_ARCSEC_PER_PIX)), 5)
        if self.has_scale:
            low, high = self.scale_range_arcsec()
            record["scale_range_arcsec"] = [round(low, 5), round(high, 5)]
        return record


def _to_float(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def _as_scale(value, *, name="scale"):
    """A pixel scale: Quantity (angle/pix or angle) or number (arcsec/pix)."""
    if isinstance(value, u.Quantity):
        if value.unit.is_equivalent(_ARCSEC_PER_PIX):
            result = value.to(_ARCSEC_PER_PIX)
        elif value.unit.is_equivalent(u.arcsec):
            result = value.to(u.arcsec).value * _ARCSEC_PER_PIX
        else:
            raise ValueError(f"{name} must be an angle per pixel (arcsec/pix), not {value.unit}")
    else:
        try:
            result = float(value) * _ARCSEC_PER_PIX
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number (arcsec/pix) or a Quantity, not {value!r}") from None
    if not np.isfinite(result.value) or result.value <= 0:
        raise ValueError(f"{name} must be positive and finite, not {result}")
    return result


def _as_angle(value, *, name):
    if isinstance(value, u.Quantity):
        if not value.unit.is_equivalent(u.deg):
            raise ValueError(f"{name} must be an angle, not {value.unit}")
        result = value.to(u.deg)
    else:
        try:
            result = float(value) * u.deg
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number (deg) or an angle Quantity, not {value!r}") from None
    if not np.isfinite(result.value) or result.value <= 0:
        raise ValueError(f"{name} must be positive, not {result}")
    return result


def _as_center(value):
    """A position hint: SkyCoord, (ra, dec) in degrees, a dict or a string."""
    if isinstance(value, SkyCoord):
        if not value.isscalar:
            raise ValueError("hint must be a single position, not an array of coordinates")
        return value.icrs, None
    radius = None
    if isinstance(value, dict):
        unknown = set(value) - {"ra", "dec", "radius"}
        if unknown or not {"ra", "dec"} <= set(value):
            raise ValueError(
                f"a hint dict needs 'ra' and 'dec' (and optionally 'radius'), got {sorted(value)}"
            )
        radius = value.get("radius")
        value = (value["ra"], value["dec"])
    if isinstance(value, str):
        try:
            return SkyCoord(value, unit=(u.hourangle, u.deg), frame="icrs"), None
        except ValueError:
            raise ValueError(f"cannot read a position from hint {value!r}") from None
    try:
        items = list(value)
    except TypeError:
        raise ValueError(f"hint must be a SkyCoord, (ra, dec[, radius]) or a dict, not {value!r}") from None
    if len(items) == 3:
        items, radius = items[:2], items[2]
    if len(items) != 2:
        raise ValueError(f"hint must hold ra and dec (and optionally a radius), not {value!r}")
    ra, dec = (v if isinstance(v, u.Quantity) else float(v) * u.deg for v in items)
    return SkyCoord(ra, dec, frame="icrs"), radius


def _header_scale(frame):
    """Pixel scale from the header, and where it came from, or (None, None)."""
    header = frame.header
    for key in _SCALE_KEYS:
        value = _to_float(header.get(key))
        if value is not None and value < 3600:
            return value * _ARCSEC_PER_PIX, key
    focal = _to_float(header.get("FOCALLEN"))
    xpix = _to_float(header.get("XPIXSZ"))
    if focal is not None and xpix is not None:
        # MaxIm DL writes XPIXSZ after binning (the binned pixel size).
        ypix = _to_float(header.get("YPIXSZ")) or xpix
        pixel = math.sqrt(xpix * ypix) * 1e-3  # mm
        return (pixel / focal * u.rad).to(u.arcsec).value * _ARCSEC_PER_PIX, "FOCALLEN/XPIXSZ"
    for key in _ITELESCOPE_SCALE_KEYS:
        value = _to_float(header.get(key))
        if value is not None:
            return value * _ARCSEC_PER_PIX, key
    plate = _to_float(header.get("PLTSCALE"))  # DSS plates: arcsec/mm and the scan's pixel (micron)
    xsize = _to_float(header.get("XPIXELSZ"))
    if plate is not None and xsize is not None and plate > 0 and xsize > 0:
        ysize = _to_float(header.get("YPIXELSZ")) or xsize
        return plate * math.sqrt(xsize * ysize) * 1e-3 * _ARCSEC_PER_PIX, "PLTSCALE/XPIXELSZ"
    return None, None


def _wcs_hint(frame):
    """Centre and scale from a celestial WCS already in the frame, or Nones."""
    wcs = frame.wcs
    if wcs is None or not getattr(wcs, "has_celestial", False):
        return None, None
    try:
        celestial = wcs.celestial
        ny, nx = frame.data.shape
        center = celestial.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
        matrix = celestial.pixel_scale_matrix  # deg per pixel
        scale = math.sqrt(abs(np.linalg.det(matrix))) * 3600.0 * _ARCSEC_PER_PIX
    except Exception as exc:
        log.debug("%s: existing WCS gives no hint (%s)", frame.name, exc)
        return None, None
    if not np.isfinite(scale.value) or scale.value <= 0:
        return center, None
    return center, scale


def _telescope_scale(frame):
    name = frame.telescope
    if not name:
        return None, None
    try:
        from astrophot.instruments.itelescope import get_telescope

        telescope = get_telescope(name)
    except Exception:
        return None, None
    scale = telescope.plate_scale
    if scale is None:
        return None, None
    binning = frame.binning
    factor = math.sqrt(binning[0] * binning[1])
    return scale.to(_ARCSEC_PER_PIX) * factor, f"telescope table ({telescope.id})"


def _mount_center(frame):
    for ra_key, dec_key in _MOUNT_KEYS:
        ra = _to_float(frame.header.get(ra_key))
        dec = frame.header.get(dec_key)
        try:
            dec = float(dec)
        except (TypeError, ValueError):
            continue
        if ra is not None and -90 <= dec <= 90:
            return SkyCoord(ra * u.deg, dec * u.deg, frame="icrs"), f"{ra_key}/{dec_key}"
    return None, None


def _center_hint(frame, hint, blind, wcs_center, sources):
    """The field centre, a radius given with it, and the default radius in field diagonals."""
    if hint is not None:
        center, hint_radius = _as_center(hint)
        sources["center"] = "argument"
        return center, hint_radius, 1.0
    # default search radius in field diagonals, by how far each source may be off
    if not blind:
        coords = frame.coordinates
        if coords is not None:
            sources["center"] = "header RA/DEC keywords"
            return coords.icrs, None, 1.0
        if wcs_center is not None:
            sources["center"] = "existing WCS"
            return wcs_center.icrs, None, 0.5
        header_center, where = _mount_center(frame)
        if header_center is not None:
            sources["center"] = where
            return header_center, None, 3.0
    return None, None, 1.0


def _scale_hint(frame, scale, blind, wcs_scale, scale_tolerance, sources):
    """The pixel scale: ``(nominal, low, high)``, each None when unknown."""
    scale_low = scale_high = None
    nominal = None
    if scale is not None:
        if isinstance(scale, (tuple, list)) and len(scale) == 2:
            scale_low, scale_high = (_as_scale(v) for v in scale)
            if scale_low > scale_high:
                scale_low, scale_high = scale_high, scale_low
            nominal = np.sqrt(scale_low * scale_high)
        else:
            nominal = _as_scale(scale)
        sources["scale"] = "argument"
    elif not blind:
        header_scale, where = _header_scale(frame)
        if header_scale is None and wcs_scale is not None:
            header_scale, where = wcs_scale, "existing WCS"
        if header_scale is None:
            header_scale, where = _telescope_scale(frame)
        if header_scale is not None:
            nominal = header_scale
            sources["scale"] = where
    if nominal is not None and scale_low is None:
        scale_low = nominal * (1 - scale_tolerance)
        scale_high = nominal * (1 + scale_tolerance)
    return nominal, scale_low, scale_high


def _default_radius(frame, scale_high, diagonals, sources):
    if scale_high is not None:
        ny, nx = frame.data.shape
        diagonal = math.hypot(nx, ny) * scale_high.to_value(_ARCSEC_PER_PIX) / 3600.0
        sources["radius"] = f"{diagonals:g} field diagonal(s)"
        return max(diagonals * diagonal, 0.25) * u.deg
    sources["radius"] = "default 10 deg (no scale known)"
    return 10.0 * u.deg


def hint_from_frame(
    frame,
    *,
    hint=None,
    radius=None,
    scale=None,
    scale_tolerance=0.2,
    blind=False,
):
    """
    Combine the caller's hints with what the frame's header says.

    Parameters
    ----------
    frame : `~astrophot.frames.FrameBase`
        The frame to solve.
    hint : `~astropy.coordinates.SkyCoord`, tuple, dict or str, optional
        Field centre: a SkyCoord, ``(ra, dec)`` or ``(ra, dec, radius)`` in
        degrees, ``{"ra": .., "dec": .., "radius": ..}`` or a string
        SkyCoord reads (RA in hours). Overrides the header.
    radius : float or `~astropy.units.Quantity`, optional
        Search radius around the centre (deg). Default, when the scale is
        known: one field diagonal around header RA/DEC or a given hint, half
        a diagonal around an existing WCS, three around mount coordinates
        (``RA-MNT``/``DEC-MNT``); at least 0.25 deg; 10 deg without a scale.
    scale : float, `~astropy.units.Quantity` or (low, high), optional
        Pixel scale (arcsec/pix) or its range. Overrides the header.
    scale_tolerance : float, optional
        Relative width of the scale range around a single scale value.
    blind : bool, optional
        Ignore the header's position and scale (an explicit ``scale`` is
        still used; an explicit ``hint`` is an error).

    Returns
    -------
    SolveHint
    """
    if blind and hint is not None:
        raise ValueError("blind=True contradicts an explicit position hint; give one or the other")
    if not 0 <= scale_tolerance < 1:
        raise ValueError(f"scale_tolerance must be in [0, 1), not {scale_tolerance}")
    sources = {}
    wcs_center, wcs_scale = (None, None) if blind else _wcs_hint(frame)
    center, hint_radius, diagonals = _center_hint(frame, hint, blind, wcs_center, sources)
    nominal, scale_low, scale_high = _scale_hint(frame, scale, blind, wcs_scale, scale_tolerance, sources)
    radius_value = radius if radius is not None else hint_radius
    if center is None:
        radius_q = None
    elif radius_value is not None:
        radius_q = _as_angle(radius_value, name="radius")
        sources["radius"] = "argument"
    else:
        radius_q = _default_radius(frame, scale_high, diagonals, sources)
    return SolveHint(
        center=center,
        radius=radius_q,
        scale=nominal,
        scale_low=scale_low,
        scale_high=scale_high,
        sources=sources,
    )
