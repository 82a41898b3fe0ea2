# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Finding stars and measuring them: positions, fluxes and PSF shapes."""

import enum
import logging
import math
import warnings
from dataclasses import dataclass

import astropy.units as u
import numpy as np
import sep
from astropy.table import QTable
from scipy.spatial import cKDTree

from astrophot.analysis._common import (
    as_frame,
    bad_pixel_mask,
    electrons_per_unit,
    exposure_seconds,
    float_data,
    frame_name,
    saturated_pixels,
)
from astrophot.analysis._mesh import auto_box_size, mesh_background
from astrophot.analysis._psffit import (
    _model_and_jacobian,
    alpha_from_fwhm,
    cutouts,
    fit_moffat,
    stamp_half_size,
)
from astrophot.analysis._regions import load_mask
from astrophot.exceptions import AnalysisError, AstrophotUserWarning, FrameMismatchError

__all__ = ["StarFlag", "ds9_regions", "find_stars", "select_psf_stars"]

log = logging.getLogger(__name__)

_GAUSS_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: FWHM guessed before the image's own is measured (pixels).
_FIRST_FWHM = 3.0
#: Detection kernel FWHM as a fraction of the PSF FWHM: a little narrower than
#: a matched filter keeps close pairs apart at a small cost in depth.
_KERNEL_FRACTION = 0.7
#: Pixel integration of the Moffat in the fit of every star (see _psffit).
_INTEGRATION = "subsample"
#: Below this FWHM (pixels) the model is integrated on a 4 x 4 grid instead.
_FINE_BELOW = 2.0


def _integration(fwhm):
    """The pixel integration of the Moffat model for stars of ``fwhm`` pixels."""
    return "fine" if float(np.max(fwhm)) < _FINE_BELOW else _INTEGRATION


class StarFlag(enum.IntFlag):
    """
    Bits of the ``flags`` column of a `find_stars` table.

    Examples
    --------
    >>> from astrophot.analysis import StarFlag
    >>> StarFlag.describe(StarFlag.SATURATED | StarFlag.BLENDED)
    ['SATURATED', 'BLENDED']
    """

    #: A pixel within the aperture is saturated (DQ bit or above the level).
    SATURATED = 1
    #: A masked pixel lies within the aperture.
    NEAR_MASKED = 2
    #: The aperture reaches the edge of the image.
    NEAR_EDGE = 4
    #: Deblended from a larger detection, or a neighbour within the aperture.
    BLENDED = 8
    #: The PSF fit did not converge: ``fwhm``, ``a``, ``b``, ``theta`` are NaN.
    FIT_FAILED = 16

    @classmethod
    def describe(cls, value):
        """
        The names of the bits set in ``value``.

        Parameters
        ----------
        value : int or `StarFlag`
            A ``flags`` value of a star list.

        Returns
        -------
        list of str
            The flag names, lowest bit first.
        """
        return [m.name for m in cls if int(value) & int(m)]


def _gaussian_kernel(fwhm):
    """A normalised (sum 1) 2-D Gaussian kernel of ``fwhm`` pixels."""
    sigma = max(fwhm, 1.0) / _GAUSS_FWHM
    half = max(1, int(math.ceil(2.0 * sigma)))
    r = np.arange(-half, half + 1)
    k1 = np.exp(-0.5 * r**2 / sigma**2)
    kernel = np.outer(k1, k1)
    return (kernel / kernel.sum()).astype(np.float32)


#: The noise of the filtered image is taken as measured (instead of the white-noise
#: prediction) when it exceeds the prediction by more than this factor: clearly correlated
#: noise such as photographic grain (2-4 on the POSS plates in the test data). Simulated
#: CCD frames measure 1.00-1.17 (defocused stars' wings), real CCD and CMOS frames up to 1.45.
_CORRELATED_NOISE_MIN = 1.5


def _grid_points(shape, margin, n=40000):
    """Rows and columns of a regular grid of about ``n`` points at least ``margin`` from the edges."""
    ny, nx = shape
    if ny <= 2 * margin or nx <= 2 * margin:
        return None
    step = max(1, int(math.sqrt((ny - 2 * margin) * (nx - 2 * margin) / n)))
    return np.arange(margin, ny - margin, step), np.arange(margin, nx - margin, step)


def _filtered_noise(scaled, kernel, bad, segmap, grow):
    """
    Robust RMS of ``scaled`` filtered with ``kernel``, on a regular grid of sky pixels (None if too few).

    The filtered values are computed only at the grid points; points within
    ``grow`` pixels of a detection (``segmap``) or on a bad pixel are left
    out, and clipping at 3 sigma removes what is left of the stars. For
    white noise of unit variance the answer is ``||kernel||``; correlated
    noise gives more.
    """
    half = kernel.shape[0] // 2
    grid = _grid_points(scaled.shape, max(half, grow))
    if grid is None:
        return None
    rows, cols = grid
    values = np.zeros((rows.size, cols.size))
    for dy in range(kernel.shape[0]):
        for dx in range(kernel.shape[1]):
            values += kernel[dy, dx] * scaled[np.ix_(rows + dy - half, cols + dx - half)]
    keep = np.isfinite(values)
    if bad is not None:
        keep &= ~bad[np.ix_(rows, cols)]
    for dy in range(-grow, grow + 1):
        for dx in range(-grow, grow + 1):
            keep &= segmap[np.ix_(rows + dy, cols + dx)] == 0
    if keep.sum() < 100:
        return None
    _, spread, _ = _clipped_median(values[keep])
    return spread if math.isfinite(spread) and spread > 0 else None


def _sep_extract(scaled, threshold, kernel, *, min_area, deblend, name):
    """sep's extraction of ``scaled`` filtered by ``kernel`` above ``threshold``."""
    need = max(300_000, scaled.size // 8)
    if sep.get_extract_pixstack() < need:
        sep.set_extract_pixstack(int(need))
    try:
        # Masked pixels are zero in ``sub``: with sep's mask, meaning infinite
        # noise, an object touching a masked line gets a meaningless threshold
        # and is not deblended at all.
        return sep.extract(
            scaled,
            float(threshold),
            minarea=int(min_area),
            filter_kernel=kernel,
            filter_type="conv",
            deblend_nthresh=32,
            deblend_cont=0.001 if deblend else 1.0,
            # sep's cleaning swallows real faint stars near brighter ones
            # here, so it stays off
            clean=False,
            segmentation_map=True,
        )
    except Exception as exc:  # sep raises a plain Exception for its internal limits
        raise AnalysisError(f"{name}: source extraction failed ({exc}); try a higher n_sigma") from exc


def _extract(sub, rms, bad, *, n_sigma, fwhm, min_area, deblend, name):
    """
    Detect with sep on ``sub / rms`` filtered by a Gaussian: a matched filter.

    With unit noise, the filtered image divided by its noise is the
    matched-filter signal-to-noise ratio, so the threshold is ``n_sigma``
    times that noise: ``||kernel||`` for white noise, or, when the noise
    measured on the filtered sky exceeds that by `_CORRELATED_NOISE_MIN`
    (photographic grain), the measured value (and the detection is redone).
    (sep's own matched filter with a noise map is several times slower.)
    Returns sep's objects (measured on the signal-to-noise image) with an
    extra ``snr`` array (the filtered signal-to-noise ratio at the peak) and
    ``noise_factor`` (measured over white-noise value when used, else 1.0),
    and the segmentation map.
    """
    kernel = _gaussian_kernel(_KERNEL_FRACTION * fwhm)
    norm = float(np.sqrt(np.sum(kernel.astype(np.float64) ** 2)))
    scaled = np.divide(sub, rms, dtype=np.float32)
    options = {"min_area": min_area, "deblend": deblend, "name": name}
    objects, segmap = _sep_extract(scaled, n_sigma * norm, kernel, **options)
    measured = _filtered_noise(scaled, kernel, bad, segmap, max(3, int(math.ceil(fwhm))))
    factor = 1.0
    if measured is not None and measured > _CORRELATED_NOISE_MIN * norm:
        factor, norm = measured / norm, measured
        log.info(
            "%s: noise at the detection scale %.2f x the white-noise value (correlated noise): "
            "thresholds and detection SNR use the measured noise", name, factor,
        )  # fmt: skip
        objects, segmap = _sep_extract(scaled, n_sigma * norm, kernel, **options)
    snr = np.asarray(objects["cpeak"], dtype=float) / norm
    return _Detections(objects, snr, factor), segmap


def _aperture_noise_factor(sub, noise, bad, radius):
    """
    Noise of empty-sky aperture sums over the white-noise prediction (at least 1).

    Apertures of ``radius`` on a regular grid of about 5000 points; their
    clipped RMS is compared with the median error sep predicts from the
    per-pixel ``noise`` (the empty-aperture method for correlated noise).
    """
    grid = _grid_points(sub.shape, int(math.ceil(radius)) + 1, n=5000)
    if grid is None:
        return 1.0
    yy, xx = np.meshgrid(*grid, indexing="ij")
    flux, error, flag = sep.sum_circle(sub, xx.ravel().astype(float), yy.ravel().astype(float), radius,
                                       err=noise, mask=bad, subpix=1)  # fmt: skip
    keep = (flag == 0) & np.isfinite(flux) & np.isfinite(error) & (error > 0)
    if keep.sum() < 100:
        return 1.0
    _, spread, _ = _clipped_median(flux[keep])
    factor = spread / float(np.median(error[keep]))
    return factor if math.isfinite(factor) and factor > 1.0 else 1.0


class _Detections:
    """sep's objects plus the detection signal-to-noise ratio."""

    def __init__(self, objects, snr, noise_factor=1.0):
        self.objects = objects
        self.snr = snr
        self.noise_factor = noise_factor

    def __len__(self):
        return len(self.objects)

    def __getitem__(self, key):
        return self.objects[key]


def _stamps(sub, weights, segmap, labels, x, y, half):
    """Cut-outs, inverse variances (0 for masked, neighbours, outside) and pixel coordinates."""
    n = len(x)
    size = 2 * half + 1
    values, ix, iy, inside = cutouts(sub, x, y, half)
    wts = np.where(inside, weights.cutouts(x, y, half), 0.0)
    if segmap is not None:
        seg, _, _, _ = cutouts(segmap, x, y, half)
        foreign = (seg != 0) & (seg != labels[:, None, None])
        wts = np.where(foreign, 0.0, wts)
    xpix = np.broadcast_to(ix[:, None, :], (n, size, size)).reshape(n, -1).astype(np.float64)
    ypix = np.broadcast_to(iy[:, :, None], (n, size, size)).reshape(n, -1).astype(np.float64)
    return values.reshape(n, -1).astype(np.float64), wts.reshape(n, -1).astype(np.float64), xpix, ypix


class _Weights:
    """Inverse variances of the pixels (0 where masked), computed only in the stamps asked for."""

    def __init__(self, rms, bad):
        self.rms = rms
        self.bad = bad

    def cutouts(self, x, y, half):
        noise, _, _, _ = cutouts(self.rms, x, y, half)
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = 1.0 / (noise.astype(np.float64) ** 2)
        weights[~np.isfinite(weights)] = 0.0
        if self.bad is not None:
            masked, _, _, _ = cutouts(self.bad, x, y, half)
            weights[masked] = 0.0
        return weights


def _weights_map(rms, bad):
    return _Weights(rms, bad)


def select_psf_stars(x, y, snr, usable, shape, *, grid=3, per_cell=25, min_snr=20.0):
    """
    Pick the indices of stars for PSF work, spread over a ``grid`` x ``grid`` layout.

    At most ``per_cell`` stars (highest SNR first) are taken from each cell,
    so a cluster of bright artefacts in one corner cannot crowd out the
    rest of the field.

    Parameters
    ----------
    x, y, snr : array-like
        Positions (0-based pixels) and signal-to-noise ratios.
    usable : array-like of bool
        Stars allowed at all (unflagged, fitted).
    shape : tuple of int
        Image ``(ny, nx)``.
    grid : int, optional
        Cells along each axis.
    per_cell : int, optional
        Most stars taken from one cell.
    min_snr : float, optional
        Faintest stars taken.

    Returns
    -------
    numpy.ndarray of int
        Sorted indices of the chosen stars.

    See Also
    --------
    measure_psf : Uses it to choose the stars it summarises.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot.analysis import select_psf_stars
    >>> x, y = np.array([5.0, 6.0, 7.0, 90.0]), np.array([5.0, 5.0, 6.0, 90.0])
    >>> select_psf_stars(x, y, [500, 400, 300, 50], np.ones(4, bool), (100, 100), grid=2, per_cell=2)
    array([0, 1, 3])
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    snr = np.asarray(snr, dtype=float)
    ok = np.asarray(usable, dtype=bool) & np.isfinite(snr) & (snr >= min_snr)
    ny, nx = shape
    col = np.clip((x / nx * grid).astype(int), 0, grid - 1)
    row = np.clip((y / ny * grid).astype(int), 0, grid - 1)
    cell = row * grid + col
    chosen = []
    for c in range(grid * grid):
        members = np.flatnonzero(ok & (cell == c))
        if members.size:
            order = members[np.argsort(-snr[members], kind="stable")]
            chosen.append(order[:per_cell])
    if not chosen:
        return np.zeros(0, dtype=int)
    return np.sort(np.concatenate(chosen))


def _clipped_median(values, n_sigma=3.0, iterations=5):
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan, values
    keep = values
    for _ in range(iterations):
        med = np.median(keep)
        mad = 1.4826 * np.median(np.abs(keep - med))
        if mad == 0:
            break
        new = values[np.abs(values - med) <= n_sigma * mad]
        if new.size == keep.size:
            break
        keep = new
    med = float(np.median(keep))
    spread = float(1.4826 * np.median(np.abs(keep - med))) if keep.size > 1 else math.nan
    return med, spread, keep


@dataclass
class _Prepared:
    """Pixels, masks and background maps shared by find_stars and assess_quality."""

    data: np.ndarray
    bad_all: np.ndarray
    bad_det: np.ndarray
    sat: np.ndarray
    bkg: np.ndarray
    rms: np.ndarray
    model: object
    name: str
    #: per-pixel factor that divided the signal of a balanced colour mosaic
    cfa_factor: np.ndarray = None
    #: responses of the four 2 x 2 channels (mean 1) of a balanced mosaic
    cfa_gains: np.ndarray = None
    #: sky offsets of the four 2 x 2 channels removed before detection (None: no pattern)
    cfa_sky: np.ndarray = None

    def balance_cfa(self, offsets, gains, bad):
        """
        Turn a colour-filter-array mosaic into a grey image, in place (the arrays are replaced).

        Each of the four 2 x 2 channels loses its own sky offset (relative to
        the common background) and is divided by its response relative to the
        mean of the four, as measured on the stars: ``(data - bkg - offset) /
        gain + bkg``. The background and its RMS are then estimated again on
        the grey image (or, for a given background, the RMS is scaled).
        Returns the per-pixel factor that divided the signal.
        """
        ny, nx = self.data.shape
        factor = _channel_map(np.asarray(gains, dtype=np.float32), (ny, nx))
        shift = _channel_map(np.asarray(offsets, dtype=np.float32), (ny, nx))
        grey = (self.data - self.bkg - shift) / factor + self.bkg
        if bad is not None:
            grey[bad] = self.data[bad]
        self.data = np.ascontiguousarray(grey, dtype=np.float32)
        if self.model is not None:
            self.model = mesh_background(
                self.data, self.bad_all, box_size=self.model.box_size, name=self.name
            )
            self.bkg = self.model.background_map()
            self.rms = self.model.rms_map()
        else:
            self.rms = np.ascontiguousarray(self.rms / factor, dtype=np.float32)
        return factor

    def refit_background(self, fwhm):
        """Redo an internal background with boxes large enough for stars of ``fwhm``."""
        if self.model is None or self.model.box_size >= 8 * fwhm:
            return False
        box = auto_box_size(self.data.shape, fwhm)
        if box <= self.model.box_size:
            return False
        log.debug("%s: background again with %d px boxes for %.1f px stars", self.name, box, fwhm)
        self.model = mesh_background(self.data, self.bad_all, box_size=box, name=self.name)
        self.bkg = self.model.background_map()
        self.rms = self.model.rms_map()
        return True


def _prepare(frame, *, mask, background, saturation, box_size=None, fwhm=None):
    """Data, masks and background maps shared by find_stars and assess_quality."""
    name = frame_name(frame)
    data = float_data(frame)
    extra = load_mask(mask, data.shape, name=name, what="mask")
    bad_all = bad_pixel_mask(frame, data, extra=extra)
    bad_det = bad_pixel_mask(frame, data, extra=extra, detection=True)
    sat = saturated_pixels(frame, data, saturation)
    result = hasattr(background, "model_for")  # an estimate_background result (a Background)
    if background is not None and not result:  # maps or values given: used as they are
        bkg, rms = _background_arrays(background, frame, data.shape, name)
        return _Prepared(data, bad_all, bad_det, sat, bkg, rms, None, name)
    data, cfa_sky = _remove_cfa_sky(data, bad_all, name)
    if result and cfa_sky is None:
        # its maps and mesh (levels, gradient, a refit for larger stars): the sky is not fitted again
        bkg, rms = _background_arrays(background, frame, data.shape, name)
        model = background.model_for(frame)
    else:
        if result:  # its mesh saw the 2 x 2 pattern (an RMS of the channel offsets): fitted again without
            log.debug("%s: a colour-mosaic sky pattern: the background is fitted again without it", name)
        model = mesh_background(
            data,
            bad_all,
            box_size=box_size or auto_box_size(data.shape, fwhm),
            name=name,
        )
        bkg = model.background_map()
        rms = model.rms_map()
    return _Prepared(data, bad_all, bad_det, sat, bkg, rms, model, name, cfa_sky=cfa_sky)


#: A 2 x 2 sky pattern is removed when its amplitude (standard deviation of the four channel
#: levels) exceeds this fraction of the pixel noise.
_CFA_SKY_MIN_AMPLITUDE = 0.25


def _remove_cfa_sky(data, bad, name):
    """
    Remove a 2 x 2 sky pattern (the channel offsets of a raw colour mosaic) before detection.

    The four channels' sky levels are clipped medians of a regular sample;
    the pattern is removed when the standard deviation of the four levels
    exceeds `_CFA_SKY_MIN_AMPLITUDE` of the median channel noise (a raw
    PANOPTES frame: 400 ADU against 20; a monochrome CCD: a few hundredths
    of its noise). Needs no stars, unlike the balancing of the responses.
    Returns ``(data, offsets)`` (offsets relative to the mean of the four,
    None and the untouched data without a pattern).
    """
    ny, nx = data.shape
    if ny < 8 or nx < 8:
        return data, None
    stride = 2 * max(1, int(math.sqrt(data.size / 4 / 40000)))
    levels, noise = np.zeros(4), np.zeros(4)
    for k in range(4):
        part = data[k // 2 :: stride, k % 2 :: stride]
        if bad is not None:
            part = part[~bad[k // 2 :: stride, k % 2 :: stride]]
        part = np.asarray(part, dtype=np.float64).ravel()
        part = part[np.isfinite(part)]
        if part.size < 16:
            return data, None
        levels[k], noise[k], _ = _clipped_median(part)
    offsets = levels - levels.mean()
    scatter = float(np.median(noise))
    if not np.isfinite(scatter) or scatter <= 0 or offsets.std() <= _CFA_SKY_MIN_AMPLITUDE * scatter:
        return data, None
    log.info(
        "%s: 2x2 sky pattern (channel offsets %s, noise %.3g): removed before detection",
        name, np.round(offsets, 2).tolist(), scatter,
    )  # fmt: skip
    clean = np.array(data, dtype=np.float32, copy=True)
    clean -= _channel_map(offsets, data.shape)
    if bad is not None:
        clean[bad] = data[bad]
    return clean, offsets


def _background_arrays(background, frame, shape, name):
    if not isinstance(background, (tuple, list)) or len(background) != 2:
        raise TypeError(f"{name}: background must be the (background, rms) pair of estimate_background")
    out = []
    for item, what in zip(background, ("background", "background rms")):
        unit = getattr(item, "unit", None)
        values = np.asarray(getattr(item, "data", item), dtype=np.float32)
        if unit is not None and frame.unit is not None and unit != frame.unit:
            try:
                values = (values * unit).to_value(frame.unit).astype(np.float32)
            except u.UnitConversionError:
                raise FrameMismatchError(
                    f"{name}: {what} in {unit} does not match the frame unit {frame.unit}"
                ) from None
        if values.ndim == 0:
            values = np.full(shape, float(values), dtype=np.float32)
        if values.shape != tuple(shape):
            raise FrameMismatchError(
                f"{name}: {what} shape {values.shape} does not match the image {tuple(shape)}"
            )
        out.append(np.ascontiguousarray(values))
    return out[0], out[1]


#: Header keywords that may name a colour-filter-array (Bayer) pattern.
_CFA_KEYWORDS = ("BAYERPAT", "COLORTYP", "CFA-PAT", "FILTER")
_CFA_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
#: A channel whose response to stars differs from the mean of the four by
#: more than this fraction (and significantly) marks a mosaic.
_CFA_MIN_CONTRAST = 0.1


def _channel_map(values, shape):
    """An image of ``shape`` holding ``values[(row % 2) * 2 + col % 2]``."""
    ny, nx = shape
    cell = np.asarray(values, dtype=np.float32).reshape(2, 2)
    return np.tile(cell, ((ny + 1) // 2, (nx + 1) // 2))[:ny, :nx]


def _cfa_pattern(frame):
    """The Bayer pattern named by the header (``'RGGB'``...), or None."""
    header = getattr(frame, "meta", None) or {}
    for key in _CFA_KEYWORDS:
        try:
            value = header.get(key)
        except Exception:  # a malformed card
            continue
        if isinstance(value, str) and value.strip().upper() in _CFA_PATTERNS:
            return value.strip().upper()
    return None


def _cfa_response(sub, segmap, objects, usable, bad, *, half=4):
    """
    Per-channel sky offsets and star responses of the four 2 x 2 channels.

    The response of channel k is the median, over bright isolated stars, of
    the star's flux in that channel's pixels of an even ``2 half`` box
    divided by the mean over the four channels. Returns ``(offsets, gains,
    errors, n_stars)`` (``gains`` None with fewer than 10 stars).
    """
    ny, nx = sub.shape
    # sky medians from a regular sample of about 40 000 pixels of each channel
    stride = 2 * max(1, int(math.sqrt(sub.size / 4 / 40000)))
    offsets = np.zeros(4)
    for k in range(4):
        rows, cols = slice(k // 2, None, stride), slice(k % 2, None, stride)
        sky = segmap[rows, cols] == 0
        if bad is not None:
            sky &= ~bad[rows, cols]
        part = sub[rows, cols][sky]
        offsets[k] = float(np.median(part)) if part.size else 0.0
    x = np.asarray(objects["x"], dtype=float)
    y = np.asarray(objects["y"], dtype=float)
    pick = np.asarray(usable, dtype=bool) & (objects.snr > 20)
    pick &= (x >= half) & (y >= half) & (x < nx - half - 1) & (y < ny - half - 1)
    idx = np.flatnonzero(pick)
    idx = idx[np.argsort(-objects.snr[idx], kind="stable")][:500]
    if idx.size < 10:
        return offsets, None, None, int(idx.size)
    # an even box starting on an even row and column holds every channel equally
    x0 = (np.floor(x[idx]).astype(int) - half + 1) // 2 * 2
    y0 = (np.floor(y[idx]).astype(int) - half + 1) // 2 * 2
    x0 = np.clip(x0, 0, nx - 2 * half - (nx % 2))
    y0 = np.clip(y0, 0, ny - 2 * half - (ny % 2))
    offs = np.arange(2 * half)
    boxes = sub[(y0[:, None] + offs)[:, :, None], (x0[:, None] + offs)[:, None, :]].astype(np.float64)
    if bad is not None:
        masked = bad[(y0[:, None] + offs)[:, :, None], (x0[:, None] + offs)[:, None, :]]
        keep = ~masked.any(axis=(1, 2))
        boxes = boxes[keep]
    if boxes.shape[0] < 10:
        return offsets, None, None, int(boxes.shape[0])
    flux = np.stack(
        [boxes[:, k // 2 :: 2, k % 2 :: 2].sum(axis=(1, 2)) - offsets[k] * half * half for k in range(4)],
        axis=1,
    )
    total = flux.mean(axis=1)
    ok = total > 0
    ratios = flux[ok] / total[ok, None]
    if ratios.shape[0] < 10:
        return offsets, None, None, int(ratios.shape[0])
    gains = np.median(ratios, axis=0)
    errors = 1.4826 * np.median(np.abs(ratios - gains), axis=0) * 1.2533 / math.sqrt(ratios.shape[0])
    gains = gains / gains.mean()
    return offsets, gains, errors, int(ratios.shape[0])


def _psf_from_subset(sub, weights, segmap, objects, x, y, usable, snr, shape, fwhm_guess, name):
    """Fit free-beta Moffats to a spread-out subset of bright stars: (fwhm, beta) or None."""
    chosen = select_psf_stars(x, y, snr, usable, shape, grid=4, per_cell=12, min_snr=15.0)
    if chosen.size < 3:
        chosen = select_psf_stars(x, y, snr, usable, shape, grid=2, per_cell=50, min_snr=7.0)
    if chosen.size < 3:
        return None
    half = stamp_half_size(fwhm_guess[chosen].max() if np.ndim(fwhm_guess) else fwhm_guess)
    labels = np.arange(1, len(objects) + 1)[chosen]
    values, wts, xpix, ypix = _stamps(sub, weights, segmap, labels, x[chosen], y[chosen], half)
    guess = fwhm_guess[chosen] if np.ndim(fwhm_guess) else fwhm_guess
    fit = fit_moffat(
        values, wts, xpix, ypix, x[chosen], y[chosen], guess, beta=None, max_shift=2.0,
        integration=_integration(guess),
    )  # fmt: skip
    good = fit.ok
    if good.sum() < 3:
        return None
    fwhm, _, _ = _clipped_median(fit.fwhm[good])
    beta, _, _ = _clipped_median(fit.beta[good])
    log.debug("%s: PSF from %d stars: FWHM %.3f px, beta %.2f", name, int(good.sum()), fwhm, beta)
    return fwhm, beta


def find_stars(
    frame,
    *,
    n_sigma=5.0,
    fwhm=None,
    mask=None,
    max_stars=None,
    background=None,
    aperture_radius=None,
    saturation=None,
    min_area=5,
    deblend=True,
    keep_sharp=False,
    cfa=None,
):
    """
    Find the stars of a frame and measure their position, flux and shape.

    Parameters
    ----------
    frame : `~astrophot.CalibratedFrame`, `~astropy.nddata.CCDData`, 2-D array, or path
        The image. Its mask and `~astrophot.DQFlag` bad bits are respected
        (pixels flagged only ``SATURATED`` are kept for detection so that a
        saturated star is found whole, and flagged).
    n_sigma : float, optional
        Detection threshold: signal-to-noise ratio of the image filtered with
        the PSF (a matched filter), against the local background RMS.
    fwhm : float, optional
        PSF FWHM in pixels, if known. Otherwise it is measured from the
        image (Moffat fits of bright isolated stars spread over the field)
        and the detection is redone with the matching filter when the first
        guess (3 px) was far off.
    mask : array-like of bool, str or path-like, optional
        More pixels to ignore (True), or a FITS mask / ds9 region file.
    max_stars : int, optional
        Keep only the brightest ``max_stars`` stars.
    background : `Background` or tuple, optional
        The result of `estimate_background` (or a ``(background, rms)``
        pair of maps or values); estimated here when not given.
    aperture_radius : float, optional
        Radius of the photometric aperture in pixels. Default: 1.5 FWHM.
    saturation : float or `~astropy.units.Quantity`, optional
        Saturation level in the frame's unit. Default: the header's SATURATE
        or DATAMAX; the ``SATURATED`` DQ bit always counts.
    min_area : int, optional
        Fewest connected pixels above the threshold.
    deblend : bool, optional
        Split blended detections (Source Extractor's multi-threshold scheme).
    keep_sharp : bool, optional
        Keep detections much sharper than the PSF (cosmic rays, hot pixels);
        dropped by default.
    cfa : bool, optional
        Whether the frame is a raw colour-filter-array (Bayer) mosaic, such
        as a DSLR's. None (default) decides from the header (a pattern like
        ``'RGGB'`` in BAYERPAT or FILTER) or from the stars themselves (one
        pixel of every 2 x 2 cell responding 10 % or more differently). A
        mosaic is measured on a grey image: each channel's sky offset removed
        and its response to stars divided out (see Notes). False never does.

    Returns
    -------
    `~astropy.table.QTable`
        One row per star, brightest first: ``id``; ``x``, ``y`` (0-based
        pixel centre: the PSF-fit centre, or the windowed centroid when the
        fit failed); ``flux`` and ``flux_err`` (background-subtracted
        aperture sum, in the frame's unit); ``mag`` (instrumental,
        ``-2.5 log10(flux / exposure time)``, zero point 0; per frame unit
        without an exposure time); ``snr``; ``peak`` (above the background);
        ``fwhm`` (geometric mean of the major- and minor-axis FWHM of an
        elliptical Moffat fit integrated over the pixels); ``a``, ``b`` (half
        widths at half maximum along the major and minor axes); ``ellipticity``
        (``1 - b/a``); ``theta`` (major axis, degrees from +x towards +y, in
        (-90, 90]); ``flags`` (`StarFlag` bits). ``meta`` holds the frame
        name, ``fwhm`` and ``beta`` of the PSF, ``fwhm_source`` (``'measured'``,
        ``'argument'``, or ``'default'`` when too few stars left the 3 px
        starting guess: not a measurement), ``n_sigma``,
        ``aperture_radius``, ``background`` and ``background_rms`` (medians)
        and ``exposure_time``; for a colour mosaic also ``cfa`` (the pattern,
        or ``'2x2'`` when found from the data) and ``cfa_gains``.

    Raises
    ------
    astrophot.exceptions.AnalysisError
        The image has no unmasked sky, or extraction fails.
    astrophot.exceptions.FrameMismatchError
        ``mask`` or ``background`` does not match the image.

    See Also
    --------
    measure_psf : Summarise the PSF from this table.
    estimate_background : The background model used here.
    assess_quality : The frame's quality record.
    astrophot.astrometry.solve_astrometry : The next stage (plate solving).

    Notes
    -----
    Detection, windowed centroids and aperture sums use ``sep`` (Source
    Extractor's algorithms as a library); the background is
    `estimate_background`'s stars-masked mesh. Shapes come from a batched
    Levenberg-Marquardt fit of an elliptical Moffat profile: first with a
    free ``beta`` on a spread-out subset of bright stars, then on every star
    with ``beta`` fixed to their median. Flux errors use the frame's
    uncertainty when it has one, else the background RMS plus Poisson noise
    from the gain.

    In a raw colour mosaic neighbouring pixels see the star through
    different filters, so a profile fitted to the mosaic follows the
    pixel-to-pixel pattern and comes out far too narrow (on the PANOPTES
    DSLR frame in the test data, 0.84 px instead of about 1.2 px). The
    channels are therefore balanced first, as a raw converter's white
    balance does, with the median response of bright stars: the result is a
    grey image on the same pixel grid, so positions and widths need no
    conversion, and a star of the median colour keeps its flux. Stars of
    other colours keep a weak residual pattern.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import CalibratedFrame
    >>> from astrophot.analysis import find_stars
    >>> yy, xx = np.mgrid[0:128, 0:128]
    >>> image = 100.0 + 5000.0 * (1 + ((xx - 60.3) ** 2 + (yy - 40.7) ** 2) / 2.0**2) ** -3.0
    >>> image = np.random.default_rng(1).normal(image, 3.0)
    >>> stars = find_stars(CalibratedFrame(image), fwhm=2.0)
    >>> len(stars), round(float(stars["x"][0].value), 1), round(float(stars["y"][0].value), 1)
    (1, 60.3, 40.7)
    """
    obj = as_frame(frame, purpose="find_stars")
    if not n_sigma > 0:
        raise ValueError(f"n_sigma must be positive, not {n_sigma!r}")
    if fwhm is not None and not fwhm > 0:
        raise ValueError(f"fwhm must be positive, not {fwhm!r}")
    prepared = _prepare(obj, mask=mask, background=background, saturation=saturation, fwhm=fwhm)
    table, _ = _find(
        obj,
        prepared,
        n_sigma=n_sigma,
        fwhm=fwhm,
        max_stars=max_stars,
        aperture_radius=aperture_radius,
        min_area=min_area,
        deblend=deblend,
        keep_sharp=keep_sharp,
        cfa=cfa,
    )
    return table


def _find(
    frame, prepared, *, n_sigma, fwhm, max_stars, aperture_radius, min_area, deblend, keep_sharp, cfa=None
):
    name = frame_name(frame)
    data, bad_all, bad_det, sat = prepared.data, prepared.bad_all, prepared.bad_det, prepared.sat
    rms = prepared.rms
    ny, nx = data.shape
    sub = data - prepared.bkg
    if bad_det is not None:
        sub[bad_det] = 0.0
    uncertainty = getattr(frame, "uncertainty", None)
    err = None
    if uncertainty is not None and np.shape(uncertainty.array) == data.shape:
        err = np.ascontiguousarray(uncertainty.array, dtype=np.float32)
        if not np.all(np.isfinite(err[~bad_all] if bad_all is not None else err)):
            err = np.where(np.isfinite(err), err, rms).astype(np.float32)
    counts_per_unit = electrons_per_unit(frame)

    det_fwhm = float(fwhm) if fwhm is not None else _FIRST_FWHM
    objects, segmap = _extract(
        sub, rms, bad_det, n_sigma=n_sigma, fwhm=det_fwhm, min_area=min_area, deblend=deblend, name=name
    )
    pattern = None
    if cfa is not False and len(objects):
        pattern = _balance_if_mosaic(frame, prepared, sub, segmap, objects, sat, bad_all, cfa=cfa)
        if pattern is not None:
            data, rms = prepared.data, prepared.rms
            sub = data - prepared.bkg
            if bad_det is not None:
                sub[bad_det] = 0.0
            if err is not None:
                err = np.ascontiguousarray(err / prepared.cfa_factor, dtype=np.float32)
            objects, segmap = _extract(
                sub,
                rms,
                bad_det,
                n_sigma=n_sigma,
                fwhm=det_fwhm,
                min_area=min_area,
                deblend=deblend,
                name=name,
            )
    weights = _weights_map(rms, bad_all)
    state = _Detected(objects, segmap, sub, weights)
    psf_fwhm, psf_beta, fwhm_source = _psf_model(
        state, prepared, sat, fwhm=fwhm, first=det_fwhm, n_sigma=n_sigma, min_area=min_area, deblend=deblend
    )
    objects, segmap, sub, weights, rms = state.objects, state.segmap, state.sub, state.weights, prepared.rms
    if aperture_radius is None:
        aperture_radius = 1.5 * psf_fwhm
    radius = float(aperture_radius)
    detection_factor = getattr(objects, "noise_factor", 1.0)
    aperture_factor = 1.0
    if detection_factor != 1.0:
        # correlated noise: flux errors from the noise of empty apertures
        aperture_factor = _aperture_noise_factor(sub, err if err is not None else rms, bad_all, radius)
    table = _measure(
        sub,
        rms,
        err,
        bad_all,
        sat,
        weights,
        segmap,
        objects,
        radius=radius,
        psf_fwhm=psf_fwhm,
        psf_beta=psf_beta,
        counts_per_unit=counts_per_unit,
        keep_sharp=keep_sharp,
        max_stars=max_stars,
        unit=frame.unit,
        exposure=exposure_seconds(frame),
        shape=data.shape,
        noise_factor=aperture_factor,
    )
    table.meta.update(
        {
            "frame": name,
            "fwhm": float(psf_fwhm),
            "fwhm_source": fwhm_source,
            "beta": float(psf_beta),
            "n_sigma": float(n_sigma),
            "aperture_radius": radius,
            "background": _sampled_median(prepared.bkg),
            "background_rms": _sampled_median(rms),
            "exposure_time": exposure_seconds(frame),
            "shape": [int(ny), int(nx)],
            "detection_noise_factor": round(float(detection_factor), 4),
            "aperture_noise_factor": round(float(aperture_factor), 4),
        }
    )
    if pattern is not None:
        table.meta["cfa"] = pattern
        table.meta["cfa_gains"] = [round(float(g), 4) for g in prepared.cfa_gains]
    if prepared.cfa_sky is not None:
        table.meta["cfa_sky_offsets"] = [round(float(o), 3) for o in prepared.cfa_sky]
    return table, sub


@dataclass
class _Detected:
    """The current detections and the arrays they were found on (replaced when detecting again)."""

    objects: object
    segmap: np.ndarray
    sub: np.ndarray
    weights: object


def _psf_model(state, prepared, sat, *, fwhm, first, n_sigma, min_area, deblend):
    """
    The frame's PSF FWHM and Moffat beta, and where the FWHM comes from.

    Returns ``(fwhm, beta, source)``; ``source`` is ``'argument'`` (given),
    ``'measured'`` (free-beta Moffat fits of bright stars) or ``'default'``
    (too few stars: the first guess ``first`` is kept, not a measurement).
    When the measurement is far from the first guess, the stars are detected
    again with a matching filter (``state`` is updated).
    """
    name, bad_det = prepared.name, prepared.bad_det
    psf_fwhm, psf_beta = first, 3.0
    source = "argument" if fwhm is not None else "default"
    for attempt in range(2):
        if not len(state.objects):
            break
        usable = _measure_shapes_input(state.objects, sat, prepared.rms)
        x, y = state.objects["x"], state.objects["y"]
        estimate = _psf_from_subset(
            state.sub, state.weights, state.segmap, state.objects, x, y,
            usable["usable"], usable["snr"], prepared.data.shape, psf_fwhm, name,
        )  # fmt: skip
        if estimate is None:
            if fwhm is None:
                warnings.warn(
                    f"{name}: too few isolated unsaturated stars to measure the PSF; assuming FWHM "
                    f"{psf_fwhm:g} px" + (" (fwhm_source 'default')" if source == "default" else ""),
                    AstrophotUserWarning,
                    stacklevel=4,
                )
            else:
                log.debug("%s: too few stars to fit the Moffat beta; using %.1f", name, psf_beta)
            break
        est_fwhm, psf_beta = estimate
        if fwhm is not None:
            break
        previous, psf_fwhm, source = psf_fwhm, est_fwhm, "measured"
        if attempt or 0.75 < psf_fwhm / previous < 1.4:
            break
        # far from the first guess: detect again with a matching filter
        # and measure again with stamps of the right size
        log.debug("%s: re-detecting with a filter for %.2f px", name, psf_fwhm)
        if prepared.refit_background(psf_fwhm):
            state.sub = prepared.data - prepared.bkg
            if bad_det is not None:
                state.sub[bad_det] = 0.0
            state.weights = _weights_map(prepared.rms, prepared.bad_all)
        state.objects, state.segmap = _extract(
            state.sub, prepared.rms, bad_det, n_sigma=n_sigma, fwhm=psf_fwhm, min_area=min_area,
            deblend=deblend, name=name,
        )  # fmt: skip
    return psf_fwhm, psf_beta, source


def _balance_if_mosaic(frame, prepared, sub, segmap, objects, sat, bad, *, cfa):
    """
    Make ``prepared`` a grey image when the frame is a colour-filter-array mosaic.

    ``cfa`` True forces it, None decides from the header (a Bayer pattern
    such as ``'RGGB'`` in BAYERPAT or FILTER) or from the stars (a channel
    of the 2 x 2 cell whose response differs from the others by more than
    10 %, at five standard errors). Returns the pattern (``'RGGB'``...,
    ``'2x2'`` when found from the data) or None.
    """
    named = _cfa_pattern(frame)
    usable = _measure_shapes_input(objects, sat, prepared.rms)["usable"]
    offsets, gains, errors, n_used = _cfa_response(sub, segmap, objects, usable, bad)
    if gains is None:
        if cfa or named:
            log.info(
                "%s: a colour mosaic but only %d bright stars: channels not balanced", prepared.name, n_used
            )
        return None
    contrast = np.abs(gains - 1.0)
    significant = bool(np.any((contrast > _CFA_MIN_CONTRAST) & (contrast > 5.0 * errors)))
    if not (cfa or named or significant):
        return None
    pattern = named or "2x2"
    log.info(
        "%s: colour-filter-array mosaic (%s): channel responses %s from %d stars; measuring on a grey image",
        prepared.name,
        pattern,
        np.round(gains, 3).tolist(),
        n_used,
    )
    prepared.cfa_factor = prepared.balance_cfa(offsets, gains, bad)
    prepared.cfa_gains = gains
    return pattern


def _measure_shapes_input(objects, sat, rms):
    """Detection SNR and usability from the extraction alone (for choosing PSF stars)."""
    snr = objects.snr  # matched-filter signal-to-noise ratio at the peak
    usable = (objects["flag"] & (sep.OBJ_MERGED | sep.OBJ_TRUNC)) == 0
    if sat is not None:
        yy = np.clip(np.rint(objects["y"]).astype(int), 0, sat.shape[0] - 1)
        xx = np.clip(np.rint(objects["x"]).astype(int), 0, sat.shape[1] - 1)
        near = np.zeros(len(objects), dtype=bool)
        for dy in (-2, -1, 0, 1, 2):
            for dx in (-2, -1, 0, 1, 2):
                near |= sat[np.clip(yy + dy, 0, sat.shape[0] - 1), np.clip(xx + dx, 0, sat.shape[1] - 1)]
        usable &= ~near
    if len(objects) > 1:
        tree = cKDTree(np.column_stack([objects["x"], objects["y"]]))
        dist, _ = tree.query(np.column_stack([objects["x"], objects["y"]]), k=2)
        usable &= dist[:, 1] > 8.0
    return {"snr": snr, "usable": usable}


def _window_centres(sub, bad, objects, psf_fwhm):
    """Windowed centroids, falling back to the filtered peak where the window fails or wanders."""
    # start from the peak of the filtered image: the barycentre of a blend
    # can lie far from every star in it
    x0 = np.asarray(objects["xcpeak"], dtype=float)
    y0 = np.asarray(objects["ycpeak"], dtype=float)
    sig = np.full(len(objects), psf_fwhm / _GAUSS_FWHM)
    # subpix=1: the same centres as Source Extractor's 11 to 1e-4 pixel, five times faster
    xw, yw, wflag = sep.winpos(sub, x0, y0, sig, mask=bad, subpix=1)
    moved = np.hypot(xw - x0, yw - y0)
    bad_win = (wflag != 0) | ~np.isfinite(xw) | ~np.isfinite(yw) | (moved > max(1.0, psf_fwhm))
    return np.where(bad_win, x0, xw), np.where(bad_win, y0, yw)


def _aperture_flags(x, y, aflag, sat, objects, *, radius, psf_fwhm, shape):
    """`StarFlag` bits from the aperture sums, the frame edge, saturation and neighbours."""
    ny, nx = shape
    flags = np.zeros(len(x), dtype=np.int32)
    flags[(aflag & sep.APER_HASMASKED) != 0] |= int(StarFlag.NEAR_MASKED)
    edge = (aflag & sep.APER_TRUNC) != 0
    edge |= (x < radius) | (y < radius) | (x > nx - 1 - radius) | (y > ny - 1 - radius)
    flags[edge] |= int(StarFlag.NEAR_EDGE)
    if sat is not None:
        nsat, _, _ = sep.sum_circle(sat.view(np.uint8).astype(np.float32), x, y, radius + 1.0, subpix=1)
        flags[nsat > 0] |= int(StarFlag.SATURATED)
    blended = (objects["flag"] & sep.OBJ_MERGED) != 0
    if len(x) > 1:
        tree = cKDTree(np.column_stack([x, y]))
        dist, _ = tree.query(np.column_stack([x, y]), k=2)
        blended |= dist[:, 1] < radius + psf_fwhm
    flags[blended] |= int(StarFlag.BLENDED)
    return flags


def _sharp_sources(stamps, fit, flags, flux, peak, presharp, unsaturated, x, y, *, psf_fwhm, psf_beta, half):
    """Sources much sharper than the PSF: cosmic rays and hot pixels."""
    values, wts, xpix, ypix = stamps
    sharp = presharp | (fit.ok & (fit.fwhm_minor < 0.5 * psf_fwhm))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = peak / np.abs(flux)
    reference = np.nanmedian(ratio[fit.ok & (flags == 0)]) if np.any(fit.ok & (flags == 0)) else np.nan
    if np.isfinite(reference):
        sharp |= ~fit.ok & (ratio > 2.5 * reference) & unsaturated
    # a failed fit whose central pixels stand far above the PSF scaled to the stamp
    failed = np.flatnonzero(~fit.ok & unsaturated & ~sharp)
    if failed.size:
        excess, significance = _template_excess(
            values[failed],
            wts[failed],
            xpix[failed],
            ypix[failed],
            x[failed],
            y[failed],
            psf_fwhm,
            psf_beta,
            half,
        )
        sharp[failed[(excess > 1.5) & (significance > 5)]] = True
        # or whose bright pixels form a line or a dot narrower than the stars'
        reference_rows = np.flatnonzero(fit.ok & (flags == 0))
        if reference_rows.size >= 5:
            ref_width = np.nanmedian(_core_width(values[reference_rows], wts[reference_rows], half))
            width = _core_width(values[failed], wts[failed], half)
            sharp[failed[width < 0.6 * ref_width]] = True
    return sharp


def _star_table(idx, x, y, flux, flux_err, peak, fit, flags, *, unit, exposure):
    """The `find_stars` table of the stars ``idx``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = flux / flux_err
        rate = flux / exposure if exposure else flux
        mag = np.where(flux > 0, -2.5 * np.log10(np.where(flux > 0, rate, 1.0)), np.nan)
    table = QTable()
    table["id"] = np.arange(1, idx.size + 1, dtype=np.int32)
    table["x"] = x[idx] * u.pix
    table["y"] = y[idx] * u.pix
    table["flux"] = flux[idx] * unit
    table["flux_err"] = flux_err[idx] * unit
    table["mag"] = mag[idx] * u.mag
    table["snr"] = snr[idx]
    table["peak"] = peak[idx] * unit
    table["fwhm"] = fit.fwhm[idx] * u.pix
    table["a"] = 0.5 * fit.fwhm_major[idx] * u.pix
    table["b"] = 0.5 * fit.fwhm_minor[idx] * u.pix
    table["ellipticity"] = fit.ellipticity[idx]
    table["theta"] = fit.theta[idx] * u.deg
    table["flags"] = flags[idx]
    _describe(table)
    return table


def _measure(
    sub,
    rms,
    err,
    bad,
    sat,
    weights,
    segmap,
    objects,
    *,
    radius,
    psf_fwhm,
    psf_beta,
    counts_per_unit,
    keep_sharp,
    max_stars,
    unit,
    exposure,
    shape,
    noise_factor=1.0,
):
    ny, nx = shape
    n = len(objects)
    if n == 0:
        return _empty_table(unit)
    x, y = _window_centres(sub, bad, objects, psf_fwhm)

    noise = err if err is not None else rms
    if noise_factor != 1.0:
        noise = np.ascontiguousarray(noise * np.float32(noise_factor))
    gain = None if (err is not None or counts_per_unit is None) else counts_per_unit
    flux, flux_err, aflag = sep.sum_circle(sub, x, y, radius, err=noise, mask=bad, gain=gain, subpix=5)
    flags = _aperture_flags(x, y, aflag, sat, objects, radius=radius, psf_fwhm=psf_fwhm, shape=shape)

    # keep the brightest first, so that max_stars needs no fit of the rest
    order = np.argsort(-np.nan_to_num(flux, nan=-np.inf), kind="stable")
    labels = np.arange(1, n + 1)[order]
    x, y, flux, flux_err, flags = x[order], y[order], flux[order], flux_err[order], flags[order]

    # beta is fixed here: a stamp of +-1.5 FWHM holds enough of the profile
    half = max(3, int(math.ceil(1.5 * psf_fwhm)))
    values, wts, xpix, ypix = _stamps(sub, weights, segmap, labels, x, y, half)
    unsaturated = (flags & int(StarFlag.SATURATED)) == 0
    # clear cosmic rays and hot pixels (bright, much narrower than the PSF)
    # are not worth a fit
    presharp = np.zeros(n, dtype=bool)
    if not keep_sharp:
        width = _core_width(values, wts, half)
        reference = _template_width(psf_fwhm, psf_beta, half)
        presharp = unsaturated & (np.asarray(objects.snr)[order] > 10) & (width < 0.5 * reference)
    todo = np.flatnonzero(~presharp)
    fit = _expand(
        fit_moffat(
            values[todo],
            wts[todo],
            xpix[todo],
            ypix[todo],
            x[todo],
            y[todo],
            psf_fwhm,
            beta=psf_beta,
            max_shift=max(1.5, 0.75 * psf_fwhm),
            max_iterations=10,
            integration=_integration(psf_fwhm),
        ),
        todo,
        n,
    )
    use_fit = fit.ok & ((flags & int(StarFlag.SATURATED)) == 0)
    use_fit &= (fit.x >= -0.5) & (fit.x <= nx - 0.5) & (fit.y >= -0.5) & (fit.y <= ny - 0.5)
    x = np.where(use_fit, fit.x, x)
    y = np.where(use_fit, fit.y, y)
    flags[~fit.ok] |= int(StarFlag.FIT_FAILED)
    near_centre = values.reshape(len(x), 2 * half + 1, 2 * half + 1)[
        :, half - 1 : half + 2, half - 1 : half + 2
    ]
    peak = near_centre.reshape(len(x), -1).max(axis=1)

    keep = np.isfinite(flux)
    if not keep_sharp:
        keep &= ~_sharp_sources(
            (values, wts, xpix, ypix),
            fit,
            flags,
            flux,
            peak,
            presharp,
            unsaturated,
            x,
            y,
            psf_fwhm=psf_fwhm,
            psf_beta=psf_beta,
            half=half,
        )
    idx = np.flatnonzero(keep)
    if max_stars is not None:
        idx = idx[: int(max_stars)]
    return _star_table(idx, x, y, flux, flux_err, peak, fit, flags, unit=unit, exposure=exposure)


def _template_width(fwhm, beta, half):
    """`_core_width` of a round, centred, pixel-integrated Moffat of ``fwhm`` and ``beta``."""
    size = 2 * half + 1
    offsets = np.arange(size, dtype=np.float32) - half
    yy, xx = np.meshgrid(offsets, offsets, indexing="ij")
    alpha = alpha_from_fwhm(fwhm, beta)
    params = np.array([[1.0, 0.0, 0.0, 1 / alpha**2, 0.0, 1 / alpha**2, 0.0, beta]])
    model, _ = _model_and_jacobian(
        params, xx.reshape(1, -1), yy.reshape(1, -1), False, False, _integration(fwhm)
    )
    return float(_core_width(model.astype(float), np.ones((1, size * size)), half)[0])


def _expand(fit, index, n):
    """A `MoffatFit` of ``n`` stars from one of the stars at ``index`` (NaN and not ok elsewhere)."""
    from astrophot.analysis._psffit import MoffatFit

    arrays = {}
    for name in ("x", "y", "amplitude", "background", "beta", "fwhm_major", "fwhm_minor", "theta", "chi2"):
        full = np.full(n, np.nan)
        full[index] = getattr(fit, name)
        arrays[name] = full
    ok = np.zeros(n, dtype=bool)
    ok[index] = fit.ok
    pixels = np.zeros(n, dtype=int)
    pixels[index] = fit.n_pixels
    return MoffatFit(ok=ok, n_pixels=pixels, **arrays)


def _sampled_median(image):
    """Median of a regular sample of about 40 000 pixels (a full median of a big map is slow)."""
    step = max(1, int(math.sqrt(image.size / 40000)))
    return float(np.median(image[::step, ::step]))


def _core_width(values, weights, half):
    """Minor-axis RMS width of the pixels above 20 % of the central peak of each stamp."""
    n = values.shape[0]
    size = 2 * half + 1
    v = values.reshape(n, size, size)
    peak = v[:, half - 1 : half + 2, half - 1 : half + 2].reshape(n, -1).max(axis=1)
    w = np.where((v > 0.2 * peak[:, None, None]) & (weights.reshape(n, size, size) > 0), v, 0.0)
    offsets = np.arange(size) - half
    yy, xx = np.meshgrid(offsets, offsets, indexing="ij")
    total = w.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (w * xx).sum(axis=(1, 2)) / total
        my = (w * yy).sum(axis=(1, 2)) / total
        cxx = (w * xx * xx).sum(axis=(1, 2)) / total - mx**2
        cyy = (w * yy * yy).sum(axis=(1, 2)) / total - my**2
        cxy = (w * xx * yy).sum(axis=(1, 2)) / total - mx * my
        half_trace = 0.5 * (cxx + cyy)
        minor = half_trace - np.sqrt(np.maximum(0.25 * (cxx - cyy) ** 2 + cxy**2, 0))
    return np.sqrt(np.maximum(minor, 0))


def _template_excess(values, weights, xpix, ypix, x, y, fwhm, beta, half):
    """
    Peak of the data over the peak of the round PSF fitted (amplitude and level only) to each stamp.

    Returns the ratio and its significance (in noise units of the peak pixel).
    """
    n = len(x)
    alpha = alpha_from_fwhm(fwhm, beta)
    params = np.zeros((n, 8))
    params[:, 0] = 1.0
    params[:, 1] = x - np.rint(x)
    params[:, 2] = y - np.rint(y)
    params[:, 3] = params[:, 5] = 1.0 / alpha**2
    params[:, 7] = beta
    xrel = (xpix - np.rint(x)[:, None]).astype(np.float32)
    yrel = (ypix - np.rint(y)[:, None]).astype(np.float32)
    template, _ = _model_and_jacobian(params, xrel, yrel, False, False, _integration(fwhm))
    template = template.astype(float)
    sw = weights.sum(axis=1)
    sf = (weights * template).sum(axis=1)
    sff = (weights * template * template).sum(axis=1)
    sv = (weights * values).sum(axis=1)
    sfv = (weights * template * values).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        det = sw * sff - sf * sf
        amp = (sw * sfv - sf * sv) / det
        level = (sv * sff - sf * sfv) / det
    model = amp[:, None] * template + level[:, None]
    size = 2 * half + 1

    def core(arr):
        return arr.reshape(n, size, size)[:, half - 1 : half + 2, half - 1 : half + 2].reshape(n, -1)

    data_peak = core(values).max(axis=1)
    model_peak = core(model).max(axis=1)
    noise = 1.0 / np.sqrt(np.maximum(core(weights).max(axis=1), 1e-30))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = data_peak / model_peak
        significance = (data_peak - model_peak) / noise
    ratio = np.where(np.isfinite(ratio) & (model_peak > 0), ratio, np.inf)
    return ratio, np.nan_to_num(significance, nan=0.0)


def _describe(table):
    descriptions = {
        "id": "1-based running number, brightest first",
        "x": "0-based column of the centre",
        "y": "0-based row of the centre",
        "flux": "background-subtracted aperture sum",
        "flux_err": "1-sigma error of flux",
        "mag": "instrumental magnitude -2.5 log10(flux / exposure time)",
        "snr": "flux / flux_err",
        "peak": "highest pixel above the background",
        "fwhm": "geometric mean of major and minor FWHM (Moffat fit)",
        "a": "half width at half maximum along the major axis",
        "b": "half width at half maximum along the minor axis",
        "ellipticity": "1 - b/a",
        "theta": "major axis angle from +x towards +y",
        "flags": "StarFlag bits: 1 saturated, 2 near masked, 4 near edge, 8 blended, 16 fit failed",
    }
    for column, text in descriptions.items():
        table[column].info.description = text


def _empty_table(unit):
    table = QTable()
    table["id"] = np.zeros(0, dtype=np.int32)
    for column, col_unit in (("x", u.pix), ("y", u.pix), ("flux", unit), ("flux_err", unit), ("mag", u.mag)):
        table[column] = np.zeros(0) * col_unit
    table["snr"] = np.zeros(0)
    table["peak"] = np.zeros(0) * unit
    for column in ("fwhm", "a", "b"):
        table[column] = np.zeros(0) * u.pix
    table["ellipticity"] = np.zeros(0)
    table["theta"] = np.zeros(0) * u.deg
    table["flags"] = np.zeros(0, dtype=np.int32)
    _describe(table)
    return table


def ds9_regions(stars, *, radius=None, color="green"):
    """
    A ds9 region file (text) with a circle per star.

    Parameters
    ----------
    stars : `~astropy.table.QTable`
        `find_stars` output (``x``, ``y`` 0-based; ``id`` and ``flags`` used
        when present).
    radius : float, optional
        Circle radius in pixels; the table's aperture radius by default.
    color : str, optional
        Colour of unflagged stars; flagged ones are red.

    Returns
    -------
    str
        Image-coordinate regions (1-based, as ds9 counts pixels).

    See Also
    --------
    find_stars : The star list.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrophot.analysis import ds9_regions
    >>> text = ds9_regions(QTable({"x": [9.0], "y": [19.5]}), radius=3)
    >>> text.splitlines()[-1]
    'circle(10.000,20.500,3.00) # color=green text={1}'
    """
    if radius is None:
        radius = float(stars.meta.get("aperture_radius", 5.0)) if hasattr(stars, "meta") else 5.0
    lines = ["# Region file format: DS9 version 4.1", "# written by astrophot find_stars", "image"]
    x = np.asarray(getattr(stars["x"], "value", stars["x"]), dtype=float)
    y = np.asarray(getattr(stars["y"], "value", stars["y"]), dtype=float)
    ids = np.asarray(stars["id"]) if "id" in stars.colnames else np.arange(1, len(x) + 1)
    flags = np.asarray(stars["flags"]) if "flags" in stars.colnames else np.zeros(len(x), dtype=int)
    for xi, yi, ident, flag in zip(x, y, ids, flags):
        colour = color if int(flag) == 0 else "red"
        lines.append(f"circle({xi + 1:.3f},{yi + 1:.3f},{radius:.2f}) # color={colour} text={{{int(ident)}}}")
    return "\n".join(lines) + "\n"
