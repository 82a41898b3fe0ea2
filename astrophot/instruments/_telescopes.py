# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The iTelescope.net telescope table: optics, cameras and sites."""

import re
from dataclasses import dataclass, field
from types import MappingProxyType

import astropy.units as u

from astrophot.exceptions import AstrophotError

from ._sites import SITES, Site

__all__ = [
    "TELESCOPES",
    "Telescope",
    "UnknownTelescopeError",
    "get_telescope",
    "optics_table",
]


class UnknownTelescopeError(AstrophotError, ValueError):
    """A telescope name that is not in `TELESCOPES`."""


_QUANTITY_UNITS = {
    "pixel_size": u.um,
    "focal_length": u.mm,
    "aperture": u.mm,
    "gain": u.electron / u.adu,
    "read_noise": u.electron,
    "full_well": u.electron,
    "saturation": u.adu,
    "set_temperature": u.deg_C,
}


@dataclass(frozen=True)
class Telescope:
    """
    One iTelescope.net telescope: site, optics and camera.

    Every fact is `None` where it is not known (rather than guessed);
    ``sources`` says where each known fact comes from.

    Parameters
    ----------
    id : str
        The iTelescope name, ``'T20'``.
    site : Site or None
        Where it stands.
    camera : str or None
        Camera make and model, or what the header's ``INSTRUME`` says.
    pixel_size : `~astropy.units.Quantity` or None
        Unbinned pixel size (micron).
    focal_length, aperture : `~astropy.units.Quantity` or None
        Effective focal length and aperture diameter (mm).
    shape : tuple of int or None
        Unbinned frame shape in numpy order ``(rows, columns)``, that is
        ``(NY, NX)``: T20's 4008x2672 frames have ``shape == (2672, 4008)``.
    gain : `~astropy.units.Quantity` or None
        Electrons per ADU.
    read_noise : `~astropy.units.Quantity` or None
        Electrons (rms).
    full_well : `~astropy.units.Quantity` or None
        Electrons.
    saturation : `~astropy.units.Quantity` or None
        Highest recordable value (ADU), for example the 16-bit ADC ceiling.
    binning_modes : tuple of int or None
        Binning factors known to be used (seen in real file names or masters;
        the camera may offer more).
    filters : tuple of str or None
        Filter names seen in real files or calibration masters (the wheel
        may hold more).
    set_temperature : `~astropy.units.Quantity` or None
        Usual CCD set-point (Celsius).
    sources : mapping of str to str
        Field name to a note on where the value comes from.
    notes : str
        Anything else worth knowing.

    Notes
    -----
    Values marked "typical for camera model" in ``sources`` are the usual
    figures for that camera, not measurements of this telescope's camera;
    measure gain and read noise from your own bias and flat frames
    (`astrophot.measure_read_noise`) for real work.
    """

    id: str
    site: Site | None
    camera: str | None = None
    pixel_size: u.Quantity | None = None
    focal_length: u.Quantity | None = None
    aperture: u.Quantity | None = None
    shape: tuple | None = None
    gain: u.Quantity | None = None
    read_noise: u.Quantity | None = None
    full_well: u.Quantity | None = None
    saturation: u.Quantity | None = None
    binning_modes: tuple | None = None
    filters: tuple | None = None
    set_temperature: u.Quantity | None = None
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False)
    notes: str = field(default="", repr=False)

    def __post_init__(self):
        for name, unit in _QUANTITY_UNITS.items():
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, u.Quantity(value, unit))
        if self.shape is not None:
            shape = tuple(int(n) for n in self.shape)
            if len(shape) != 2 or min(shape) <= 0:
                raise ValueError(f"{self.id}: shape must be two positive integers, got {self.shape}")
            object.__setattr__(self, "shape", shape)
        for name in ("binning_modes", "filters"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    def __hash__(self):
        return hash(self.id)

    @property
    def plate_scale(self):
        """
        Unbinned pixel scale (arcsec / pix) from pixel size and focal length.

        `None` when either is unknown. Multiply by the binning factor for
        binned frames.
        """
        if self.pixel_size is None or self.focal_length is None:
            return None
        ratio = (self.pixel_size / self.focal_length).to_value(u.dimensionless_unscaled)
        return (ratio * u.rad).to(u.arcsec) / u.pix

    @property
    def field_of_view(self):
        """
        Unbinned field of view ``(height, width)`` in arcmin, or `None`.

        Small-angle approximation: pixels times `plate_scale`.
        """
        scale = self.plate_scale
        if scale is None or self.shape is None:
            return None
        return tuple((n * u.pix * scale).to(u.arcmin) for n in self.shape)

    @property
    def effective_saturation(self):
        """
        The lower of `saturation` and full well / gain (ADU), or `None`.

        Above this a pixel is no longer linear. Falls back to whichever of
        the two is known.
        """
        candidates = []
        if self.saturation is not None:
            candidates.append(self.saturation)
        if self.full_well is not None and self.gain is not None:
            candidates.append((self.full_well / self.gain).to(u.adu))
        return min(candidates) if candidates else None

    def shape_for_binning(self, binning):
        """
        Frame shape ``(rows, columns)`` at a binning factor.

        Parameters
        ----------
        binning : int
            Binning factor (1, 2, ...).

        Returns
        -------
        tuple of int or None
            The unbinned shape integer-divided by ``binning``, as the camera
            reads it (T20: 4008x2672 -> 2004x1336 at bin 2); `None` if the
            shape is unknown.

        Raises
        ------
        ValueError
            If ``binning`` is not a positive integer.
        """
        if isinstance(binning, bool) or int(binning) != binning or binning < 1:
            raise ValueError(f"binning must be a positive integer, got {binning!r}")
        if self.shape is None:
            return None
        return tuple(n // int(binning) for n in self.shape)


# --- the table ------------------------------------------------------------------

_SPEC4 = "reference spec of the original pipeline, section 4"
_SITE_NOTE = _SPEC4 + " (site table: telescopes mapped to sites)"
_TYPICAL = "typical for camera model"
_T31_HEADER = (
    "real raw T31 header (shared/data/itelescope_headers/"
    "raw-T31-davestrickland-webb-20211229-024225-Green-BIN1-W-300-001.hdr.txt)"
)
_T33_HEADER = (
    "real calibrated T33 header (shared/data/itelescope_headers/calibrated-T33-m17-SII-300s.hdr.txt)"
)
_ADC16 = "16-bit unsigned data (BITPIX=16, BZERO=32768): ADC ceiling"
_T07_PAGE = (
    "iTelescope's published T7 description, "
    "https://support.itelescope.net/support/solutions/articles/231908-telescope-7 "
    "(stored copy)"
)

_SITE_OF = {
    "H06": ("T02", "T05", "T11", "T14", "T20", "T21", "T68"),
    "Q62": ("T08", "T09", "T12", "T17", "T30", "T31", "T32", "T33"),
    "I89": ("T07", "T16", "T18"),
    "U69": ("T24",),
}

_FACTS = {
    "T05": dict(
        shape=(1472, 2184),
        binning_modes=(1,),
        filters=("B", "V", "I", "Clear", "Red", "Green", "Blue", "Ha", "OIII", "SII"),
        set_temperature=-10,
        sources={
            "shape": _SPEC4 + " (unbinned frame 2184x1472; Master_Bias_1_2184x1472_Bin1x1_...)",
            "binning_modes": _SPEC4 + " (Bin1x1 masters)",
            "filters": _SPEC4 + " (master flats for these filters)",
            "set_temperature": _SPEC4 + " (masters at -10 C)",
        },
        notes=(
            "Raw headers carry EGAIN (value not recorded in the sources). The "
            "original pipeline's LA-Cosmic defaults (read noise 12 e-, FWHM 3.5 px) "
            "were tuned for T05 but are tuning values, not camera measurements. The "
            "2184x1472 format is that of the KAF-3200ME sensor (6.8 um pixels), not "
            "confirmed for this camera, so pixel_size stays None."
        ),
    ),
    "T07": dict(
        camera="SBIG STL-11000M",
        pixel_size=9.0,
        focal_length=2929.0,
        aperture=431.0,
        shape=(2672, 4008),
        gain=2.2,
        full_well=50000.0,
        binning_modes=(1, 2),
        filters=("Luminance", "R", "V", "B", "Ha", "OIII", "SII", "I"),
        set_temperature=-20,
        sources={
            "camera": _T07_PAGE + ": 'a large format STL11000M CCD' (SBIG's STL-11000M)",
            "pixel_size": _T07_PAGE + ": 'Pixel Size: 9um Square'",
            "focal_length": (
                _T07_PAGE + ": 'Focal Length: 2929mm' (Planewave 17\" CDK, f/6.8); with 9 um "
                "pixels 0.634 arcsec/px, the page's 'Resolution: 0.63 arc-secs/pixel'"
            ),
            "aperture": _T07_PAGE + ": 'Aperture: 431mm'",
            "shape": (
                _T07_PAGE + ": 'Array: 4008 by 2672'; 'FOV: 28.2 x 42.3 arc-mins' puts the "
                "2672 pixels along the 28.2 arcmin side"
            ),
            "gain": (
                _T07_PAGE + ": 'A/D Gain: 2.2e-/ADU' (the page does not say whether it was "
                "measured on this camera; measure it from flats for real work)"
            ),
            "full_well": _T07_PAGE + ": 'Full Well: ~50,000e-' (a nominal figure, " + _TYPICAL + ")",
            "binning_modes": _T07_PAGE + ": darks for 'Binx1 - Binx2'",
            "filters": _T07_PAGE + ": 'Filters: Luminance, R, V, B, Ha, Oiii, SII, I' (Oiii written OIII)",
            "set_temperature": _T07_PAGE + ": Cooling set to -20 C by default",
        },
        notes=(
            'Planewave 17" CDK (f/6.8) at AstroCamp, Nerpio. The page gives the site as '
            "N 38 09', W 002 19', 1650 m (the I89 entry, from the reference spec, says "
            "1607 m) and a position angle of 272 deg; its dark current (0.5 e-/px/s at "
            "0 C) and QE (50 % peak) are the camera's. An anti-blooming (ABG) CCD: the page "
            "warns that it is not linear near saturation, so keep photometry well below "
            "full well. Read noise and the ADC ceiling are not given."
        ),
    ),
    "T20": dict(
        camera="FLI ProLine PL11002M",
        pixel_size=9.0,
        focal_length=530.0,
        aperture=106.0,
        shape=(2672, 4008),
        gain=1.4,
        read_noise=12.0,
        full_well=50000.0,
        saturation=65535.0,
        binning_modes=(1, 2),
        filters=("Luminance", "V", "Red", "Green", "Blue", "Ha", "OIII", "SII"),
        set_temperature=-15,
        sources={
            "camera": (
                "astrophot issue 3 brief; its KAI-11002 sensor has the 4008x2672 "
                "format of the T20 masters (" + _SPEC4 + ")"
            ),
            "pixel_size": "KAI-11002 sensor (9 um pixels); " + _TYPICAL,
            "focal_length": (
                "iTelescope's published T20 description (Takahashi FSQ-106ED, f/5), "
                "recalled, not checked against a stored copy; 9 um at 530 mm gives "
                "3.50 arcsec/px, consistent with the 3.6 arcsec/px grid the original "
                "pipeline used for T20 mosaics (" + _SPEC4 + ")"
            ),
            "aperture": "as focal_length (Takahashi FSQ-106ED, 106 mm)",
            "shape": _SPEC4 + " (Bin1 4008x2672, Bin2 2004x1336)",
            "gain": _TYPICAL + " (FLI PL11002M, ~1.4 e-/ADU)",
            "read_noise": _TYPICAL + " (FLI PL11002M, 11-14 e- quoted)",
            "full_well": _TYPICAL + " (KAI-11002, 50-60 ke- quoted)",
            "saturation": _TYPICAL + " (16-bit ADC ceiling)",
            "binning_modes": _SPEC4 + " (Bin1x1 and Bin2x2 masters)",
            "filters": _SPEC4 + " (master flats for these filters)",
            "set_temperature": _SPEC4 + " (masters at -15 C)",
        },
        notes=(
            "Masters: darks 900 s (2020-04, bias still in, CALSTAT 'M'). The "
            "gain, read noise and full well are typical values for the camera "
            "model, not measurements of T20."
        ),
    ),
    "T31": dict(
        camera="FLI",
        pixel_size=12.0,
        focal_length=2259.0,
        aperture=510.0,
        shape=(3056, 3056),
        saturation=65535.0,
        binning_modes=(1,),
        filters=("Green",),
        set_temperature=-25,
        sources={
            "camera": _T31_HEADER + ": INSTRUME = 'FLI'",
            "pixel_size": _T31_HEADER + ": XPIXSZ = 12 at XBINNING = 1",
            "focal_length": _T31_HEADER + ": FOCALLEN = 2259",
            "aperture": _T31_HEADER + ": APTDIA = 510",
            "shape": _T31_HEADER + ": NAXIS1 = NAXIS2 = 3056 at bin 1",
            "saturation": _T31_HEADER + ": " + _ADC16,
            "binning_modes": _T31_HEADER + ": XBINNING = 1",
            "filters": _T31_HEADER + ": FILTER = 'Green'",
            "set_temperature": _T31_HEADER + ": SET-TEMP = -25",
        },
        notes="Readout mode '8 MHz (RBI Flood)'; MaxIm DL 6.27. Gain and read noise unknown.",
    ),
    "T33": dict(
        camera="Apogee USB/Net",
        pixel_size=7.4,
        focal_length=1425.0,
        aperture=392.0,
        shape=(3232, 4864),
        saturation=65535.0,
        binning_modes=(1,),
        filters=("SII",),
        set_temperature=-35,
        sources={
            "camera": _T33_HEADER + ": INSTRUME = 'Apogee USB/Net'",
            "pixel_size": _T33_HEADER + ": XPIXSZ = 7.4 at XBINNING = 1",
            "focal_length": _T33_HEADER + ": FOCALLEN = 1425",
            "aperture": _T33_HEADER + ": APTDIA = 392",
            "shape": _T33_HEADER + ": NAXIS1 = 4864, NAXIS2 = 3232 at bin 1",
            "saturation": _T33_HEADER + ": " + _ADC16,
            "binning_modes": _T33_HEADER + ": XBINNING = 1",
            "filters": _T33_HEADER + ": FILTER = 'SII'",
            "set_temperature": _T33_HEADER + ": SET-TEMP = -35",
        },
        notes=(
            "iTelescope writes HIERARCH iTelescopePlateScaleH = 1.0735 arcsec/px "
            "(0.2% above 7.4 um / 1425 mm). The header's site (SITELONG '149 03 52', "
            "ALT-OBS 1165 m, OBSERVAT 'iTelescope.Net T33 SSO') differs slightly from "
            "the Q62 table entry. Masters at -35 C (bias 0 ms, dark 300 s, flat 5 s "
            "in the header HISTORY)."
        ),
    ),
}


def _build_table():
    table = {}
    for code, ids in _SITE_OF.items():
        for tel_id in ids:
            facts = dict(_FACTS.get(tel_id, {}))
            sources = {"site": _SITE_NOTE, **facts.pop("sources", {})}
            table[tel_id] = Telescope(id=tel_id, site=SITES[code], sources=sources, **facts)
    return MappingProxyType(dict(sorted(table.items())))


#: The iTelescope.net telescopes, keyed by id (``'T05'``).
TELESCOPES = _build_table()

_NAME = re.compile(r"^(?:itelescope(?:\.net)?[\s_\-]*)?t?[\s_\-]*0*(\d{1,3})$", re.IGNORECASE)


def get_telescope(name):
    """
    Look up an iTelescope telescope.

    Parameters
    ----------
    name : str or Telescope
        ``'T05'``, ``'t05'``, ``'T5'``, ``'iTelescope T05'``,
        ``'iTelescope.net T05'`` or the ``TELESCOP`` value iTelescope writes
        (``'iTelescope 33'``). A `Telescope` is returned unchanged.

    Returns
    -------
    Telescope
        The entry of `TELESCOPES`.

    Raises
    ------
    UnknownTelescopeError
        If the name is not a known telescope; the message lists them.

    See Also
    --------
    get_site : The sites.
    parse_filename : The telescope id in a file name.

    Examples
    --------
    >>> get_telescope('iTelescope.net t31').plate_scale.round(3)
    <Quantity 1.096 arcsec / pix>
    >>> get_telescope('T20').site.mpc_code
    'H06'
    """
    if isinstance(name, Telescope):
        return name
    match = _NAME.match(str(name).strip())
    if match is not None:
        tel_id = f"T{int(match[1]):02d}"
        if tel_id in TELESCOPES:
            return TELESCOPES[tel_id]
    known = " ".join(TELESCOPES)
    raise UnknownTelescopeError(f"unknown iTelescope telescope {name!r}; known telescopes: {known}")


_OPTICS_HEADINGS = (
    "Telescope",
    "Site",
    "Focal length (mm)",
    "Pixel (micron)",
    "Scale (arcsec/px, bin 1)",
    "Field (arcmin)",
    "Index series offline",
)


def _optics_row(telescope):
    from astrophot.astrometry._series import index_series

    unknown = "unknown"
    focal = unknown if telescope.focal_length is None else f"{telescope.focal_length.to_value(u.mm):g}"
    pixel = unknown if telescope.pixel_size is None else f"{telescope.pixel_size.to_value(u.um):g}"
    scale = telescope.plate_scale
    scale = unknown if scale is None else f"{scale.to_value(u.arcsec / u.pix):.3f}"
    fov = telescope.field_of_view
    if fov is None:
        field_text = series = unknown
    else:
        sides = [side.to_value(u.arcmin) for side in fov]
        field_text = " x ".join(f"{side:.1f}" for side in sides)
        series = ", ".join(index_series(max(sides) / 60.0)) or "none"
    site = unknown if telescope.site is None or telescope.site.mpc_code is None else telescope.site.mpc_code
    return (telescope.id, site, focal, pixel, scale, field_text, series)


def optics_table(telescopes=None):
    """
    Optics of the telescopes as a reStructuredText table, and the index series for their field.

    Parameters
    ----------
    telescopes : iterable of str or Telescope, optional
        Which telescopes (any name `get_telescope` reads); default all of
        `TELESCOPES`, in order.

    Returns
    -------
    str
        A simple table: focal length, unbinned pixel size, `Telescope.plate_scale`
        at bin 1, `Telescope.field_of_view` (height x width, arcmin) and the
        astrometry.net index series that can solve such a field offline
        (``astrophot.astrometry._series.index_series`` of the longer side:
        ``4100`` Tycho-2, ``5200`` Tycho-2 + Gaia). ``unknown`` where the
        table lacks the facts. Binning multiplies the scale and leaves the
        field as it is.

    Examples
    --------
    >>> print(optics_table(["T07", "T02"]))
    ========= ==== ================= ============== ======================== ============== ====================
    Telescope Site Focal length (mm) Pixel (micron) Scale (arcsec/px, bin 1) Field (arcmin) Index series offline
    ========= ==== ================= ============== ======================== ============== ====================
    T07       I89  2929              9              0.634                    28.2 x 42.3    4100, 5200
    T02       H06  unknown           unknown        unknown                  unknown        unknown
    ========= ==== ================= ============== ======================== ============== ====================
    """
    chosen = TELESCOPES.values() if telescopes is None else [get_telescope(t) for t in telescopes]
    rows = [_OPTICS_HEADINGS, *(_optics_row(t) for t in chosen)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_OPTICS_HEADINGS))]
    rule = " ".join("=" * w for w in widths)

    def line(row):
        return " ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join([rule, line(rows[0]), rule, *(line(row) for row in rows[1:]), rule])
