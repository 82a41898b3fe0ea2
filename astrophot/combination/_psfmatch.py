# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""PSF matching: a kernel taking a sharper Moffat PSF to a broader one, and the convolution."""

import numpy as np
from scipy.signal import oaconvolve

__all__ = []


def moffat_image(size, fwhm, beta, *, ellipticity=0.0, theta=0.0, oversample=5):
    """A pixel-integrated elliptical Moffat image of ``size x size`` pixels, centred, summing to 1."""
    beta = max(float(beta), 1.05)
    half = (size - 1) / 2.0
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    axis = (np.arange(size) - half)[:, None] + sub[None, :]
    u = axis.reshape(-1)
    xx, yy = np.meshgrid(u, u)
    q = np.sqrt(max(1.0 - float(ellipticity), 1e-3))
    major, minor = fwhm / q, fwhm * q
    alpha_a = major / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    alpha_b = minor / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    th = np.radians(theta)
    up = xx * np.cos(th) + yy * np.sin(th)
    vp = -xx * np.sin(th) + yy * np.cos(th)
    image = (1.0 + (up / alpha_a) ** 2 + (vp / alpha_b) ** 2) ** (-beta)
    image = image.reshape(size, oversample, size, oversample).mean(axis=(1, 3))
    return image / image.sum()


def matching_kernel(sharp, broad, *, size=None, regularisation=1e-5):
    """
    The kernel that turns the ``sharp`` PSF into the ``broad`` one.

    ``sharp`` and ``broad`` are dicts with ``fwhm``, ``beta`` (and optionally
    ``ellipticity``, ``theta``) as `~astrophot.analysis.measure_psf` measures
    them. The kernel is the regularised (Wiener) Fourier ratio of the two
    pixel-integrated Moffat models, normalised to unit sum.
    """
    if size is None:
        size = int(2 * np.ceil(5.0 * broad["fwhm"]) + 1)
    models = [
        moffat_image(
            size,
            psf["fwhm"],
            psf.get("beta", 3.0),
            ellipticity=psf.get("ellipticity", 0.0),
            theta=psf.get("theta", 0.0),
        )
        for psf in (sharp, broad)
    ]
    a, b = (np.fft.fft2(np.fft.ifftshift(m)) for m in models)
    ratio = b * np.conj(a) / (np.abs(a) ** 2 + regularisation)
    kernel = np.fft.fftshift(np.real(np.fft.ifft2(ratio)))
    return kernel / kernel.sum()


def convolve_frame(data, variance, bad, kernel):
    """Convolve data (bad pixels filled with 0 then renormalised) and its variance (with kernel**2)."""
    good = (~bad).astype(np.float64)
    filled = np.where(bad, 0.0, data)
    out = oaconvolve(filled, kernel, mode="same")
    weight = oaconvolve(good, kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(weight > 0.5, out / weight, np.nan)
    var = None
    if variance is not None:
        var = oaconvolve(np.where(bad, 0.0, variance), kernel**2, mode="same")
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(weight > 0.5, np.clip(var, 0, None) / weight**2, np.nan)
    return out, var
