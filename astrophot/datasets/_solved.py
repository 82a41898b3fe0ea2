# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Simulated plate-solved frames with a SIP-distorted WCS and known stars (for resampling and stacking)."""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from astropy.table import QTable
from astropy.wcs import WCS, Sip

from ._makers import make_wcs
from ._model import render_stars
from ._truth import PSF

__all__ = ["SolvedTruth", "make_solved_frame", "sip_wcs"]

_DEFAULT_CENTER = SkyCoord(10.6847 * u.deg, 41.2690 * u.deg, frame="icrs")


@dataclass(frozen=True)
class SolvedTruth:
    """
    What produced a `make_solved_frame` frame.

    Attributes
    ----------
    wcs : `~astropy.wcs.WCS`
        The exact WCS (TAN + SIP) the stars were placed with.
    stars : `~astropy.table.QTable`
        ``ra``, ``dec`` (deg), ``x``, ``y`` (0-based pixels), ``flux`` (electrons).
    sky : float
        Sky level (electrons per pixel).
    sigma : float
        Read noise (electrons); the noise per pixel is ``sqrt(signal + sigma**2)``.
    psf : `~astrophot.datasets.PSF`
    """

    wcs: WCS
    stars: QTable
    sky: float
    sigma: float
    psf: PSF


def sip_wcs(center, shape, scale, rotation=0.0, *, distortion=1.5, offset=(0.0, 0.0)):
    """
    A TAN-SIP WCS whose distortion moves the corners by about ``distortion`` pixels.

    Parameters
    ----------
    center : `~astropy.coordinates.SkyCoord`
        Tangent point.
    shape : tuple of int
        ``(ny, nx)``.
    scale : float
        Arcsec per pixel.
    rotation : float
        Position angle of +y, east of north (degrees).
    distortion : float
        Pixels of SIP displacement at the frame's corners (0 for pure TAN).
    offset : tuple of float
        Shift of the reference pixel (pixels): the frame looks ``offset`` pixels further along +x, +y.

    Returns
    -------
    `~astropy.wcs.WCS`
    """
    ny, nx = shape
    wcs = make_wcs(center, shape, scale, rotation)
    wcs.wcs.crpix = [wcs.wcs.crpix[0] - offset[0], wcs.wcs.crpix[1] - offset[1]]
    if distortion:
        r = np.hypot(nx, ny) / 2.0
        a = np.zeros((4, 4))
        b = np.zeros((4, 4))
        a[2, 0], a[1, 1], a[0, 2], a[3, 0] = 0.5, -0.3, 0.2, 0.4
        b[0, 2], b[1, 1], b[2, 0], b[0, 3] = 0.5, 0.25, -0.2, -0.35
        for coef in (a, b):
            for p in range(4):
                for q in range(4):
                    if coef[p, q]:
                        coef[p, q] *= distortion / r ** (p + q)
        wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        wcs.sip = Sip(a, b, None, None, wcs.wcs.crpix)
    wcs.pixel_shape = (nx, ny)
    wcs.wcs.set()
    return wcs


def make_solved_frame(
    *,
    shape=(200, 300),
    scale=3.5,
    rotation=0.0,
    center=None,
    offset=(0.0, 0.0),
    distortion=1.5,
    n_stars=40,
    flux_range=(2e3, 2e5),
    fwhm=3.0,
    sky=200.0,
    read_noise=10.0,
    noise=True,
    edge=12,
    seed=0,
):
    """
    A simulated `~astrophot.SolvedFrame` (electrons) with a TAN-SIP WCS and known stars.

    Stars are placed uniformly (away from the edges by ``edge`` pixels), drawn with a Moffat
    PSF integrated over pixels; sky and Gaussian noise of ``sqrt(signal + read_noise**2)`` are
    added; the frame carries that uncertainty and empty DQ flags.

    Parameters
    ----------
    shape, scale, rotation, center, offset, distortion
        The WCS (see `sip_wcs`); ``center`` defaults to M31.
    n_stars : int
    flux_range : tuple of float
        Star fluxes, log-uniform (electrons).
    fwhm : float
        PSF FWHM (pixels).
    sky, read_noise : float
        Electrons.
    noise : bool
        Add noise (False: the noiseless image, same uncertainty).
    edge : int
        Margin of the star positions (pixels).
    seed : int

    Returns
    -------
    frame : `~astrophot.SolvedFrame`
    truth : `SolvedTruth`

    Examples
    --------
    >>> from astrophot.datasets import make_solved_frame
    >>> frame, truth = make_solved_frame(shape=(64, 80), n_stars=5)
    >>> frame.data.shape, len(truth.stars)
    ((64, 80), 5)
    """
    from astrophot.frames import SolvedFrame

    center = _DEFAULT_CENTER if center is None else SkyCoord(center).icrs
    wcs = sip_wcs(center, shape, scale, rotation, distortion=distortion, offset=offset)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x50_1FED]))
    ny, nx = shape
    x = rng.uniform(edge, nx - 1 - edge, n_stars)
    y = rng.uniform(edge, ny - 1 - edge, n_stars)
    flux = np.exp(rng.uniform(np.log(flux_range[0]), np.log(flux_range[1]), n_stars))
    psf = PSF(fwhm=fwhm)
    signal = render_stars(shape, x, y, flux, psf) + sky
    sigma = np.sqrt(signal + read_noise**2)
    data = signal + (rng.normal(0.0, 1.0, shape) * sigma if noise else 0.0)
    ra, dec = wcs.all_pix2world(x, y, 0)
    stars = QTable({"ra": ra * u.deg, "dec": dec * u.deg, "x": x, "y": y, "flux": flux})
    header = fits.Header()
    header["EXPTIME"] = 300.0
    header["FILTER"] = "Red"
    header["DATE-OBS"] = "2026-09-01T22:00:00"
    header["OBJECT"] = "SIM"
    header["TELESCOP"] = "T20"
    frame = SolvedFrame(
        data.astype(np.float32),
        uncertainty=StdDevUncertainty(sigma.astype(np.float32)),
        wcs=wcs,
        meta=header,
        unit=u.electron,
        flags=np.zeros(shape, dtype=np.uint32),
        solution={"backend": "simulated", "rms_arcsec": 0.0},
    )
    return frame, SolvedTruth(wcs=wcs, stars=stars, sky=float(sky), sigma=float(read_noise), psf=psf)
