# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The known truth behind simulated frames."""

from dataclasses import dataclass, field, fields

import numpy as np

__all__ = [
    "DetectorTruth",
    "FrameTruth",
    "PSF",
    "Truth",
]


@dataclass(frozen=True)
class PSF:
    """
    An elliptical Moffat point-spread function, in pixels.

    Parameters
    ----------
    fwhm : float
        Full width at half maximum (pixels): the geometric mean of the
        major- and minor-axis widths (the width of a round PSF).
    beta : float
        Moffat power index (larger is closer to a Gaussian).
    ellipticity : float
        ``1 - minor/major``.
    theta : float
        Angle of the major axis from +x towards +y (degrees).
    """

    fwhm: float
    beta: float = 3.0
    ellipticity: float = 0.0
    theta: float = 0.0

    def __post_init__(self):
        if not self.fwhm > 0:
            raise ValueError(f"PSF fwhm must be positive, not {self.fwhm!r}")
        if not self.beta > 1:
            raise ValueError(f"Moffat beta must be larger than 1, not {self.beta!r}")
        if not 0 <= self.ellipticity < 1:
            raise ValueError(f"ellipticity must be in [0, 1), not {self.ellipticity!r}")

    @property
    def fwhm_major(self):
        """FWHM along the major axis (pixels)."""
        return self.fwhm / np.sqrt(1.0 - self.ellipticity)

    @property
    def fwhm_minor(self):
        """FWHM along the minor axis (pixels)."""
        return self.fwhm * np.sqrt(1.0 - self.ellipticity)

    @staticmethod
    def alpha_from_fwhm(fwhm, beta):
        """Moffat core width ``alpha`` for a FWHM: ``fwhm = 2 alpha sqrt(2**(1/beta) - 1)``."""
        return fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))

    def to_dict(self):
        """Plain values (for YAML): fwhm, beta, ellipticity, theta, fwhm_major, fwhm_minor."""
        return {
            "fwhm": float(self.fwhm),
            "beta": float(self.beta),
            "ellipticity": float(self.ellipticity),
            "theta": float(self.theta),
            "fwhm_major": float(self.fwhm_major),
            "fwhm_minor": float(self.fwhm_minor),
        }


@dataclass(repr=False)
class DetectorTruth:
    """
    The camera behind a simulation: what a perfect calibration would recover.

    A raw pixel holds, in ADU, ``bias_level + bias_structure + pedestal_offset
    + electrons / gain + read noise``, rounded and clipped to
    ``[0, saturation]``, where ``electrons`` is a Poisson draw of
    ``flat * (sky + stars) + dark_current * exposure`` (plus the unstable
    extra charge of the bad columns and rows, and cosmic rays).

    Attributes
    ----------
    shape : tuple of int
        ``(ny, nx)`` after binning.
    binning : int
    gain : float
        Electrons per ADU.
    read_noise : float
        Electrons (rms).
    bias_level : float
        Mean bias (ADU).
    bias_structure : numpy.ndarray
        Fixed-pattern bias offset (ADU, mean zero): column pattern plus a
        ramp along the rows; the expected bias frame is
        ``bias_level + bias_structure``.
    dark_current : numpy.ndarray
        Dark current at the set-point (electron/s per pixel), hot pixels
        included.
    dark_current_level : float
        Dark current of a normal pixel (electron/s).
    hot_pixels : numpy.ndarray
        ``(n, 3)``: ``x, y`` (0-based column, row) and dark current
        (electron/s) of each hot pixel.
    bad_columns, bad_rows : list of int
        0-based columns and rows with unstable extra charge: each frame adds
        ``bad_line_current * exposure * f`` electrons to them, with ``f``
        drawn per frame and line in [0.5, 1.5] (so they survive dark
        subtraction).
    bad_line_current : float
        Electron/s of that extra charge.
    flats : dict of str to numpy.ndarray
        Normalised (mean 1) flat field per filter: vignetting, pixel
        response and dust shadows.
    dust : dict of str to list of dict
        The dust shadows (``x``, ``y``, ``radius``, ``depth``) per filter
        (key ``'sensor'`` for those common to all filters).
    saturation : float
        Highest raw value (ADU): 65535, the 16-bit ceiling.
    set_temperature : float
        CCD set-point (Celsius).
    pixel_size : float
        Pixel size after binning (micron).
    seed : int
    """

    shape: tuple
    binning: int
    gain: float
    read_noise: float
    bias_level: float
    bias_structure: np.ndarray
    dark_current: np.ndarray
    dark_current_level: float
    hot_pixels: np.ndarray
    bad_columns: list
    bad_rows: list
    bad_line_current: float
    flats: dict = field(default_factory=dict)
    dust: dict = field(default_factory=dict)
    saturation: float = 65535.0
    set_temperature: float = -15.0
    pixel_size: float = 9.0
    seed: int = 0

    def __repr__(self):
        ny, nx = self.shape
        return (
            f"<DetectorTruth {nx}x{ny} bin{self.binning}: gain {self.gain:g} e-/ADU, read noise "
            f"{self.read_noise:g} e-, bias {self.bias_level:g} ADU, dark {self.dark_current_level:g} e-/s, "
            f"{len(self.hot_pixels)} hot pixels, bad columns {list(self.bad_columns)}, bad rows "
            f"{list(self.bad_rows)}, flats {sorted(self.flats)}, seed {self.seed}>"
        )

    @property
    def read_noise_adu(self):
        """Read noise in ADU."""
        return self.read_noise / self.gain

    @property
    def bias(self):
        """The expected bias frame (ADU): ``bias_level + bias_structure``."""
        return self.bias_level + self.bias_structure

    def expected_dark(self, exposure, *, include_bias=True):
        """
        The expected dark frame (ADU) for an exposure (seconds).

        The bad lines' extra charge is included at its mean (factor 1).
        """
        electrons = self.dark_current * float(exposure)
        electrons = electrons + self._bad_line_mask() * self.bad_line_current * float(exposure)
        adu = electrons / self.gain
        return adu + self.bias if include_bias else adu

    def _bad_line_mask(self):
        mask = np.zeros(self.shape, dtype=bool)
        if self.bad_columns:
            mask[:, list(self.bad_columns)] = True
        if self.bad_rows:
            mask[list(self.bad_rows), :] = True
        return mask

    @property
    def bad_line_mask(self):
        """Boolean image of the bad columns and rows."""
        return self._bad_line_mask()

    @property
    def hot_pixel_mask(self):
        """Boolean image of the hot pixels."""
        mask = np.zeros(self.shape, dtype=bool)
        if len(self.hot_pixels):
            mask[self.hot_pixels[:, 1].astype(int), self.hot_pixels[:, 0].astype(int)] = True
        return mask

    def scalars(self):
        """The scalar facts as plain Python values (for YAML)."""
        return {
            "shape": [int(n) for n in self.shape],
            "binning": int(self.binning),
            "gain": float(self.gain),
            "read_noise": float(self.read_noise),
            "bias_level": float(self.bias_level),
            "dark_current_level": float(self.dark_current_level),
            "hot_pixels": [[int(x), int(y), float(r)] for x, y, r in self.hot_pixels],
            "bad_columns": [int(c) for c in self.bad_columns],
            "bad_rows": [int(r) for r in self.bad_rows],
            "bad_line_current": float(self.bad_line_current),
            "dust": {k: [{kk: float(vv) for kk, vv in d.items()} for d in v] for k, v in self.dust.items()},
            "saturation": float(self.saturation),
            "set_temperature": float(self.set_temperature),
            "pixel_size": float(self.pixel_size),
            "seed": int(self.seed),
        }


@dataclass(repr=False)
class FrameTruth:
    """
    What is known about one simulated frame.

    Attributes
    ----------
    kind : {'light', 'bias', 'dark', 'flat'}
    index : int
        Position in its stack or night.
    exposure : float
        Seconds.
    date_obs : `~astropy.time.Time`
        Exposure start (UTC).
    header : `~astropy.io.fits.Header`
        The header written (MaxIm DL dialect).
    filter : str or None
    filename : str or None
        The file name (set for frames written to disk).
    ccd_temperature : float
        Celsius.
    cosmic_rays : numpy.ndarray
        Boolean image of pixels hit by cosmic rays.
    cosmic_ray_electrons : numpy.ndarray or None
        Charge deposited by cosmic rays (electrons), when kept.
    n_cosmic_rays : int
        Number of hits (a track counts once).
    dark_line_factors : dict
        Per bad column/row (``'c<i>'``/``'r<i>'``), the factor applied to
        ``bad_line_current`` in this frame.
    local_time : `datetime.datetime` or None
        Local clock time written in the file name (lights).
    pier_side : {'E', 'W'} or None
    wcs : `~astropy.wcs.WCS` or None
        The exact TAN WCS of a light (0-based pixel convention of astropy).
    pointing : `~astropy.coordinates.SkyCoord` or None
        Sky position of the reference pixel (the actual pointing, jitter
        included).
    rotation : float or None
        Position angle of the +y axis east of north (degrees).
    scale : float or None
        Pixel scale (arcsec/pixel).
    psf : PSF or None
    stars : `~astropy.table.QTable` or None
        ``x``, ``y`` (0-based pixel centre), ``flux`` (electrons in the
        exposure, before the flat field: what a correct calibration
        measures), ``ra``, ``dec``, ``mag``, ``synthetic`` (not from Tycho-2),
        ``saturated`` (a raw pixel within one pixel reached saturation).
    catalog_source : str or None
        Where the real stars came from.
    zero_point : float or None
        Magnitude giving one electron per second (before transparency).
    transparency : float
        Fraction of starlight that passes the atmosphere (1 when clear).
    sky_level : float
        Sky at the frame centre (electrons per pixel in the exposure,
        before the flat).
    sky_slope : tuple of float
        Sky gradient ``(d/dx, d/dy)`` (electrons per pixel per pixel).
    flat_level : float or None
        Illumination of a flat frame (electrons per pixel, before the flat).
    noiseless : numpy.ndarray or None
        Expected electrons per pixel (flat applied, dark included, no bias,
        no noise, no cosmic rays).
    bad_reason : str or None
        ``'defocused'``, ``'trailed'`` or ``'clouded'`` for a deliberately
        bad light; None for a good one.
    """

    kind: str
    index: int
    exposure: float
    date_obs: object
    header: object
    filter: str = None
    filename: str = None
    ccd_temperature: float = None
    cosmic_rays: np.ndarray = None
    cosmic_ray_electrons: np.ndarray = None
    n_cosmic_rays: int = 0
    dark_line_factors: dict = field(default_factory=dict)
    local_time: object = None
    pier_side: str = None
    wcs: object = None
    pointing: object = None
    rotation: float = None
    scale: float = None
    psf: PSF = None
    stars: object = None
    catalog_source: str = None
    zero_point: float = None
    transparency: float = 1.0
    sky_level: float = 0.0
    sky_slope: tuple = (0.0, 0.0)
    flat_level: float = None
    noiseless: np.ndarray = None
    bad_reason: str = None

    def __repr__(self):
        parts = [f"{self.kind} #{self.index}", f"{self.exposure:g} s"]
        if self.filter:
            parts.append(self.filter)
        if self.filename:
            parts.append(self.filename)
        if self.psf is not None:
            parts.append(f"FWHM {self.psf.fwhm:.2f} px")
        if self.stars is not None:
            parts.append(f"{len(self.stars)} stars")
        parts.append(f"{self.n_cosmic_rays} cosmic rays")
        if self.bad_reason:
            parts.append(f"bad: {self.bad_reason}")
        return f"<FrameTruth {', '.join(parts)}>"

    def scalars(self):
        """The scalar facts as plain Python values (for YAML)."""
        out = {
            "kind": self.kind,
            "index": int(self.index),
            "filename": self.filename,
            "exposure": float(self.exposure),
            "date_obs": self.date_obs.isot if self.date_obs is not None else None,
            "filter": self.filter,
            "ccd_temperature": None if self.ccd_temperature is None else float(self.ccd_temperature),
            "n_cosmic_rays": int(self.n_cosmic_rays),
            "n_cosmic_ray_pixels": int(self.cosmic_rays.sum()) if self.cosmic_rays is not None else 0,
            "dark_line_factors": {k: float(v) for k, v in self.dark_line_factors.items()},
            "bad_reason": self.bad_reason,
        }
        if self.kind == "flat":
            out["flat_level"] = float(self.flat_level)
        if self.kind == "light":
            out.update(
                {
                    "local_time": self.local_time.isoformat() if self.local_time is not None else None,
                    "pier_side": self.pier_side,
                    "pointing": [float(self.pointing.ra.deg), float(self.pointing.dec.deg)],
                    "rotation": float(self.rotation),
                    "scale": float(self.scale),
                    "psf": self.psf.to_dict(),
                    "catalog_source": self.catalog_source,
                    "zero_point": float(self.zero_point),
                    "transparency": float(self.transparency),
                    "sky_level": float(self.sky_level),
                    "sky_slope": [float(v) for v in self.sky_slope],
                    "n_stars": len(self.stars),
                    "wcs": self.wcs.to_header_string(relax=True) if self.wcs is not None else None,
                }
            )
        return out


@dataclass(repr=False)
class Truth:
    """
    The truth of one simulation call: the camera and every frame.

    Attribute look-ups fall through to `detector` (``truth.gain``,
    ``truth.bias_structure`` ...) and, when the call made exactly one frame,
    to that frame (``truth.stars``, ``truth.wcs``, ``truth.psf`` ...).
    ``truth[i]`` is the truth of frame ``i``.

    Attributes
    ----------
    detector : DetectorTruth
    frames : list of FrameTruth
    """

    detector: DetectorTruth
    frames: list = field(default_factory=list)

    def __getattr__(self, name):
        if name.startswith("_") or name in ("detector", "frames"):
            raise AttributeError(name)
        detector = self.__dict__.get("detector")
        if detector is not None and name in {f.name for f in fields(detector)} | {
            "bias",
            "read_noise_adu",
            "bad_line_mask",
            "hot_pixel_mask",
            "expected_dark",
        }:
            return getattr(detector, name)
        frames = self.__dict__.get("frames", [])
        if len(frames) == 1 and hasattr(frames[0], name):
            return getattr(frames[0], name)
        raise AttributeError(
            f"Truth has no attribute {name!r} (per-frame facts are in truth.frames[i] when a call makes "
            "several frames)"
        )

    def __repr__(self):
        return f"<Truth of {len(self.frames)} frame(s): {self.detector!r}>"

    def __getitem__(self, index):
        return self.frames[index]

    def __len__(self):
        return len(self.frames)

    def __iter__(self):
        return iter(self.frames)
