# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A simulated narrow-band / broad-band pair with known continuum scale and line emission."""

from dataclasses import dataclass, field

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.nddata import StdDevUncertainty

from astrophot.frames import CalibratedFrame

from ._makers import make_wcs
from ._model import render_stars, rng_for
from ._truth import PSF

__all__ = ["ContinuumTruth", "make_continuum_pair", "make_rgb_field"]

_CENTER = SkyCoord(313.0, 44.3, unit="deg")  # near the North America nebula


@dataclass(frozen=True)
class ContinuumTruth:
    """
    What made a `make_continuum_pair` pair.

    Parameters
    ----------
    k : float
        Continuum scale: narrow-band over broad-band counts of a star of the
        mean colour.
    eps : float
        Line counts in the broad frame over line counts in the narrow frame.
    line_flux : float
        Total line flux of the nebula in the narrow frame (electrons).
    nebula_center : tuple of float
        ``(x, y)`` of the nebula (0-based pixels of the narrow frame).
    nebula_sigma : float
        Gaussian width of the nebula (pixels).
    line_image : numpy.ndarray
        The noise-free line emission in the narrow frame (electrons).
    x, y : numpy.ndarray
        Star positions on the narrow frame's grid.
    flux_broad, flux_narrow : numpy.ndarray
        Star fluxes (electrons) in each frame.
    psf_narrow, psf_broad : PSF
        Seeing of each frame.
    sky_narrow, sky_broad : float
        Sky levels (electrons per pixel).
    shift : tuple of float
        ``(dx, dy)`` of the broad frame's grid against the narrow one (pixels).
    rotation : float
        Position angle of the broad frame's +y axis, east of north (degrees).
    x_broad, y_broad : numpy.ndarray
        Star positions on the broad frame's grid.
    """

    k: float
    eps: float
    line_flux: float
    nebula_center: tuple
    nebula_sigma: float
    line_image: np.ndarray = field(repr=False)
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    flux_broad: np.ndarray = field(repr=False)
    flux_narrow: np.ndarray = field(repr=False)
    psf_narrow: PSF = None
    psf_broad: PSF = None
    sky_narrow: float = 0.0
    sky_broad: float = 0.0
    shift: tuple = (0.0, 0.0)
    rotation: float = 0.0
    x_broad: np.ndarray = field(default=None, repr=False)
    y_broad: np.ndarray = field(default=None, repr=False)


def _broad_grid(shape, shift, rotation):
    """The broad frame's WCS: the narrow one's turned by ``rotation`` and its pixels moved by ``shift``."""
    dx, dy = (0.0, 0.0) if shift is None else (float(shift[0]), float(shift[1]))
    wcs = make_wcs(_CENTER, shape, 1.0, rotation=float(rotation))
    wcs.wcs.crpix = [wcs.wcs.crpix[0] + dx, wcs.wcs.crpix[1] + dy]
    wcs.wcs.set()
    return wcs, (dx, dy)


def _nebula(shape, center, sigma, flux):
    yy, xx = np.indices(shape, dtype=float)
    r2 = (xx - center[0]) ** 2 + (yy - center[1]) ** 2
    image = np.exp(-0.5 * r2 / sigma**2)
    return image * (flux / image.sum())


def _frame(signal, sky, read_noise, rng, wcs, header, noise):
    model = signal + sky
    sigma = np.sqrt(np.clip(model, 0, None) + read_noise**2)
    data = model + (rng.normal(0.0, 1.0, model.shape) * sigma if noise else 0.0)
    return CalibratedFrame(
        data.astype(np.float32),
        uncertainty=StdDevUncertainty(sigma.astype(np.float32)),
        wcs=wcs,
        meta=header,
        unit="electron",
    )


def make_continuum_pair(
    *,
    shape=(300, 300),
    k=0.05,
    eps=1.0,
    fwhm_narrow=2.6,
    fwhm_broad=4.0,
    beta=3.0,
    n_stars=90,
    colour_spread=0.01,
    line_flux=3.0e6,
    nebula_sigma=18.0,
    sky_narrow=40.0,
    sky_broad=800.0,
    read_noise=5.0,
    shift=None,
    rotation=0.0,
    noise=True,
    seed=0,
):
    """
    Simulate an H-alpha frame and an R frame of one field, with known truth.

    Stars of known colours are seen in both filters (narrow-band counts are
    ``k * (1 + colour_spread * c)`` times the broad-band counts, ``c``
    uniform in [-1, 1] and independent of brightness); a Gaussian nebula
    emits only in the line, which the broad filter also passes (``eps``
    times the narrow-band line counts); the two frames have different seeing
    and sky levels.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of both frames.
    k : float
        Continuum scale of a star of the mean colour.
    eps : float
        Broad-band over narrow-band line counts.
    fwhm_narrow, fwhm_broad : float
        Moffat FWHM (pixels) of each frame.
    beta : float
        Moffat index of both PSFs.
    n_stars : int
        Stars in the field.
    colour_spread : float
        Half range of the stars' relative continuum-scale spread.
    line_flux : float
        Total nebular line flux in the narrow frame (electrons).
    nebula_sigma : float
        Gaussian width of the nebula (pixels).
    sky_narrow, sky_broad : float
        Sky levels (electrons per pixel).
    read_noise : float
        Electrons.
    shift : tuple of float, optional
        ``(dx, dy)``: put the broad frame on a grid shifted by this many
        pixels (its WCS says so; the stars land accordingly).
    rotation : float, optional
        Turn the broad frame's grid by this position angle (degrees, east of
        north) about the field centre; stars and nebula land where its WCS
        puts them.
    noise : bool
        Add Poisson and read noise.
    seed : int

    Returns
    -------
    narrow, broad : `~astrophot.CalibratedFrame`
        Electrons, with uncertainty and a TAN WCS (1 arcsec per pixel);
        FILTER 'Ha' and 'Red'.
    truth : ContinuumTruth

    Examples
    --------
    >>> from astrophot.datasets import make_continuum_pair
    >>> narrow, broad, truth = make_continuum_pair(seed=1)
    >>> narrow.header["FILTER"], broad.header["FILTER"], truth.k
    ('Ha', 'Red', 0.05)
    """
    rng = rng_for(seed, 11)
    ny, nx = shape
    margin = 12
    x = rng.uniform(margin, nx - 1 - margin, n_stars)
    y = rng.uniform(margin, ny - 1 - margin, n_stars)
    flux_broad = 10 ** rng.uniform(4.3, 6.3, n_stars)
    colour = rng.uniform(-1.0, 1.0, n_stars)
    flux_narrow = k * (1.0 + colour_spread * colour) * flux_broad
    center = (0.55 * nx, 0.45 * ny)
    line = _nebula(shape, center, nebula_sigma, line_flux)
    psf_n, psf_b = PSF(fwhm_narrow, beta), PSF(fwhm_broad, beta)
    wcs_n = make_wcs(_CENTER, shape, 1.0)
    wcs_b, (dx, dy) = _broad_grid(shape, shift, rotation)
    xb, yb = (np.asarray(v, float) for v in wcs_b.world_to_pixel(wcs_n.pixel_to_world(x, y)))
    cb = tuple(float(v) for v in wcs_b.world_to_pixel(wcs_n.pixel_to_world(*center)))
    same = shift is None and not rotation
    line_b = line if same else _nebula(shape, cb, nebula_sigma, line_flux)
    header = {"OBJECT": "SimNebula", "EXPTIME": 300.0, "GAIN": 1.0, "BUNIT": "electron"}
    narrow = _frame(
        render_stars(shape, x, y, flux_narrow, psf_n) + line,
        sky_narrow,
        read_noise,
        rng,
        wcs_n,
        {**header, "FILTER": "Ha"},
        noise,
    )
    broad = _frame(
        render_stars(shape, xb, yb, flux_broad, psf_b) + eps * line_b,
        sky_broad,
        read_noise,
        rng,
        wcs_b,
        {**header, "FILTER": "Red"},
        noise,
    )
    truth = ContinuumTruth(
        k=k,
        eps=eps,
        line_flux=line_flux,
        nebula_center=center,
        nebula_sigma=nebula_sigma,
        line_image=line,
        x=x,
        y=y,
        flux_broad=flux_broad,
        flux_narrow=flux_narrow,
        psf_narrow=psf_n,
        psf_broad=psf_b,
        sky_narrow=sky_narrow,
        sky_broad=sky_broad,
        shift=(dx, dy),
        rotation=float(rotation),
        x_broad=xb,
        y_broad=yb,
    )
    return narrow, broad, truth


def make_rgb_field(
    *,
    shape=(240, 300),
    gains=(1.3, 1.0, 0.7),
    n_stars=60,
    colour_spread=0.15,
    fwhm=3.0,
    sky=(300.0, 250.0, 200.0),
    seed=0,
):
    """
    Simulate Red, Green and Blue frames of one field whose stars' colours average to neutral.

    Each star's flux in a channel is ``flux * (1 + colour_spread * c)``, with
    ``c`` drawn symmetric about 0 and the three channels' ``c`` summing to 0
    (and come in mirrored pairs, so the median star is grey); the channels then have different
    ``gains`` (a camera's unequal response), which a white balance must undo.

    Parameters
    ----------
    shape : tuple of int
    gains : sequence of 3 floats
        Response of the red, green and blue channels.
    n_stars : int
    colour_spread : float
    fwhm : float
        Moffat FWHM (pixels), the same in all channels.
    sky : sequence of 3 floats
        Sky levels (electrons per pixel) before the gains.
    seed : int

    Returns
    -------
    frames : list of `~astrophot.CalibratedFrame`
        Red, green, blue (FILTER 'Red', 'Green', 'Blue'), with a north-up TAN WCS.
    truth : dict
        ``x``, ``y``, ``flux`` (electrons before gains), ``colours`` (3, n), ``gains``, ``wcs``.

    Examples
    --------
    >>> from astrophot.datasets import make_rgb_field
    >>> frames, truth = make_rgb_field(seed=1)
    >>> [f.header["FILTER"] for f in frames]
    ['Red', 'Green', 'Blue']
    """
    rng = rng_for(seed, 12)
    ny, nx = shape
    x = rng.uniform(10, nx - 11, n_stars)
    y = rng.uniform(10, ny - 11, n_stars)
    flux = 10 ** rng.uniform(4.0, 5.5, n_stars)
    half = rng.uniform(-1.0, 1.0, (3, (n_stars + 1) // 2))
    half -= half.mean(axis=0)  # each star's colour offsets sum to zero
    c = np.concatenate([half, -half], axis=1)[:, :n_stars]  # mirrored pairs: the median star is grey
    colours = 1.0 + colour_spread * c
    wcs = make_wcs(_CENTER, shape, 1.0)
    frames = []
    for index, name in enumerate(("Red", "Green", "Blue")):
        signal = render_stars(shape, x, y, flux * colours[index], PSF(fwhm, 3.0))
        frame = _frame(
            signal * gains[index],
            sky[index] * gains[index],
            5.0,
            rng,
            wcs,
            {"OBJECT": "SimField", "FILTER": name, "EXPTIME": 60.0},
            True,
        )
        frames.append(frame)
    truth = {"x": x, "y": y, "flux": flux, "colours": colours, "gains": tuple(gains), "wcs": wcs}
    return frames, truth
