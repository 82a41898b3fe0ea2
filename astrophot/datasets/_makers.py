# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""In-memory simulated frames with known truth: bias, dark and flat stacks, and lights."""

import astropy.units as u
import numpy as np
from astropy.table import QTable, vstack
from astropy.time import Time, TimeDelta
from astropy.wcs import WCS

from astrophot.frames import RawFrame

from . import _model
from ._headers import EGAIN_TELESCOPES, make_header, telescope_info
from ._model import rng_for
from ._truth import PSF, FrameTruth, Truth
from .catalog import field_stars, resolve_field

__all__ = [
    "make_bias_stack",
    "make_dark_stack",
    "make_flat_stack",
    "make_raw_frame",
    "make_wcs",
    "zero_point",
]

#: Zero point (magnitude giving 1 electron/s) of a 106 mm aperture through a
#: broad-band filter: a V = 10 star gives about 2e5 electrons in 300 s.
BASE_ZERO_POINT = 17.06
#: Offsets from the broad-band zero point by filter (narrow bands pass ~1/16).
FILTER_ZERO_POINT_OFFSETS = {
    "luminance": 0.7,
    "lum": 0.7,
    "clear": 0.7,
    "l": 0.7,
    "ha": -3.0,
    "oiii": -3.2,
    "sii": -3.3,
}
#: Default night-sky surface brightness (mag/arcsec^2, broad band, some moon).
SKY_BRIGHTNESS = 20.5

DEFAULT_DATE = "2021-10-05"


def zero_point(filter_name, aperture_mm=106.0):
    """
    Magnitude giving one electron per second for a filter and aperture.

    Parameters
    ----------
    filter_name : str
        Narrow-band filters (Ha, OIII, SII) pass about 1/16 of a broad band;
        Luminance/Clear about twice as much.
    aperture_mm : float
        Telescope aperture; the collecting area scales as its square.

    Returns
    -------
    float

    Examples
    --------
    >>> from astrophot.datasets import zero_point
    >>> round(float(300 * 10 ** (-0.4 * (10 - zero_point('Red')))), -3)  # e- from V=10 in 300 s
    200000.0
    """
    offset = FILTER_ZERO_POINT_OFFSETS.get(str(filter_name).strip().lower(), 0.0)
    aperture = 106.0 if aperture_mm is None else float(aperture_mm)
    return BASE_ZERO_POINT + offset + 5.0 * np.log10(aperture / 106.0)


def _seconds(value, what="exposure"):
    if isinstance(value, u.Quantity):
        value = value.to_value(u.s)
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a non-negative time, not {value!r}")
    return value


def _plain(value, unit):
    if isinstance(value, u.Quantity):
        if unit is u.deg_C:
            return float(value.to_value(u.deg_C, equivalencies=u.temperature()))
        return float(value.to_value(unit))
    return float(value)


def make_wcs(center, shape, scale, rotation=0.0):
    """
    A TAN WCS centred on a frame.

    Parameters
    ----------
    center : `~astropy.coordinates.SkyCoord`
        Sky position of the frame centre (the reference pixel).
    shape : tuple of int
        ``(ny, nx)``.
    scale : float
        Arcsec per pixel.
    rotation : float
        Position angle of the +y axis, east of north (degrees); 0 puts north
        up and east left.

    Returns
    -------
    `~astropy.wcs.WCS`
    """
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [center.icrs.ra.deg, center.icrs.dec.deg]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    s = scale / 3600.0
    th = np.radians(rotation)
    w.wcs.cd = [[-s * np.cos(th), s * np.sin(th)], [s * np.sin(th), s * np.cos(th)]]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    w.pixel_shape = (nx, ny)
    w.wcs.set()
    return w


def _detector(
    detector,
    *,
    shape,
    binning,
    gain,
    read_noise,
    bias_level,
    dark_current,
    hot_pixels,
    bad_columns,
    bad_rows,
    set_temperature,
    pixel_size,
    seed,
):
    if detector is not None:
        return detector
    return _model.make_detector(
        shape,
        binning=binning,
        gain=_plain(gain, u.electron / u.adu),
        read_noise=_plain(read_noise, u.electron),
        bias_level=_plain(bias_level, u.adu),
        dark_current=_plain(dark_current, u.electron / u.s),
        hot_pixels=hot_pixels,
        bad_columns=bad_columns,
        bad_rows=bad_rows,
        set_temperature=_plain(set_temperature, u.deg_C),
        pixel_size=pixel_size * binning,
        seed=seed,
    )


def _n_cosmic(rate, shape, exposure, rng):
    """Poisson number of hits: ``rate`` per megapixel per 100 s."""
    mean = rate * (shape[0] * shape[1] / 1e6) * (exposure / 100.0)
    return int(rng.poisson(mean)) if mean > 0 else 0


def _expose(detector, signal, exposure, rng, *, cosmic_ray_rate, kind):
    """Noise, dark, defects and read-out. Returns (uint16 data, cosmic-ray deposit, n hits, line factors)."""
    dark = detector.dark_current * exposure
    extra, factors = _model.line_charge(detector, exposure, rng) if exposure > 0 else (0.0, {})
    expected = signal + dark + extra
    electrons = rng.poisson(np.clip(expected, 0, None)).astype(np.float64)
    n_cr = _n_cosmic(cosmic_ray_rate, detector.shape, exposure, rng) if cosmic_ray_rate else 0
    deposit = _model.cosmic_rays(detector.shape, n_cr, rng) if n_cr else np.zeros(detector.shape)
    data = _model.read_out(electrons + deposit, detector, rng)
    return data, deposit, n_cr, factors, expected


def _frame_truth(kind, index, exposure, date, header, data, deposit, n_cr, factors, detector, **kw):
    return FrameTruth(
        kind=kind,
        index=index,
        exposure=exposure,
        date_obs=date,
        header=header,
        ccd_temperature=header["CCD-TEMP"],
        cosmic_rays=deposit > 0,
        cosmic_ray_electrons=deposit if n_cr else None,
        n_cosmic_rays=n_cr,
        dark_line_factors=factors,
        **kw,
    )


def _ccd_temperature(detector, rng):
    return round(detector.set_temperature + float(rng.normal(0.0, 0.05)), 3)


def _calibration_frame(
    kind,
    detector,
    info,
    *,
    index,
    exposure,
    date,
    seed,
    cosmic_ray_rate,
    filter=None,
    level=None,
    egain=None,
    pedestal=0,
):
    rng = rng_for(seed, "frame", kind, filter or "", index)
    signal = 0.0
    if kind == "flat":
        signal = level * _model.flat_field(detector, filter)
    data, deposit, n_cr, factors, expected = _expose(
        detector, signal, exposure, rng, cosmic_ray_rate=cosmic_ray_rate, kind=kind
    )
    header = make_header(
        kind,
        info=info,
        binning=detector.binning,
        exposure=exposure,
        date_obs=date,
        ccd_temperature=_ccd_temperature(detector, rng),
        filter=filter,
        egain=egain,
        data=data,
        pedestal=pedestal,
    )
    truth = _frame_truth(
        kind,
        index,
        exposure,
        date,
        header,
        data,
        deposit,
        n_cr,
        factors,
        detector,
        filter=filter,
        flat_level=level,
    )
    return data, truth


def _egain(info, detector, write_gain):
    if write_gain is None:
        write_gain = info.id in EGAIN_TELESCOPES
    return detector.gain if write_gain else None


def _date(date, default_hour):
    if isinstance(date, Time):
        return date.utc
    text = str(date or DEFAULT_DATE)
    if "T" in text:
        return Time(text, scale="utc")
    return Time(f"{text}T{default_hour}", scale="utc")


def _raw(data, header):
    return RawFrame(data, unit=u.adu, meta=header.copy())


def make_bias_stack(
    n=5,
    *,
    shape=(200, 300),
    bias_level=1000.0,
    read_noise=10.0,
    gain=1.5,
    seed=0,
    telescope="T20",
    binning=1,
    date=None,
    detector=None,
    **detector_options,
):
    """
    Simulated raw bias frames with known bias level, structure and read noise.

    Parameters
    ----------
    n : int
        Number of frames.
    shape : tuple of int
        ``(ny, nx)``.
    bias_level : float or `~astropy.units.Quantity`
        Mean bias (ADU).
    read_noise : float or `~astropy.units.Quantity`
        Electrons.
    gain : float or `~astropy.units.Quantity`
        Electron/ADU.
    seed : int
        The same seed (and detector options) gives the same camera in every
        maker, so bias, dark, flat and light stacks can be combined.
    telescope : str
        iTelescope telescope whose header facts are written.
    binning : int
    date : str or `~astropy.time.Time`, optional
        Night (``'YYYY-MM-DD'``) or start time.
    detector : DetectorTruth, optional
        Reuse a camera (then the detector options are ignored).
    **detector_options
        Passed to `make_detector` (``dark_current``, ``hot_pixels``,
        ``bad_columns``, ``bad_rows``, ``set_temperature`` ...).

    Returns
    -------
    frames : list of `~astrophot.RawFrame`
        uint16 ADU with MaxIm DL headers (``IMAGETYP='Bias Frame'``).
    truth : Truth

    See Also
    --------
    make_dark_stack, make_flat_stack, make_raw_frame, simulate_night

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot.datasets import make_bias_stack
    >>> frames, truth = make_bias_stack(3, shape=(50, 60), seed=1)
    >>> frames[0].header['IMAGETYP'], frames[0].data.dtype
    ('Bias Frame', dtype('uint16'))
    >>> diff = frames[0].data.astype(float) - frames[1].data
    >>> bool(abs(np.std(diff) / np.sqrt(2) - truth.read_noise_adu) < 0.3)
    True
    """
    info = telescope_info(telescope)
    det = _stack_detector(
        detector, info, shape, binning, gain, read_noise, bias_level, seed, detector_options
    )
    start = _date(date, "12:00:00")
    return _calibration_stack(
        "bias", n, det, info, seed, exposure=0.0, start=start, gap=15.0, cosmic_ray_rate=0.0
    )


def _stack_detector(detector, info, shape, binning, gain, read_noise, bias_level, seed, options):
    """The detector of a calibration stack: ``detector`` if given, else one made from these values."""
    return _detector(
        detector,
        shape=shape,
        binning=binning,
        gain=gain,
        read_noise=read_noise,
        bias_level=bias_level,
        seed=seed,
        pixel_size=info.pixel_size or 9.0,
        **_detector_defaults(info, options),
    )


def _calibration_stack(kind, n, det, info, seed, *, exposure, start, gap, cosmic_ray_rate, **extra):
    """``n`` raw calibration frames of one kind, ``gap`` seconds apart after each exposure."""
    frames, truths = [], []
    for i in range(int(n)):
        data, truth = _calibration_frame(
            kind,
            det,
            info,
            index=i,
            exposure=exposure,
            date=start + TimeDelta((exposure + gap) * i, format="sec"),
            seed=seed,
            cosmic_ray_rate=cosmic_ray_rate,
            egain=_egain(info, det, None),
            **extra,
        )
        frames.append(_raw(data, truth.header))
        truths.append(truth)
    return frames, Truth(det, truths)


def _detector_defaults(info, options):
    out = {
        "dark_current": 0.05,
        "hot_pixels": None,
        "bad_columns": None,
        "bad_rows": None,
        "set_temperature": info.set_temperature if info.set_temperature is not None else -15.0,
    }
    unknown = set(options) - set(out)
    if unknown:
        raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(unknown))}")
    out.update(options)
    return out


def make_dark_stack(
    n=5,
    *,
    exposure=300.0,
    shape=(200, 300),
    dark_current=0.05,
    hot_pixels=None,
    bad_columns=None,
    bad_rows=None,
    bias_level=1000.0,
    read_noise=10.0,
    gain=1.5,
    cosmic_ray_rate=20.0,
    seed=0,
    telescope="T20",
    binning=1,
    date=None,
    detector=None,
    set_temperature=None,
):
    """
    Simulated raw dark frames with known dark current, hot pixels and bad lines.

    Parameters
    ----------
    n : int
        Number of frames.
    exposure : float or `~astropy.units.Quantity`
        Seconds.
    shape : tuple of int
    dark_current : float
        Normal pixels (electron/s).
    hot_pixels : sequence or None
        ``(x, y)`` or ``(x, y, rate)``, 0-based; None draws them.
    bad_columns, bad_rows : sequence of int or None
        0-based; None draws two columns and one row.
    bias_level, read_noise, gain : float
        As in `make_bias_stack`.
    cosmic_ray_rate : float
        Hits per megapixel per 100 s (0 for none).
    seed, telescope, binning, date, detector
        As in `make_bias_stack`.
    set_temperature : float, optional
        Celsius; the telescope's by default.

    Returns
    -------
    frames : list of `~astrophot.RawFrame`
        ``IMAGETYP='Dark Frame'``; the bias is still in (as the camera
        writes it).
    truth : Truth

    See Also
    --------
    make_bias_stack, make_flat_stack

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot.datasets import make_dark_stack
    >>> frames, truth = make_dark_stack(2, shape=(40, 50), hot_pixels=[(10, 20, 30.0)], seed=2)
    >>> frames[0].exposure_time
    <Quantity 300. s>
    >>> x, y, rate = truth.hot_pixels[0]
    >>> float(rate * 300 / truth.gain)  # hot-pixel signal in ADU
    6000.0
    """
    info = telescope_info(telescope)
    opts = {
        "dark_current": dark_current,
        "hot_pixels": hot_pixels,
        "bad_columns": bad_columns,
        "bad_rows": bad_rows,
    }
    if set_temperature is not None:
        opts["set_temperature"] = set_temperature
    det = _stack_detector(detector, info, shape, binning, gain, read_noise, bias_level, seed, opts)
    exposure = _seconds(exposure)
    start = _date(date, "12:30:00")
    return _calibration_stack(
        "dark", n, det, info, seed, exposure=exposure, start=start, gap=15.0, cosmic_ray_rate=cosmic_ray_rate
    )


def make_flat_stack(
    n=5,
    *,
    filter="Red",
    exposure=10.0,
    level=20000.0,
    shape=(200, 300),
    bias_level=1000.0,
    read_noise=10.0,
    gain=1.5,
    cosmic_ray_rate=20.0,
    seed=0,
    telescope="T20",
    binning=1,
    date=None,
    detector=None,
    **detector_options,
):
    """
    Simulated raw flat-field frames with a known flat (vignetting, dust, pixel response).

    Parameters
    ----------
    n : int
    filter : str
    exposure : float
        Seconds.
    level : float
        Mean illumination (ADU above bias, before the flat's fall-off).
    shape, bias_level, read_noise, gain, cosmic_ray_rate, seed, telescope, binning, date, detector
        As in `make_dark_stack`.
    **detector_options
        Passed to `make_detector`.

    Returns
    -------
    frames : list of `~astrophot.RawFrame`
        ``IMAGETYP='Flat Field'``, with FILTER.
    truth : Truth
        ``truth.flats[filter]`` is the normalised flat; each frame's
        ``flat_level`` is the illumination in electrons.

    See Also
    --------
    make_bias_stack, make_dark_stack

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot.datasets import make_flat_stack
    >>> frames, truth = make_flat_stack(2, filter='Ha', shape=(60, 80), seed=3)
    >>> frames[0].filter, round(float(truth.flats['Ha'].mean()), 6)
    ('Ha', 1.0)
    """
    info = telescope_info(telescope)
    det = _stack_detector(
        detector, info, shape, binning, gain, read_noise, bias_level, seed, detector_options
    )
    exposure = _seconds(exposure)
    start = _date(date, "01:30:00")
    return _calibration_stack(
        "flat",
        n,
        det,
        info,
        seed,
        exposure=exposure,
        start=start,
        gap=10.0,
        cosmic_ray_rate=cosmic_ray_rate,
        filter=str(filter),
        level=float(level) * det.gain,
    )


def synthetic_stars(center, radius_deg, *, density, mag_range=(12.0, 16.0), seed=0):
    """Faint stars (not in any catalogue) uniform on a cap: QTable ra, dec, mag."""
    rng = rng_for(seed, "synthetic")
    area = 2 * np.pi * (1 - np.cos(np.radians(radius_deg))) * (180 / np.pi) ** 2
    n = int(rng.poisson(density * area)) if density > 0 else 0
    # uniform on the cap around the pole, then rotated to the centre
    cos_r = np.cos(np.radians(radius_deg))
    z = rng.uniform(cos_r, 1.0, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    dist = np.degrees(np.arccos(z))
    pos = center.directional_offset_by(phi * u.rad, dist * u.deg) if n else None
    m1, m2 = mag_range
    k = 0.3
    uu = rng.uniform(0, 1, n)
    mags = np.log10(10 ** (k * m1) + uu * (10 ** (k * m2) - 10 ** (k * m1))) / k
    table = QTable()
    table["ra"] = (pos.ra.deg if n else np.zeros(0)) * u.deg
    table["dec"] = (pos.dec.deg if n else np.zeros(0)) * u.deg
    table["mag"] = np.round(mags, 3)
    return table


def sky_stars(center, radius_deg, *, synthetic_density, seed, mag_range=(12.0, 16.0)):
    """Real (Tycho-2) stars plus optional synthetic faint ones: ra, dec, mag, synthetic."""
    real, source = field_stars(center, radius_deg)
    real = QTable(real)
    real["synthetic"] = np.zeros(len(real), dtype=bool)
    if synthetic_density:
        fake = synthetic_stars(center, radius_deg, density=synthetic_density, mag_range=mag_range, seed=seed)
        fake["synthetic"] = np.ones(len(fake), dtype=bool)
        real = vstack([real, fake])
    return real, source


def expose_light(
    detector,
    info,
    *,
    catalog,
    catalog_source,
    pointing,
    target_coord,
    rotation,
    scale,
    psf,
    exposure,
    filter,
    date,
    index,
    seed,
    sky_brightness=SKY_BRIGHTNESS,
    sky_slope=None,
    transparency=1.0,
    cosmic_ray_rate=20.0,
    egain=None,
    pointing_keywords=None,
    bad_reason=None,
    sky_factor=1.0,
    keep_noiseless=True,
    pedestal=0,
):
    """One light frame of ``catalog`` through ``detector``: (uint16 data, FrameTruth)."""
    ny, nx = detector.shape
    rng = rng_for(seed, "frame", "light", filter, index)
    wcs = make_wcs(pointing, detector.shape, scale, rotation)
    zp = zero_point(filter, info.aperture)
    x, y = wcs.all_world2pix(catalog["ra"].to_value(u.deg), catalog["dec"].to_value(u.deg), 0)
    margin = int(np.ceil(4.0 * psf.fwhm_major)) + 2
    inside = (x > -margin) & (x < nx - 1 + margin) & (y > -margin) & (y < ny - 1 + margin)
    inside &= np.isfinite(x) & np.isfinite(y)
    stars = QTable()
    stars["x"] = x[inside]
    stars["y"] = y[inside]
    mags = np.asarray(catalog["mag"], dtype=np.float64)[inside]
    stars["flux"] = exposure * transparency * 10 ** (-0.4 * (mags - zp))
    stars["ra"] = catalog["ra"][inside]
    stars["dec"] = catalog["dec"][inside]
    stars["mag"] = mags
    stars["synthetic"] = np.asarray(catalog["synthetic"], dtype=bool)[inside]
    stars["x"].info.description = "0-based column of the star centre"
    stars["y"].info.description = "0-based row of the star centre"
    stars["flux"].info.description = "electrons in the exposure before the flat field"
    star_image = _model.render_stars(detector.shape, stars["x"], stars["y"], stars["flux"], psf)
    sky_level = sky_factor * exposure * scale**2 * 10 ** (-0.4 * (sky_brightness - zp))
    if sky_slope is None:
        srng = rng_for(seed, "sky", filter, index)
        angle = srng.uniform(0, 2 * np.pi)
        frac = srng.uniform(0.02, 0.05)
        per_pixel = frac * sky_level / max(nx, ny)
        sky_slope = (per_pixel * np.cos(angle), per_pixel * np.sin(angle))
    sky = _model.sky_image(detector.shape, sky_level, sky_slope)
    flat = _model.flat_field(detector, filter)
    signal = flat * (star_image + sky)
    data, deposit, n_cr, factors, expected = _expose(
        detector, signal, exposure, rng, cosmic_ray_rate=cosmic_ray_rate, kind="light"
    )
    ix = np.clip(np.rint(stars["x"]).astype(int), 0, nx - 1)
    iy = np.clip(np.rint(stars["y"]).astype(int), 0, ny - 1)
    saturated = np.zeros(len(stars), dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            saturated |= data[np.clip(iy + dy, 0, ny - 1), np.clip(ix + dx, 0, nx - 1)] >= detector.saturation
    stars["saturated"] = saturated
    header = make_header(
        "light",
        info=info,
        binning=detector.binning,
        exposure=exposure,
        date_obs=date,
        ccd_temperature=_ccd_temperature(detector, rng),
        filter=filter,
        target_coord=target_coord,
        egain=egain,
        pointing_keywords=pointing_keywords,
        data=data,
        pedestal=pedestal,
    )
    truth = _frame_truth(
        "light",
        index,
        exposure,
        date,
        header,
        data,
        deposit,
        n_cr,
        factors,
        detector,
        filter=filter,
        wcs=wcs,
        pointing=pointing,
        rotation=float(rotation),
        scale=float(scale),
        psf=psf,
        stars=stars,
        catalog_source=catalog_source,
        zero_point=float(zp),
        transparency=float(transparency),
        sky_level=float(sky_level),
        sky_slope=tuple(float(v) for v in sky_slope),
        noiseless=expected.astype(np.float32) if keep_noiseless else None,
        bad_reason=bad_reason,
    )
    return data, truth


def make_raw_frame(
    *,
    target="M31",
    shape=(200, 300),
    scale=3.5,
    exposure=300.0,
    filter="Red",
    rotation=0.0,
    fwhm=2.5,
    beta=3.0,
    ellipticity=0.0,
    theta=0.0,
    sky_brightness=SKY_BRIGHTNESS,
    sky_slope=None,
    transparency=1.0,
    pointing_jitter=5.0,
    cosmic_ray_rate=20.0,
    synthetic_density=3000.0,
    bias_level=1000.0,
    read_noise=10.0,
    gain=1.5,
    seed=0,
    telescope="T20",
    binning=1,
    date=None,
    detector=None,
    **detector_options,
):
    """
    A simulated raw light frame of real (Tycho-2) stars with known truth.

    Parameters
    ----------
    target : str, `~astropy.coordinates.SkyCoord` or tuple of float
        A `demo_fields` name, or a position (stars then come from the
        installed astrometry.net index files).
    shape : tuple of int
        ``(ny, nx)``.
    scale : float or `~astropy.units.Quantity`
        Arcsec per pixel (3.5 is T20 unbinned).
    exposure : float or `~astropy.units.Quantity`
        Seconds.
    filter : str
        Sets the zero point (see `zero_point`) and the flat field.
    rotation : float
        Position angle of +y east of north (degrees).
    fwhm, beta, ellipticity, theta : float
        Moffat PSF (pixels, degrees); see `PSF`.
    sky_brightness : float
        Mag/arcsec^2.
    sky_slope : tuple of float, optional
        ``(d/dx, d/dy)`` electrons per pixel per pixel; random 2-5 % across
        the frame by default.
    transparency : float
        Fraction of starlight transmitted.
    pointing_jitter : float
        Rms pointing error (arcsec) around ``target``.
    cosmic_ray_rate : float
        Hits per megapixel per 100 s.
    synthetic_density : float
        Faint synthetic stars (V 12-16) per square degree, flagged
        ``synthetic`` in the truth; 0 for Tycho-2 stars only.
    bias_level, read_noise, gain, seed, telescope, binning, date, detector, **detector_options
        As in `make_bias_stack`.

    Returns
    -------
    frame : `~astrophot.RawFrame`
        uint16 ADU, ``IMAGETYP='Light Frame'``, OBJCTRA/OBJCTDEC of the
        target, no WCS (as the camera writes it).
    truth : Truth
        ``truth.wcs``, ``truth.stars``, ``truth.psf``, ``truth.cosmic_rays``,
        ``truth.noiseless`` and the detector.

    See Also
    --------
    simulate_night, make_bias_stack

    Examples
    --------
    >>> from astrophot.datasets import make_raw_frame
    >>> frame, truth = make_raw_frame(shape=(100, 120), seed=4)
    >>> frame.header['IMAGETYP'], truth.psf.fwhm
    ('Light Frame', 2.5)
    >>> len(truth.stars) > 10, truth.stars.colnames[:3]
    (True, ['x', 'y', 'flux'])
    """
    info = telescope_info(telescope)
    det = _detector(
        detector,
        shape=shape,
        binning=binning,
        gain=gain,
        read_noise=read_noise,
        bias_level=bias_level,
        seed=seed,
        pixel_size=info.pixel_size or 9.0,
        **_detector_defaults(info, detector_options),
    )
    ny, nx = det.shape
    scale = _plain(scale, u.arcsec)
    exposure = _seconds(exposure)
    centre = resolve_field(target)
    rng = rng_for(seed, "night", "pointing")
    jitter = rng.normal(0.0, float(pointing_jitter), 2) * u.arcsec
    pointing = centre.spherical_offsets_by(jitter[0], jitter[1])
    radius = 0.5 * np.hypot(nx, ny) * scale / 3600.0 + 4.0 * fwhm * scale / 3600.0 + 0.01
    catalog, source = sky_stars(pointing, radius, synthetic_density=synthetic_density, seed=seed)
    psf = PSF(float(fwhm), float(beta), float(ellipticity), float(theta))
    start = _date(date, "04:00:00")
    data, truth = expose_light(
        det,
        info,
        catalog=catalog,
        catalog_source=source,
        pointing=pointing,
        target_coord=centre,
        rotation=float(rotation),
        scale=scale,
        psf=psf,
        exposure=exposure,
        filter=str(filter),
        date=start,
        index=0,
        seed=seed,
        sky_brightness=sky_brightness,
        sky_slope=sky_slope,
        transparency=transparency,
        cosmic_ray_rate=cosmic_ray_rate,
        egain=_egain(info, det, None),
    )
    return _raw(data, truth.header), Truth(det, [truth])
