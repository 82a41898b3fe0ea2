# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Read noise from the difference of two bias frames."""

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.nddata import CCDData
from scipy.special import erf

from astrophot.calibration._kernel import MAD_TO_STD
from astrophot.exceptions import CalibrationError, FrameMismatchError, FrameTypeError, MissingKeywordError

__all__ = ["ReadNoise", "measure_read_noise", "robust_clip"]

log = logging.getLogger(__name__)

_GAIN_UNIT = u.electron / u.adu


def _frame(value, role):
    if isinstance(value, (str, Path)):
        from astrophot.io import read_frame

        return read_frame(value)
    if not isinstance(value, CCDData):
        raise FrameTypeError(f"{role} must be a frame or a path, not {type(value).__name__}")
    return value


def _name(frame, fallback):
    return getattr(frame, "name", None) or fallback


def robust_clip(values, *, n_sigma=5.0, max_iterations=20):
    """
    Iterative clipping around the median with a MAD-based spread.

    Parameters
    ----------
    values : numpy.ndarray
        1-D, finite.
    n_sigma : float
    max_iterations : int

    Returns
    -------
    keep : numpy.ndarray of bool
    centre, spread : float
        Median and MAD-based standard deviation of the kept values.
    """
    keep = np.ones(values.shape, dtype=bool)
    centre = spread = np.nan
    for _ in range(max_iterations):
        kept = values[keep]
        if not kept.size:
            break
        centre = float(np.median(kept))
        spread = float(np.median(np.abs(kept - centre))) * MAD_TO_STD
        if spread == 0:
            spread = float(np.mean(np.abs(kept - centre))) * math.sqrt(math.pi / 2)
        new = np.abs(values - centre) <= n_sigma * spread if spread > 0 else values == centre
        if np.array_equal(new, keep):
            break
        keep = new
    return keep, centre, spread


def _truncation_factor(n_sigma):
    """Standard deviation of a unit Gaussian truncated at +-n_sigma."""
    k = float(n_sigma)
    inside = erf(k / math.sqrt(2))
    density = math.exp(-0.5 * k * k) / math.sqrt(2 * math.pi)
    return math.sqrt(max(1.0 - 2.0 * k * density / inside, 1e-12))


def _gain_of(frame, keyword):
    """(gain or None, keyword) from a frame's header: ``keyword``, or GAIN then EGAIN."""
    for key in (keyword,) if keyword is not None else ("GAIN", "EGAIN"):
        value = frame.meta.get(key)
        try:
            value = float(str(value).strip())
        except (TypeError, ValueError):
            continue
        if value > 0:
            return value * _GAIN_UNIT, key
    return None, keyword


def _resolve_gain(gain, a, b):
    """(gain Quantity or None, where it came from)."""
    if gain is not None and not isinstance(gain, str):
        value = gain.to(_GAIN_UNIT) if isinstance(gain, u.Quantity) else float(gain) * _GAIN_UNIT
        if not value.value > 0:
            raise ValueError(f"gain must be positive, not {gain!r}")
        return value, "argument"
    keyword = None if gain is None else gain.strip().upper()
    if keyword is not None:
        try:
            return float(keyword) * _GAIN_UNIT, "argument"
        except ValueError:
            pass
    ga, key_a = _gain_of(a, keyword)
    gb, key_b = _gain_of(b, keyword)
    if keyword is not None:
        for frame, g in ((a, ga), (b, gb)):
            if g is None:
                raise MissingKeywordError(keyword, source=_name(frame, "<bias frame>"), purpose="the gain")
    if ga is not None and gb is not None and abs((ga - gb).value) > 1e-3:
        raise FrameMismatchError(
            f"the bias frames disagree on the gain: {_name(a, 'first')} has {ga.value:g}, "
            f"{_name(b, 'second')} has {gb.value:g} e-/ADU; give gain= explicitly"
        )
    if ga is None and gb is None:
        return None, None
    return (ga if ga is not None else gb), (key_a if ga is not None else key_b)


@dataclass(frozen=True)
class ReadNoise:
    """
    The result of `measure_read_noise`.

    Attributes
    ----------
    read_noise : `~astropy.units.Quantity`
        In electrons when the gain is known, else in ADU.
    read_noise_adu : `~astropy.units.Quantity`
        In ADU.
    gain : `~astropy.units.Quantity` or None
        electron/adu used.
    gain_source : str or None
        ``'argument'``, or the header keyword it came from.
    n_pixels : int
        Pixels of the difference kept by the clipping.
    n_rejected : int
        Pixels rejected (cosmic rays, defects that changed between frames).
    difference_mean : `~astropy.units.Quantity`
        Mean of the kept difference (ADU): the bias drift between the frames.
    figure : `matplotlib.figure.Figure` or None
        Histograms of the difference (when asked for).
    """

    read_noise: u.Quantity
    read_noise_adu: u.Quantity
    gain: u.Quantity | None
    gain_source: str | None
    n_pixels: int
    n_rejected: int
    difference_mean: u.Quantity
    figure: object = None

    def __str__(self):
        gain = (
            f"gain {self.gain.value:g} e-/ADU from {self.gain_source}"
            if self.gain is not None
            else "gain unknown"
        )
        in_adu = str(self.read_noise.unit).lower() == "adu"
        also = "" if in_adu else f"{self.read_noise_adu.value:.4g} ADU; "
        unit = "ADU" if in_adu else self.read_noise.unit  # 'ADU' as everywhere else, not astropy's 'adu'
        return (
            f"read noise {self.read_noise.value:.4g} {unit} "
            f"({also}{gain}; {self.n_pixels} pixels, {self.n_rejected} rejected)"
        )


def measure_read_noise(bias_a, bias_b, *, gain=None, n_sigma=5.0, plot=False):
    """
    Measure the read noise from the difference of two bias frames.

    The fixed bias pattern cancels in the difference; its spread, after
    clipping outliers (cosmic rays, flickering pixels) and correcting for the
    clipping, is sqrt(2) times the read noise.

    Parameters
    ----------
    bias_a, bias_b : `~astrophot.RawFrame` or path-like
        Two raw bias frames of the same camera and shape.
    gain : float, `~astropy.units.Quantity`, str or None, optional
        In electron/adu; or a header keyword to read it from (``'EGAIN'``); or
        None to take GAIN or EGAIN from the headers when present (they must
        agree within 0.001).
    n_sigma : float, optional
        Clipping limit of the difference (robust spread), default 5.
    plot : bool, optional
        Also make a histogram figure (`ReadNoise.figure`).

    Returns
    -------
    ReadNoise
        ``read_noise`` in electrons when the gain is known, else in ADU.

    Raises
    ------
    astrophot.exceptions.FrameMismatchError
        The frames differ in shape, or disagree on the gain.
    astrophot.exceptions.MissingKeywordError
        ``gain`` names a keyword a frame lacks.
    astrophot.exceptions.CalibrationError
        The difference is zero (the same frame twice) or has no valid pixel.

    See Also
    --------
    make_master_bias : Its noise is the read noise over sqrt(N).

    Examples
    --------
    >>> from astrophot.datasets import make_bias_stack
    >>> from astrophot.calibration import measure_read_noise
    >>> frames, truth = make_bias_stack(2, shape=(300, 400), read_noise=9.0, gain=1.5, seed=1)
    >>> result = measure_read_noise(frames[0], frames[1], gain=1.5)
    >>> result.read_noise.unit, bool(abs(result.read_noise.value - 9.0) < 0.2)
    (Unit("electron"), True)
    """
    a = _frame(bias_a, "bias_a")
    b = _frame(bias_b, "bias_b")
    name_a, name_b = _name(a, "<first bias>"), _name(b, "<second bias>")
    if a.data.shape != b.data.shape:
        raise FrameMismatchError(
            f"the bias frames differ in shape: {name_a} is {a.data.shape}, {name_b} is {b.data.shape}"
        )
    gain_value, gain_source = _resolve_gain(gain, a, b)
    diff = np.asarray(a.data, dtype=np.float64) - np.asarray(b.data, dtype=np.float64)
    valid = np.isfinite(diff)
    for frame in (a, b):
        if frame.mask is not None:
            valid &= ~np.asarray(frame.mask, dtype=bool)
    values = diff[valid]
    if not values.size:
        raise CalibrationError(f"{name_a} - {name_b}: no valid pixel in the difference")
    if not np.any(values != values[0]):
        raise CalibrationError(
            f"{name_a} - {name_b}: the difference is constant ({values[0]:g}); are these the same frame?"
        )
    keep, _, _ = robust_clip(values, n_sigma=n_sigma)
    kept = values[keep]
    if kept.size < 2:
        raise CalibrationError(f"{name_a} - {name_b}: fewer than two pixels left after clipping")
    std = float(np.std(kept, ddof=1)) / _truncation_factor(n_sigma)
    noise_adu = std / math.sqrt(2.0) * u.adu
    noise = (noise_adu * gain_value).to(u.electron) if gain_value is not None else noise_adu
    figure = _histogram(values, keep, std, name_a, name_b) if plot else None
    result = ReadNoise(
        read_noise=noise,
        read_noise_adu=noise_adu,
        gain=gain_value,
        gain_source=gain_source,
        n_pixels=int(kept.size),
        n_rejected=int(values.size - kept.size),
        difference_mean=float(np.mean(kept)) * u.adu,
        figure=figure,
    )
    log.debug("%s", result)  # the caller shows it (the CLI prints it once)
    return result


def _histogram(values, keep, std, name_a, name_b):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.6), layout="constrained")
    centre = float(np.median(values[keep]))
    half = max(6.0 * std, 5.0)
    edges = np.arange(np.floor(centre - half) - 0.5, np.ceil(centre + half) + 1.0, 1.0)
    if edges.size > 2000:
        edges = np.linspace(centre - half, centre + half, 2001)
    x = 0.5 * (edges[1:] + edges[:-1])
    gauss = (
        keep.sum()
        * np.diff(edges)
        * np.exp(-0.5 * ((x - centre) / std) ** 2)
        / (std * math.sqrt(2 * math.pi))
    )
    for ax, log_scale in zip(figure.subplots(1, 2), (False, True)):
        ax.hist(values, bins=edges, histtype="step", color="0.5", label="all pixels")
        ax.hist(values[keep], bins=edges, histtype="step", color="C0", label="kept")
        ax.plot(x, gauss, color="C3", lw=1, label=f"Gaussian, sigma {std:.3g} ADU")
        ax.axvline(centre, color="k", lw=0.8, ls=":")
        ax.set_xlabel("difference (ADU)")
        ax.set_ylabel("pixels")
        if log_scale:
            ax.set_yscale("log")
            ax.set_ylim(bottom=0.5)
        else:
            ax.legend(fontsize="small")
    figure.suptitle(
        f"{Path(str(name_a)).name} - {Path(str(name_b)).name}: read noise {std / math.sqrt(2):.3g} ADU"
    )
    return figure
