# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The physics of the simulator: detector, flat field, PSF stamps, cosmic rays, read-out."""

import zlib

import numpy as np

from ._truth import PSF, DetectorTruth

__all__ = [
    "make_detector",
    "render_stars",
]

# stream tags, so that each random component has its own generator
_TAGS = {
    "bias": 1,
    "hot": 2,
    "lines": 3,
    "prnu": 4,
    "dust": 5,
    "frame": 6,
    "cr": 7,
    "sky": 8,
    "synthetic": 9,
    "night": 10,
}


def rng_for(seed, tag, *extra):
    """A generator for one component, independent of the order of the calls."""
    words = [int(seed) & 0xFFFFFFFF, _TAGS[tag] if isinstance(tag, str) else int(tag)]
    for value in extra:
        if isinstance(value, str):
            words.append(zlib.crc32(value.encode()))
        else:
            words.append(int(value) & 0xFFFFFFFF)
    return np.random.default_rng(np.random.SeedSequence(words))


def _as_pixels(values, limit, what):
    out = []
    for v in values:
        v = int(v)
        if not 0 <= v < limit:
            raise ValueError(f"{what} {v} is outside the frame (0..{limit - 1})")
        out.append(v)
    return sorted(set(out))


def make_detector(
    shape,
    *,
    binning=1,
    gain=1.5,
    read_noise=10.0,
    bias_level=1000.0,
    bias_column_rms=2.0,
    bias_ramp=4.0,
    dark_current=0.05,
    hot_pixels=None,
    hot_pixel_fraction=2e-4,
    bad_columns=None,
    bad_rows=None,
    bad_line_current=2.0,
    set_temperature=-15.0,
    pixel_size=9.0,
    seed=0,
):
    """
    A simulated camera with known bias, dark current, defects and flat fields.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` after binning.
    binning : int
        Binning factor (for the headers and the dust-shadow sizes).
    gain : float
        Electron/ADU.
    read_noise : float
        Electrons.
    bias_level : float
        Mean bias (ADU).
    bias_column_rms : float
        Rms of the fixed column pattern (ADU).
    bias_ramp : float
        Amplitude of the bias ramp along each row (ADU).
    dark_current : float
        Dark current of a normal pixel (electron/s).
    hot_pixels : sequence or None
        ``(x, y)`` or ``(x, y, rate)`` (0-based; rate in electron/s, drawn
        log-uniform in 0.5-50 when absent); None draws
        ``hot_pixel_fraction`` of the pixels at random; ``[]`` for none.
    hot_pixel_fraction : float
        Fraction of hot pixels when they are drawn.
    bad_columns, bad_rows : sequence of int or None
        0-based bad columns and rows; None draws two columns and one row.
    bad_line_current : float
        Mean extra charge of a bad column or row (electron/s).
    set_temperature : float
        Celsius.
    pixel_size : float
        Micron, after binning.
    seed : int

    Returns
    -------
    DetectorTruth
    """
    ny, nx = (int(n) for n in shape)
    if ny < 8 or nx < 8:
        raise ValueError(f"shape {shape} is too small (at least 8x8)")
    if gain <= 0 or read_noise < 0 or dark_current < 0:
        raise ValueError("gain must be positive; read noise and dark current not negative")

    # bias: column pattern + ramp along x (read-out amplifier warming up)
    rng = rng_for(seed, "bias")
    columns = rng.normal(0.0, bias_column_rms, nx)
    x = np.arange(nx)
    ramp = bias_ramp * np.exp(-x / max(nx / 8.0, 1.0))
    structure = np.broadcast_to((columns + ramp)[None, :], (ny, nx)).astype(np.float64)
    structure = structure - structure.mean()

    # dark current with hot pixels
    dark = np.full((ny, nx), float(dark_current))
    rng = rng_for(seed, "hot")
    if hot_pixels is None:
        n_hot = max(3, int(round(hot_pixel_fraction * ny * nx)))
        flat_index = rng.choice(ny * nx, size=n_hot, replace=False)
        hy, hx = np.unravel_index(np.sort(flat_index), (ny, nx))
        rates = np.exp(rng.uniform(np.log(0.5), np.log(50.0), n_hot))
        hot = np.column_stack([hx, hy, rates])
    else:
        rows = []
        for item in hot_pixels:
            item = tuple(item)
            if len(item) not in (2, 3):
                raise ValueError(f"a hot pixel is (x, y) or (x, y, rate), not {item!r}")
            hx, hy = int(item[0]), int(item[1])
            if not (0 <= hx < nx and 0 <= hy < ny):
                raise ValueError(f"hot pixel {item!r} is outside the {nx}x{ny} frame")
            rate = float(item[2]) if len(item) == 3 else float(np.exp(rng.uniform(np.log(0.5), np.log(50.0))))
            rows.append((hx, hy, rate))
        hot = np.array(rows, dtype=np.float64).reshape(-1, 3)
    if len(hot):
        dark[hot[:, 1].astype(int), hot[:, 0].astype(int)] += hot[:, 2]

    rng = rng_for(seed, "lines")
    margin_x, margin_y = max(1, nx // 10), max(1, ny // 10)
    if bad_columns is None:
        bad_columns = rng.choice(np.arange(margin_x, nx - margin_x), size=2, replace=False)
    if bad_rows is None:
        bad_rows = rng.choice(np.arange(margin_y, ny - margin_y), size=1, replace=False)
    bad_columns = _as_pixels(bad_columns, nx, "bad column")
    bad_rows = _as_pixels(bad_rows, ny, "bad row")

    return DetectorTruth(
        shape=(ny, nx),
        binning=int(binning),
        gain=float(gain),
        read_noise=float(read_noise),
        bias_level=float(bias_level),
        bias_structure=structure,
        dark_current=dark,
        dark_current_level=float(dark_current),
        hot_pixels=hot,
        bad_columns=bad_columns,
        bad_rows=bad_rows,
        bad_line_current=float(bad_line_current),
        set_temperature=float(set_temperature),
        pixel_size=float(pixel_size),
        seed=int(seed),
    )


def _dust_shadows(rng, n, shape, binning):
    ny, nx = shape
    out = []
    for _ in range(n):
        radius = rng.uniform(12.0, 30.0) / binning
        out.append(
            {
                "x": float(rng.uniform(0, nx - 1)),
                "y": float(rng.uniform(0, ny - 1)),
                "radius": float(max(radius, 2.5)),
                "depth": float(rng.uniform(0.02, 0.06)),
            }
        )
    return out


def _apply_dust(flat, shadows):
    ny, nx = flat.shape
    for d in shadows:
        r_out = d["radius"] * 1.6
        x0, x1 = max(0, int(d["x"] - r_out)), min(nx, int(d["x"] + r_out) + 2)
        y0, y1 = max(0, int(d["y"] - r_out)), min(ny, int(d["y"] + r_out) + 2)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        r = np.hypot(xx - d["x"], yy - d["y"])
        width = max(d["radius"] * 0.15, 0.7)
        disk = 1.0 / (1.0 + np.exp((r - d["radius"]) / width))
        ring = np.exp(-0.5 * ((r - d["radius"]) / width) ** 2)
        flat[y0:y1, x0:x1] *= 1.0 - d["depth"] * (0.6 * disk + 0.4 * ring)


def flat_field(detector, filter_name, *, vignetting=0.12, prnu=0.005, n_dust=3):
    """
    The normalised flat field of ``detector`` through ``filter_name`` (cached on the detector).

    Vignetting (a quadratic fall-off of ``vignetting`` at the corners, centre
    slightly off the frame centre), pixel response non-uniformity (``prnu``
    rms), dust shadows common to all filters (on the sensor window) and
    ``n_dust`` per filter. Mean 1.
    """
    if filter_name in detector.flats:
        return detector.flats[filter_name]
    ny, nx = detector.shape
    seed = detector.seed
    if "sensor" not in detector.dust:
        detector.dust["sensor"] = _dust_shadows(
            rng_for(seed, "dust", "sensor"), 2, detector.shape, detector.binning
        )
    rng = rng_for(seed, "prnu")
    response = 1.0 + rng.normal(0.0, prnu, (ny, nx))
    cy, cx = (ny - 1) / 2.0 + 0.03 * ny, (nx - 1) / 2.0 - 0.02 * nx
    yy, xx = np.mgrid[0:ny, 0:nx]
    r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / ((nx / 2.0) ** 2 + (ny / 2.0) ** 2)
    flat = response * (1.0 - vignetting * r2)
    _apply_dust(flat, detector.dust["sensor"])
    shadows = _dust_shadows(rng_for(seed, "dust", filter_name), n_dust, detector.shape, detector.binning)
    detector.dust[filter_name] = shadows
    _apply_dust(flat, shadows)
    flat /= flat.mean()
    detector.flats[filter_name] = flat
    return flat


def cosmic_rays(shape, n, rng, *, track_fraction=0.35, max_length=10.0):
    """
    Cosmic-ray hits: ``n`` events, single pixels, small blobs or short tracks.

    Returns
    -------
    deposit : numpy.ndarray
        Electrons deposited per pixel.
    """
    ny, nx = shape
    deposit = np.zeros(shape, dtype=np.float64)
    for _ in range(int(n)):
        x0, y0 = rng.uniform(0, nx), rng.uniform(0, ny)
        charge = float(np.exp(rng.normal(np.log(1500.0), 0.6)))
        if rng.uniform() < track_fraction:
            length = rng.uniform(2.0, max_length)
            angle = rng.uniform(0, np.pi)
            t = np.linspace(0.0, 1.0, int(np.ceil(length * 2)) + 1)
            xs = x0 + t * length * np.cos(angle)
            ys = y0 + t * length * np.sin(angle)
        elif rng.uniform() < 0.5:
            xs = x0 + np.array([0.0, rng.choice([-1.0, 1.0])])
            ys = y0 + np.array([0.0, rng.choice([-1.0, 0.0, 1.0])])
        else:
            xs, ys = np.array([x0]), np.array([y0])
        ix, iy = np.floor(xs).astype(int), np.floor(ys).astype(int)
        ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        pixels = np.unique(iy[ok] * nx + ix[ok])
        if pixels.size == 0:
            continue
        share = rng.uniform(0.5, 1.5, pixels.size)
        deposit.flat[pixels] += charge * share
    return deposit


def _moffat_power(t, beta):
    """``t ** -beta``, by multiplication when beta is a small integer (much faster than a float power)."""
    if float(beta).is_integer() and 1 <= beta <= 8:
        inv = 1.0 / t
        out = inv.copy()
        for _ in range(int(beta) - 1):
            out *= inv
        return out
    return t ** (-beta)


def render_stars(shape, x, y, flux, psf, *, max_work=3_000_000):
    """
    An image (electrons) of point sources with a Moffat PSF integrated over pixels.

    Each star is drawn on a stamp of its own, oversampled within each pixel,
    then normalised so that the stamp holds exactly ``flux`` (stars near an
    edge lose what falls outside the frame).

    Parameters
    ----------
    shape : tuple of int
    x, y : array-like
        0-based pixel positions (the centre of pixel ``(0, 0)`` is at 0, 0).
    flux : array-like
        Electrons.
    psf : PSF

    Returns
    -------
    numpy.ndarray
    """
    ny, nx = shape
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    image = np.zeros(ny * nx, dtype=np.float64)
    if x.size == 0:
        return image.reshape(shape)
    a = PSF.alpha_from_fwhm(psf.fwhm_major, psf.beta)
    b = PSF.alpha_from_fwhm(psf.fwhm_minor, psf.beta)
    theta = np.radians(psf.theta)
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    # stamp radius holding all but 1 % of the flux (Moffat: (1 + (r/alpha)^2)^(1 - beta)), within 4..8 FWHM
    reach = a * np.sqrt(0.01 ** (1.0 / (1.0 - psf.beta)) - 1.0)
    half = int(np.ceil(min(max(reach, 4.0, 3.0 * psf.fwhm_major), 8.0 * psf.fwhm_major)))
    oversample = 5 if psf.fwhm_minor < 1.5 else (3 if psf.fwhm_minor < 5 else 1)
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    offs = np.arange(-half, half + 1)
    # sample offsets within a stamp: (S, S, o, o) flattened
    du = (offs[None, :, None, None] + sub[None, None, None, :]) + 0.0 * offs[:, None, None, None]
    dv = (offs[:, None, None, None] + sub[None, None, :, None]) + 0.0 * offs[None, :, None, None]
    du = np.broadcast_to(du, (offs.size, offs.size, oversample, oversample)).reshape(-1)
    dv = np.broadcast_to(dv, (offs.size, offs.size, oversample, oversample)).reshape(-1)
    n_samples = du.size
    stamp_pixels = offs.size * offs.size
    per_star = n_samples
    chunk = max(1, int(max_work // per_star))
    pix_dx = np.broadcast_to(offs[None, :], (offs.size, offs.size)).reshape(-1)
    pix_dy = np.broadcast_to(offs[:, None], (offs.size, offs.size)).reshape(-1)
    norm = (psf.beta - 1.0) / (np.pi * a * b)
    for start in range(0, x.size, chunk):
        xs, ys, fs = x[start : start + chunk], y[start : start + chunk], flux[start : start + chunk]
        ix, iy = np.rint(xs).astype(np.int64), np.rint(ys).astype(np.int64)
        fx, fy = xs - ix, ys - iy  # sub-pixel offset of the star from its central pixel
        u = du[None, :] - fx[:, None]
        v = dv[None, :] - fy[:, None]
        up = u * cos_t + v * sin_t
        vp = -u * sin_t + v * cos_t
        value = _moffat_power(1.0 + (up / a) ** 2 + (vp / b) ** 2, psf.beta)
        value *= norm
        value = value.reshape(len(xs), stamp_pixels, oversample * oversample).mean(axis=2)
        value *= (fs / value.sum(axis=1))[:, None]
        px = ix[:, None] + pix_dx[None, :]
        py = iy[:, None] + pix_dy[None, :]
        ok = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
        image += np.bincount((py * nx + px)[ok], weights=value[ok], minlength=ny * nx)
    return image.reshape(shape)


def read_out(electrons, detector, rng):
    """
    Electrons to raw ADU: gain, bias with its structure, read noise, 16-bit quantisation and clipping.

    Returns
    -------
    numpy.ndarray of uint16
    """
    adu = detector.bias_level + detector.bias_structure + electrons / detector.gain
    adu = adu + rng.normal(0.0, detector.read_noise / detector.gain, detector.shape)
    return np.clip(np.rint(adu), 0, detector.saturation).astype(np.uint16)


def line_charge(detector, exposure, rng):
    """Extra charge of the bad columns and rows for one frame, and the factors drawn."""
    extra = np.zeros(detector.shape, dtype=np.float64)
    factors = {}
    for c in detector.bad_columns:
        f = float(rng.uniform(0.5, 1.5))
        factors[f"c{c}"] = f
        extra[:, c] += detector.bad_line_current * exposure * f
    for r in detector.bad_rows:
        f = float(rng.uniform(0.5, 1.5))
        factors[f"r{r}"] = f
        extra[r, :] += detector.bad_line_current * exposure * f
    return extra, factors


def sky_image(shape, level, slope):
    """``level + slope_x (x - xc) + slope_y (y - yc)`` (electrons), clipped at zero."""
    ny, nx = shape
    gx = (np.arange(nx) - (nx - 1) / 2.0) * slope[0]
    gy = (np.arange(ny) - (ny - 1) / 2.0) * slope[1]
    return np.clip(level + gy[:, None] + gx[None, :], 0.0, None)
