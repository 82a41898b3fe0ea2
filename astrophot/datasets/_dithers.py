# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Solved frames of one field for the stacks and mosaics: dithers and a 2x2 mosaic.

Built from the simulator's pieces (`make_wcs`, `render_stars`, `cosmic_rays`,
`sky_image`, `synthetic_stars`): the frames are calibrated and plate-solved
already (`~astrophot.SolvedFrame` in electrons with their exact WCS and an
uncertainty), so the combination stages can be tested against known stars,
sky, noise, cosmic rays, a satellite trail and a nebula.
"""

from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.nddata import StdDevUncertainty

from . import _model
from ._makers import make_wcs, synthetic_stars
from ._truth import PSF

__all__ = ["DitherTruth", "make_dithered_frames", "make_mosaic_frames"]

_CENTER = SkyCoord(83.82 * u.deg, -5.39 * u.deg)


@dataclass(repr=False)
class DitherTruth:
    """
    What produced simulated solved frames.

    Attributes
    ----------
    wcs : list of `~astropy.wcs.WCS`
        Exact WCS of each frame.
    exposure : ndarray
        Seconds.
    psf : list of `~astrophot.datasets.PSF`
    transparency : ndarray
        Fraction of the star and nebula light that reached each frame.
    sky_rate : ndarray
        Sky level at the frame centre (electrons per second per pixel).
    sky_slope : list of (float, float)
        Sky gradient along x and y (electrons per second per pixel per pixel).
    stars : `~astropy.table.QTable`
        ``ra``, ``dec``, ``rate`` (electrons per second above the atmosphere).
    cosmic_rays : list of ndarray of bool
        Pixels of each frame hit by a cosmic ray.
    trail : list of ndarray of bool or None
        Pixels of each frame crossed by a satellite trail (None: no trail).
    read_noise : float
        Electrons.
    nebula : dict or None
        ``ra``, ``dec`` (degrees), ``sigma`` (arcsec), ``rate`` (total
        electrons per second above the atmosphere) of a Gaussian nebula.
    center : `~astropy.coordinates.SkyCoord`
        Field centre.
    scale : float
        Arcsec per pixel.
    names : list of str
        The frames' file names.
    expected : list of ndarray
        Noiseless electrons of each frame (stars, sky, nebula; no cosmic rays or trail).
    outliers : list of ndarray
        Electrons the cosmic rays and the trail added to each frame (``data - outliers``
        is the frame without them, with the same noise).
    """

    wcs: list
    exposure: np.ndarray
    psf: list
    transparency: np.ndarray
    sky_rate: np.ndarray
    sky_slope: list
    stars: object
    cosmic_rays: list
    trail: list
    read_noise: float
    center: object
    scale: float
    nebula: dict = None
    names: list = field(default_factory=list)
    expected: list = field(default_factory=list)
    outliers: list = field(default_factory=list)


def _per_frame(value, n, what):
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{what} must be positive numbers (one, or one per frame), not {value!r}")
    return arr


def _trail_mask(shape, rng, width=2.0):
    """A straight satellite trail across the whole frame (bool mask)."""
    ny, nx = shape
    y0, y1 = rng.uniform(0.2, 0.8, 2) * ny
    yy, xx = np.mgrid[0:ny, 0:nx]
    # distance of each pixel centre from the line through (0, y0) and (nx, y1)
    dx, dy = nx, y1 - y0
    dist = np.abs(dy * xx - dx * (yy - y0)) / np.hypot(dx, dy)
    return dist <= width / 2.0


def _nebula_image(wcs, shape, nebula, scale):
    """Electrons per second per pixel of a Gaussian nebula."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = wcs.pixel_to_world(xx, yy)
    centre = SkyCoord(nebula["ra"] * u.deg, nebula["dec"] * u.deg)
    r = sky.separation(centre).to_value(u.arcsec)
    sigma_px = nebula["sigma"] / scale
    return nebula["rate"] / (2 * np.pi * sigma_px**2) * np.exp(-0.5 * (r / nebula["sigma"]) ** 2)


def _expose(
    wcs, shape, stars, *, exposure, psf, transparency, sky_rate, sky_slope, read_noise, rng, extra=None
):
    """Electrons of one frame and their noiseless expectation."""
    x, y = wcs.all_world2pix(stars["ra"].to_value(u.deg), stars["dec"].to_value(u.deg), 0)
    flux = np.asarray(stars["rate"]) * exposure * transparency
    image = _model.render_stars(shape, x, y, flux, psf)
    image += _model.sky_image(shape, sky_rate * exposure, (sky_slope[0] * exposure, sky_slope[1] * exposure))
    if extra is not None:
        image += extra * exposure * transparency
    data = rng.poisson(image).astype(np.float64) + rng.normal(0.0, read_noise, shape)
    return data, image


def _solved(data, expected, read_noise, wcs, exposure, name, filter_name, target):
    from astrophot.frames import SolvedFrame

    header = wcs.to_header(relax=True)
    header["EXPTIME"] = (float(exposure), "seconds")
    header["FILTER"] = filter_name
    header["OBJECT"] = target
    header["GAIN"] = 1.0
    header["RDNOISE"] = read_noise
    frame = SolvedFrame(
        data.astype(np.float32),
        unit=u.electron,
        uncertainty=StdDevUncertainty(np.sqrt(expected + read_noise**2).astype(np.float32)),
        wcs=wcs,
        meta=header,
        solution={"backend": "simulated", "rms_arcsec": 0.0},
    )
    frame.source_path = name
    return frame


def make_dithered_frames(
    n_frames=8,
    *,
    shape=(160, 200),
    scale=1.5,
    dither=6.0,
    rotation=None,
    exposure=60.0,
    fwhm=2.5,
    transparency=1.0,
    sky_rate=2.0,
    read_noise=8.0,
    cosmic_rays=20.0,
    satellite=0,
    star_density=3000.0,
    mag_range=(12.0, 17.0),
    filter_name="Luminance",
    seed=0,
):
    """
    Dithered, plate-solved frames of one field with known truth.

    Parameters
    ----------
    n_frames : int
    shape : tuple of int
        ``(ny, nx)`` of each frame.
    scale : float
        Arcsec per pixel.
    dither : float
        Largest offset of a pointing from the field centre (pixels, random).
    rotation : float, optional
        Position angle of every frame (degrees); random within +/-0.5 by
        default. ``dither=0, rotation=0`` puts every frame on one pixel grid.
    exposure, fwhm, transparency, sky_rate : float or sequence
        Per frame (one value for all, or one each): seconds, PSF FWHM
        (pixels), fraction of the light through the atmosphere, sky
        (electrons per second per pixel).
    read_noise : float
        Electrons.
    cosmic_rays : float
        Mean number of cosmic rays in a 60 s frame (Poisson, proportional to
        the exposure time).
    satellite : int or None
        The frame crossed by a satellite trail (None: none).
    star_density : float
        Stars per square degree (synthetic).
    mag_range : (float, float)
        Their magnitudes; magnitude 22 gives 1 electron per second.
    filter_name : str
    seed : int

    Returns
    -------
    frames : list of `~astrophot.SolvedFrame`
        In electrons, with ``EXPTIME``, ``FILTER`` and ``OBJECT``.
    truth : `DitherTruth`

    Examples
    --------
    >>> from astrophot.datasets import make_dithered_frames
    >>> frames, truth = make_dithered_frames(3, shape=(60, 80), seed=1)
    >>> len(frames), frames[0].shape, int(truth.trail[0].sum() > 0)
    (3, (60, 80), 1)
    """
    n = int(n_frames)
    exposure = _per_frame(exposure, n, "exposure")
    fwhm = _per_frame(fwhm, n, "fwhm")
    transparency = _per_frame(transparency, n, "transparency")
    sky_rate = _per_frame(sky_rate, n, "sky_rate")
    radius = 0.75 * np.hypot(*shape) * scale / 3600.0
    stars = synthetic_stars(_CENTER, radius, density=star_density, mag_range=tuple(mag_range), seed=seed)
    stars["rate"] = 10 ** (-0.4 * (np.asarray(stars["mag"]) - 22.0))
    rng = _model.rng_for(seed, "frame", "dithers")
    frames, wcss, psfs, crs, trails, noiseless, outliers = [], [], [], [], [], [], []
    for i in range(n):
        offset = rng.uniform(-dither, dither, 2) * scale / 3600.0
        centre = _CENTER.spherical_offsets_by(offset[0] * u.deg, offset[1] * u.deg)
        angle = rng.uniform(-0.5, 0.5)
        wcs = make_wcs(centre, shape, scale, rotation=angle if rotation is None else float(rotation))
        psf = PSF(fwhm=float(fwhm[i]), beta=3.0)
        data, expected = _expose(
            wcs,
            shape,
            stars,
            exposure=exposure[i],
            psf=psf,
            transparency=transparency[i],
            sky_rate=sky_rate[i],
            sky_slope=(0.0, 0.0),
            read_noise=read_noise,
            rng=rng,
        )
        n_cr = rng.poisson(cosmic_rays * exposure[i] / 60.0)
        deposit = _model.cosmic_rays(shape, n_cr, rng)
        added = np.array(deposit, dtype=np.float64)
        trail = None
        if satellite is not None and i == int(satellite):
            trail = _trail_mask(shape, rng)
            added[trail] += 50.0 * np.sqrt(sky_rate[i] * exposure[i] + read_noise**2)
        data += added
        frames.append(
            _solved(data, expected, read_noise, wcs, exposure[i], f"dither_{i:02d}.fits", filter_name, "M42")
        )
        wcss.append(wcs)
        psfs.append(psf)
        crs.append(deposit > 0)
        trails.append(trail)
        noiseless.append(expected.astype(np.float32))
        outliers.append(added.astype(np.float32))
    truth = DitherTruth(
        wcs=wcss,
        exposure=exposure,
        psf=psfs,
        transparency=transparency,
        sky_rate=sky_rate,
        sky_slope=[(0.0, 0.0)] * n,
        stars=stars,
        cosmic_rays=crs,
        trail=trails,
        read_noise=float(read_noise),
        center=_CENTER,
        scale=float(scale),
        names=[f.source_path for f in frames],
        expected=noiseless,
        outliers=outliers,
    )
    return frames, truth


def make_mosaic_frames(
    *,
    shape=(120, 160),
    scale=2.0,
    overlap=0.25,
    exposure=60.0,
    fwhm=2.5,
    sky_rate=2.0,
    sky_offsets=(0.0, 0.6, -0.4, 0.9),
    sky_slopes=((0.0, 0.0), (0.004, -0.002), (-0.003, 0.003), (0.002, 0.004)),
    nebula=True,
    read_noise=8.0,
    star_density=3000.0,
    filter_name="Ha",
    rotation=0.0,
    seed=0,
):
    """
    Four plate-solved pointings in a 2x2 mosaic with per-frame sky offsets and gradients.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of each frame.
    scale : float
        Arcsec per pixel.
    overlap : float
        Fraction of a frame shared with its neighbour along each axis.
    exposure, fwhm, sky_rate : float
        Seconds, PSF FWHM (pixels), base sky (electrons per second per pixel).
    sky_offsets : sequence of 4 float
        Added to the sky of each frame (electrons per second per pixel).
    sky_slopes : sequence of 4 (float, float)
        Sky gradients along x and y (electrons per second per pixel per pixel).
    nebula : bool
        A Gaussian nebula in the overlap of frames 0 and 1.
    read_noise : float
    star_density : float
    filter_name : str
    rotation : float or sequence of 4 float
        Position angle of each frame (degrees; 0: north up).
    seed : int

    Returns
    -------
    frames : list of `~astrophot.SolvedFrame`
    truth : `DitherTruth`

    Examples
    --------
    >>> from astrophot.datasets import make_mosaic_frames
    >>> frames, truth = make_mosaic_frames(shape=(50, 60), seed=2)
    >>> len(frames), round(truth.nebula["rate"])
    (4, 2000)
    """
    ny, nx = shape
    step_x = (1 - overlap) * nx * scale / 3600.0
    step_y = (1 - overlap) * ny * scale / 3600.0
    radius = 1.5 * np.hypot(*shape) * scale / 3600.0
    stars = synthetic_stars(_CENTER, radius, density=star_density, mag_range=(12.0, 17.0), seed=seed)
    stars["rate"] = 10 ** (-0.4 * (np.asarray(stars["mag"]) - 22.0))
    rng = _model.rng_for(seed, "frame", "mosaic")
    offsets = [(-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5)]
    centres = [_CENTER.spherical_offsets_by(-ox * step_x * u.deg, oy * step_y * u.deg) for ox, oy in offsets]
    neb = None
    if nebula:
        # halfway between the centres of frames 0 and 1, in their overlap
        mid = centres[0].spherical_offsets_by(-0.5 * step_x * u.deg, 0.0 * u.deg)
        neb = {"ra": float(mid.ra.deg), "dec": float(mid.dec.deg), "sigma": 4.0 * scale, "rate": 2000.0}
    rotation = np.broadcast_to(np.asarray(rotation, dtype=np.float64), (4,))
    frames, wcss, psfs, crs, noiseless = [], [], [], [], []
    for i, centre in enumerate(centres):
        wcs = make_wcs(centre, shape, scale, rotation=float(rotation[i]))
        psf = PSF(fwhm=float(fwhm), beta=3.0)
        extra = _nebula_image(wcs, shape, neb, scale) if neb else None
        data, expected = _expose(
            wcs,
            shape,
            stars,
            exposure=exposure,
            psf=psf,
            transparency=1.0,
            sky_rate=sky_rate + sky_offsets[i],
            sky_slope=sky_slopes[i],
            read_noise=read_noise,
            rng=rng,
            extra=extra,
        )
        frames.append(
            _solved(data, expected, read_noise, wcs, exposure, f"mosaic_{i}.fits", filter_name, "M42")
        )
        wcss.append(wcs)
        psfs.append(psf)
        crs.append(np.zeros(shape, dtype=bool))
        noiseless.append(expected.astype(np.float32))
    truth = DitherTruth(
        wcs=wcss,
        exposure=np.full(4, float(exposure)),
        psf=psfs,
        transparency=np.ones(4),
        sky_rate=sky_rate + np.asarray(sky_offsets, dtype=np.float64),
        sky_slope=[tuple(map(float, s)) for s in sky_slopes],
        stars=stars,
        cosmic_rays=crs,
        trail=[None] * 4,
        read_noise=float(read_noise),
        center=_CENTER,
        scale=float(scale),
        nebula=neb,
        names=[f.source_path for f in frames],
        expected=noiseless,
    )
    return frames, truth
