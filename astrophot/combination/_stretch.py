# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Stretches of an RGB stack (3, ny, nx) of linear, background-subtracted channels to [0, 1]."""

import numpy as np

__all__ = []

#: STIFF's documented defaults (black level quantile, white quantile, gamma, luminance gamma factor, saturation).
STIFF_DEFAULTS = {"black": 0.001, "white": 0.999, "gamma": 2.2, "gamma_factor": 1.0, "saturation": 1.0}
LUPTON_DEFAULTS = {"Q": 8.0, "stretch": 5.0, "minimum": 0.0}


def _sample(values, n=200_000):
    flat = values.reshape(-1)
    flat = flat[np.isfinite(flat)]
    if flat.size > n:
        flat = flat[:: flat.size // n]
    return flat


def _quantile(values, q):
    sample = _sample(values)
    return float(np.quantile(sample, q)) if sample.size else 0.0


def keep_hue(channels, luminance, stretched):
    """Scale every channel by ``stretched / luminance``; where a channel passes 1, divide all by the largest."""
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(luminance > 0, stretched / luminance, 0.0)
    out = channels * factor[None]
    np.nan_to_num(out, copy=False, nan=0.0)
    peak = out.max(axis=0)
    over = peak > 1.0
    out[:, over] /= peak[over]
    return np.clip(out, 0.0, 1.0, out=out)


def lupton(rgb, *, Q=8.0, stretch=5.0, minimum=0.0):
    """Lupton et al. (2004) asinh of the mean intensity, exactly as astropy's ``make_lupton_rgb`` (float)."""
    from astropy.visualization import ManualInterval
    from astropy.visualization.lupton_rgb import LuptonAsinhStretch, RGBImageMappingLupton

    minimum = np.broadcast_to(np.asarray(minimum, dtype=float), (3,))
    mapping = RGBImageMappingLupton(
        interval=[ManualInterval(vmin=float(m), vmax=None) for m in minimum],
        stretch=LuptonAsinhStretch(stretch=stretch, Q=Q),
    )
    out = np.asarray(mapping.apply_mappings(rgb[0], rgb[1], rgb[2]), dtype=np.float32)
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)


def _normalise(rgb, black, white):
    """Channels from the black level (0) to the white level (1 for the luminance)."""
    black = np.broadcast_to(np.asarray(black, dtype=float), (3,))
    x = rgb - black[:, None, None].astype(rgb.dtype)
    np.clip(x, 0.0, None, out=x)
    scale = float(white) - float(np.mean(black))
    x *= x.dtype.type(1.0 / max(scale, np.finfo(np.float32).tiny))
    return x


def linear(rgb, *, black=None, white=0.999):
    """Linear from ``black`` (per channel; default each channel's 0.1 % quantile) to the ``white`` quantile."""
    if black is None:
        black = [_quantile(c, 0.001) for c in rgb]
    lum = rgb.mean(axis=0)
    x = _normalise(rgb, black, _quantile(lum, white))
    y = x.mean(axis=0)
    return keep_hue(x, y, np.clip(y, 0, 1))


def log(rgb, *, black=None, white=0.999, a=1000.0):
    """``log10(a x + 1) / log10(a + 1)`` of the luminance (astropy's LogStretch), hue kept."""
    if black is None:
        black = [_quantile(c, 0.001) for c in rgb]
    x = _normalise(rgb, black, _quantile(rgb.mean(axis=0), white))
    y = x.mean(axis=0)
    return keep_hue(x, y, np.log10(a * np.clip(y, 0, 1) + 1.0) / np.log10(a + 1.0))


def stiff_like(rgb, *, black=0.001, white=0.999, gamma=2.2, gamma_factor=1.0, saturation=1.0):
    """
    Black and white levels at quantiles of each channel, a power law of the luminance
    (``1 / (gamma * gamma_factor)``), colour saturation scaling the distance from grey.

    Written from STIFF's documented parameters (Bertin 2012), not its code.
    """
    lo = [_quantile(c, black) for c in rgb]
    hi = [_quantile(c, white) for c in rgb]
    x = np.stack(
        [np.clip((c - lo_c) / max(hi_c - lo_c, 1e-30), 0, None) for c, lo_c, hi_c in zip(rgb, lo, hi)]
    )
    y = x.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        grey = np.where(y > 0, x / y[None], 1.0)
    x = y[None] * (1.0 + float(saturation) * (grey - 1.0))
    x = np.clip(x, 0, None)
    return keep_hue(x, y, np.clip(y, 0, 1) ** (1.0 / (float(gamma) * float(gamma_factor))))


def auto(rgb, *, noise, white=0.9995, sky_level=0.08):
    """
    Black point one sky-noise below the sky (at 0 after neutralisation), white at a high
    quantile of the luminance, an asinh whose softening puts the sky noise near ``sky_level``.
    """
    noise = np.broadcast_to(np.asarray(noise, dtype=float), (3,))
    black = -1.0 * noise
    lum = rgb.mean(axis=0)
    top = max(_quantile(lum, white), 10.0 * float(np.mean(noise)))
    x = _normalise(rgb, black, top)
    y = x.mean(axis=0)
    # asinh(y / s) / asinh(1 / s): choose s so that 2 noise units land near sky_level
    level = 2.0 * float(np.mean(noise)) / top
    soft = _solve_softening(level, sky_level)
    return keep_hue(x, y, np.arcsinh(np.clip(y, 0, 1) / soft) / np.arcsinh(1.0 / soft))


def _solve_softening(level, target):
    """Softening s with asinh(level/s)/asinh(1/s) == target (bisection on log s)."""
    level = min(max(level, 1e-6), 0.5)
    lo, hi = -12.0, 3.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        s = np.exp(mid)
        value = np.arcsinh(level / s) / np.arcsinh(1.0 / s)
        lo, hi = (mid, hi) if value > target else (lo, mid)
    return float(np.exp(0.5 * (lo + hi)))


STRETCHES = {"lupton": lupton, "stiff": stiff_like, "linear": linear, "log": log, "auto": auto}
