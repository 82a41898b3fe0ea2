# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Stretches of an RGB stack (3, ny, nx) of linear, background-subtracted channels to [0, 1].

Every stretch but ``lupton`` writes its float32 result over its input (the caller's
working copy) and runs in blocks of rows, so that the several steps of a pixel's
stretch are one trip through memory (and the blocks can share threads).
"""

import numpy as np

from astrophot._concurrency import thread_map

__all__ = []

#: STIFF's documented defaults (black level quantile, white quantile, gamma, luminance gamma factor, saturation).
STIFF_DEFAULTS = {"black": 0.001, "white": 0.999, "gamma": 2.2, "gamma_factor": 1.0, "saturation": 1.0}
LUPTON_DEFAULTS = {"Q": 8.0, "stretch": 5.0, "minimum": 0.0}

#: Bytes of one block of rows of the three channels: a few of them fit a core's cache.
_BLOCK_BYTES = 1 << 20


def _step(size, n=200_000):
    return size // n if size > n else 1


def _sample(values, n=200_000):
    """Every ``size // n``-th finite value (the whole array below ``n``)."""
    flat = values.reshape(-1)
    flat = flat[np.isfinite(flat)]
    return flat[:: _step(flat.size, n)]


def _sample_mean(rgb, n=200_000):
    """`_sample` of ``rgb.mean(axis=0)`` without making the mean of every pixel (``rgb`` finite)."""
    flat = rgb.reshape(3, -1)[:, :: _step(rgb[0].size, n)]
    mean = flat.mean(axis=0)
    return mean[np.isfinite(mean)]


def _channel_sample(channel, n=200_000):
    """`_sample` of one finite channel, strided first (no copy of the channel)."""
    flat = channel.reshape(-1)[:: _step(channel.size, n)]
    return flat[np.isfinite(flat)]


def _q(sample, q):
    return float(np.quantile(sample, q)) if sample.size else 0.0


def _quantile(values, q):
    return _q(_sample(values), q)


def _row_blocks(shape, rows=None):
    ny, nx = shape
    if rows is None:
        rows = max(1, _BLOCK_BYTES // (3 * 4 * max(nx, 1)))
    return [slice(start, min(start + rows, ny)) for start in range(0, ny, rows)]


def run_blocks(function, shape, n_threads=1):
    """``function(rows)`` for every block of rows (a slice) of a ``shape`` image, on ``n_threads`` threads."""
    blocks = _row_blocks(shape)
    if n_threads > 1:
        # a few blocks per thread call: fewer pool hand-offs, each still cache-sized
        groups = np.array_split(np.arange(len(blocks)), min(len(blocks), 8 * n_threads))
        thread_map(lambda g: [function(blocks[i]) for i in g], groups, n_threads=n_threads)
    else:
        for rows in blocks:
            function(rows)


def _keep_hue_block(x, lum, toned, out, *, toned_zero_at_zero=False):
    """
    ``out = x * toned / lum`` (0 where ``lum <= 0``), every pixel divided by its
    largest channel where that passes 1, clipped to [0, 1]; float32, one block.

    ``toned_zero_at_zero``: ``lum >= 0`` and ``toned`` is 0 where ``lum`` is (a
    stretch's tone curve of it), so ``toned / max(lum, tiny)`` is the same
    factor, without a masked division.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if toned_zero_at_zero:
            factor = np.maximum(lum, np.finfo(np.float32).tiny)
            np.divide(toned, factor, out=factor)
        else:
            factor = np.zeros_like(lum, dtype=np.float32)
            np.divide(toned, lum, out=factor, where=lum > 0, casting="unsafe")
        peak = np.max(x, axis=0)
        peak *= factor
    if not np.isfinite(peak).all():  # an overflowing or NaN channel: zero it as nan_to_num would
        with np.errstate(invalid="ignore", over="ignore"):
            product = x * factor[None]
        np.nan_to_num(product, copy=False, nan=0.0)
        peak = product.max(axis=0)
        np.divide(product, np.maximum(peak, 1.0)[None], out=out)
        np.clip(out, 0.0, 1.0, out=out)
        return out
    np.maximum(peak, 1.0, out=peak)
    factor /= peak
    np.multiply(x, factor[None], out=out)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def keep_hue(channels, luminance, stretched, *, out=None, n_threads=1):
    """
    Scale every channel by ``stretched / luminance``; where a channel passes 1, divide all by the largest.

    float32; ``out`` may be ``channels`` (written over, block by block).
    """
    channels = np.asarray(channels, dtype=np.float32)
    out = np.empty(channels.shape, np.float32) if out is None else out
    lum = np.asarray(luminance, dtype=np.float32)
    toned = np.asarray(stretched, dtype=np.float32)

    def block(rows):
        _keep_hue_block(channels[:, rows], lum[rows], toned[rows], out[:, rows])

    run_blocks(block, channels.shape[1:], n_threads)
    return out


def lupton(rgb, *, Q=8.0, stretch=5.0, minimum=0.0, n_threads=1):
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


def _hue_kept_stretch(rgb, offset, scale, tone, n_threads, *, luminance=None):
    """
    In blocks: ``x = max((rgb - offset) * scale, 0)`` per channel (float32, in place), its
    mean ``y`` (or ``luminance(x)``), and `keep_hue` of ``x`` with ``tone(y)``, written over ``rgb``.
    """
    offset = np.asarray(offset, dtype=np.float32)[:, None, None]
    scale = np.asarray(scale, dtype=np.float32)[:, None, None]

    def block(rows):
        x = rgb[:, rows]
        x -= offset
        np.maximum(x, 0.0, out=x)
        x *= scale
        y = x.mean(axis=0)
        if luminance is not None:
            x, y = luminance(x, y)
        _keep_hue_block(x, y, tone(y), rgb[:, rows], toned_zero_at_zero=True)

    run_blocks(block, rgb.shape[1:], n_threads)
    return rgb


def _normalisation(black, white):
    """Per-channel offsets and the common scale: the black level to 0, the white level to 1 (luminance)."""
    black = np.broadcast_to(np.asarray(black, dtype=float), (3,))
    scale = float(white) - float(np.mean(black))
    return black, np.float32(1.0 / max(scale, np.finfo(np.float32).tiny))


def linear(rgb, *, black=None, white=0.999, n_threads=1):
    """Linear from ``black`` (per channel; default each channel's 0.1 % quantile) to the ``white`` quantile."""
    if black is None:
        black = [_q(_channel_sample(c), 0.001) for c in rgb]
    offset, scale = _normalisation(black, _q(_sample_mean(rgb), white))

    def tone(y):
        return np.clip(y, 0, 1)

    return _hue_kept_stretch(rgb, offset, np.full(3, scale), tone, n_threads)


def log(rgb, *, black=None, white=0.999, a=1000.0, n_threads=1):
    """``log10(a x + 1) / log10(a + 1)`` of the luminance (astropy's LogStretch), hue kept."""
    if black is None:
        black = [_q(_channel_sample(c), 0.001) for c in rgb]
    offset, scale = _normalisation(black, _q(_sample_mean(rgb), white))
    a32, norm = np.float32(a), np.float32(np.log10(a + 1.0))

    def tone(y):
        t = np.clip(y, 0, 1)
        t *= a32
        t += np.float32(1.0)
        np.log10(t, out=t)
        t /= norm
        return t

    return _hue_kept_stretch(rgb, offset, np.full(3, scale), tone, n_threads)


def stiff_like(rgb, *, black=0.001, white=0.999, gamma=2.2, gamma_factor=1.0, saturation=1.0, n_threads=1):
    """
    Black and white levels at quantiles of each channel, a power law of the luminance
    (``1 / (gamma * gamma_factor)``), colour saturation scaling the distance from grey.

    Written from STIFF's documented parameters (Bertin 2012), not its code.
    """
    samples = [_channel_sample(c) for c in rgb]
    lo = np.array([_q(s, black) for s in samples])
    hi = np.array([_q(s, white) for s in samples])
    scale = 1.0 / np.maximum(hi - lo, 1e-30)
    power = np.float32(1.0 / (float(gamma) * float(gamma_factor)))
    sat = np.float32(saturation)

    def saturate(x, y):
        if sat == 1:  # y * (1 + (x / y - 1)) is x, up to rounding
            return x, y
        with np.errstate(divide="ignore", invalid="ignore"):
            grey = np.divide(x, y[None], out=np.ones_like(x), where=y[None] > 0)
        grey -= np.float32(1.0)
        grey *= sat
        grey += np.float32(1.0)
        grey *= y[None]
        np.maximum(grey, 0.0, out=grey)
        return grey, y

    def tone(y):
        t = np.clip(y, 0, 1)
        np.power(t, power, out=t)
        return t

    return _hue_kept_stretch(rgb, lo, scale, tone, n_threads, luminance=saturate)


def auto(rgb, *, noise, white=0.9995, sky_level=0.08, n_threads=1):
    """
    Black point one sky-noise below the sky (at 0 after neutralisation), white at a high
    quantile of the luminance, an asinh whose softening puts the sky noise near ``sky_level``.
    """
    noise = np.broadcast_to(np.asarray(noise, dtype=float), (3,))
    black = -1.0 * noise
    top = max(_q(_sample_mean(rgb), white), 10.0 * float(np.mean(noise)))
    offset, scale = _normalisation(black, top)
    # asinh(y / s) / asinh(1 / s): choose s so that 2 noise units land near sky_level
    level = 2.0 * float(np.mean(noise)) / top
    soft = _solve_softening(level, sky_level)
    soft32, norm = np.float32(soft), np.float32(np.arcsinh(1.0 / soft))

    def tone(y):
        t = np.clip(y, 0, 1)
        t /= soft32
        _asinh_positive(t)
        t /= norm
        return t

    return _hue_kept_stretch(rgb, offset, np.full(3, scale), tone, n_threads)


def _asinh_positive(t):
    """
    ``arcsinh(t)`` of ``t >= 0`` in place, as ``log(t + sqrt(t**2 + 1))``: numpy's float32
    log and sqrt are several times quicker than its arcsinh. The error is under 1e-7
    absolute (the log's rounding near 1 where ``t`` is small), 1e-3 of a 16-bit level in a picture.
    """
    s = np.multiply(t, t)
    s += np.float32(1.0)
    np.sqrt(s, out=s)
    t += s
    np.log(t, out=t)
    return t


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
