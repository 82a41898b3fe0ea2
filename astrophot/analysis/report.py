# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The night's quality report: a CSV, plots against time, and one HTML page."""

import base64
import html
import io
import logging
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from astropy.table import Table

from astrophot.analysis.quality import select_frames
from astrophot.exceptions import FrameWriteError

__all__ = ["make_thumbnail", "write_quality_report"]

log = logging.getLogger(__name__)

_PLOTS = (
    ("fwhm", "FWHM (pixels)", "quality_fwhm.png"),
    ("background", "background (per pixel)", "quality_background.png"),
    ("n_stars", "stars detected", "quality_stars.png"),
)


def _atomic_bytes(data, path):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_thumbnail(frame, *, size=256):
    """
    A PNG thumbnail (bytes) of a frame or 2-D array, block-averaged and stretched.

    Parameters
    ----------
    frame : frame, `~astropy.nddata.CCDData`, array, str or path-like
        A path is read with `~astrophot.read_frame`.
    size : int, optional
        Longest side in pixels.

    Returns
    -------
    bytes
        PNG data (grey scale, row 0 at the bottom as ds9 shows it).

    See Also
    --------
    write_quality_report : Puts one per frame in the HTML page.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot.analysis import make_thumbnail
    >>> make_thumbnail(np.random.default_rng(0).normal(size=(512, 300)))[1:4]
    b'PNG'
    """
    from matplotlib.figure import Figure

    if isinstance(frame, (str, os.PathLike)):
        from astrophot.io import read_frame

        frame = read_frame(frame)
    data = np.asarray(getattr(frame, "data", frame), dtype=np.float32)
    mask = getattr(frame, "mask", None)
    if mask is not None:
        data = np.where(np.asarray(mask, dtype=bool), np.nan, data)
    factor = max(1, int(math.ceil(max(data.shape) / float(size))))
    ny, nx = (data.shape[0] // factor) * factor, (data.shape[1] // factor) * factor
    if factor > 1:
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            # blocks that are all masked: "mean of empty slice"
            warnings.simplefilter("ignore", RuntimeWarning)
            data = np.nanmean(data[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor), axis=(1, 3))
    finite = data[np.isfinite(data)]
    if finite.size:
        low, high = np.percentile(finite, [5.0, 99.5])
    else:
        low, high = 0.0, 1.0
    span = high - low if high > low else 1.0
    scaled = np.clip((np.nan_to_num(data, nan=low) - low) / span, 0, 1)
    stretched = np.arcsinh(10 * scaled) / np.arcsinh(10)
    h, w = stretched.shape
    fig = Figure(figsize=(w / 100.0, h / 100.0), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(stretched, cmap="gray", origin="lower", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _time_axis(table):
    mjd = np.asarray(table["mjd"], dtype=float)
    if len(mjd) and np.all(np.isfinite(mjd)):
        return (mjd - mjd.min()) * 24.0, "hours since the first frame (UTC)"
    return np.arange(len(table), dtype=float), "frame number"


def _plot(table, column, label):
    from matplotlib.figure import Figure

    x, xlabel = _time_axis(table)
    values = np.asarray(table[column], dtype=float)
    accepted = np.asarray(table["accepted"], dtype=bool)
    fig = Figure(figsize=(7.0, 3.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    filters = sorted(set(str(f) for f in table["filter"]))
    for name in filters:
        sel = np.asarray([str(f) == name for f in table["filter"]])
        ax.plot(x[sel & accepted], values[sel & accepted], "o", label=name or "no filter")
        if np.any(sel & ~accepted):
            ax.plot(x[sel & ~accepted], values[sel & ~accepted], "x", color="red", ms=9)
    if np.any(~accepted):
        ax.plot([], [], "x", color="red", label="rejected")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _cell(value):
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return ""
        return f"{value:.4g}"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    return html.escape(str(value))


_HTML_COLUMNS = (
    "file",
    "date_obs",
    "filter",
    "exposure_time",
    "fwhm",
    "fwhm_arcsec",
    "ellipticity",
    "n_stars",
    "background",
    "sky_noise",
    "transparency",
    "airmass",
    "limiting_magnitude",
    "weight",
    "accepted",
    "reason",
)


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _html(table, plots, thumbnails):
    rows = []
    for i, row in enumerate(table):
        cls = "ok" if row["accepted"] else "bad"
        thumb = thumbnails[i]
        img = f'<img alt="thumbnail" src="data:image/png;base64,{_b64(thumb)}">' if thumb else "(no image)"
        cells = "".join(f"<td>{_cell(row[c])}</td>" for c in _HTML_COLUMNS if c in table.colnames)
        rows.append(f'<tr class="{cls}"><td>{img}</td>{cells}</tr>')
    head = "".join(f"<th>{html.escape(c)}</th>" for c in _HTML_COLUMNS if c in table.colnames)
    figures = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{_b64(png)}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, png in plots
    )
    n_ok = int(np.sum(table["accepted"]))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>astrophot quality report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; vertical-align: middle; }}
tr.bad {{ background: #fde2e2; }}
tr.ok {{ background: #eef8ee; }}
td img {{ max-width: 200px; }}
figure {{ display: inline-block; margin: 0.5em; }}
</style></head><body>
<h1>Quality report</h1>
<p>{len(table)} frames: {n_ok} accepted, {len(table) - n_ok} rejected.</p>
{figures}
<table><thead><tr><th>image</th>{head}</tr></thead><tbody>
{"".join(rows)}
</tbody></table>
</body></html>
"""


def write_quality_report(records, outdir, *, frames=None, rules=None, overwrite=False):
    """
    Write the night's quality report: a CSV, three PNG plots and one HTML page.

    Parameters
    ----------
    records : sequence of `~astrophot.analysis.QualityRecord`, or a table
        Records, the table of `~astrophot.analysis.summarize_quality`, or
        that of `~astrophot.analysis.select_frames` (kept as it is).
    outdir : str or path-like
        Directory for the files (created when missing).
    frames : sequence, optional
        The frames (or their paths), in the order of ``records``, for the
        thumbnails. By default the ``file`` column is read where it names an
        existing file.
    rules : dict, optional
        Passed to `~astrophot.analysis.select_frames` (when ``records`` has
        no ``accepted`` column yet).
    overwrite : bool, optional
        Replace existing report files.

    Returns
    -------
    dict
        ``csv``, ``html`` and ``plots`` (list) paths.

    Raises
    ------
    astrophot.exceptions.FrameWriteError
        A report file exists and ``overwrite`` is False.

    See Also
    --------
    assess_quality : The records.
    select_frames : The decisions shown.

    Notes
    -----
    The HTML page is self-contained (plots and thumbnails are inlined as
    base64 PNG), so it can be mailed or archived alone. Rejected frames are
    shaded red with their reason. Each file is written atomically.

    Examples
    --------
    >>> from astrophot.analysis import write_quality_report
    >>> from astrophot.analysis.quality import example_records
    >>> paths = write_quality_report(example_records(), getfixture("tmp_path"))
    >>> sorted(p.name for p in [paths["csv"], paths["html"], *paths["plots"]])[:2]
    ['quality.csv', 'quality.html']
    """
    if isinstance(records, Table) and "accepted" in records.colnames:
        table = records.copy()
    else:
        table = select_frames(records, rules=rules)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    csv_path = outdir / "quality.csv"
    html_path = outdir / "quality.html"
    plot_paths = [outdir / name for _, _, name in _PLOTS]
    if not overwrite:
        existing = [p for p in (csv_path, html_path, *plot_paths) if p.exists()]
        if existing:
            raise FrameWriteError(f"{existing[0]}: exists (use overwrite=True to replace the report)")
    if frames is not None and len(frames) != len(table):
        raise ValueError(f"{len(frames)} frames given for {len(table)} quality records")

    buffer = io.StringIO()
    table.write(buffer, format="ascii.csv")
    _atomic_bytes(buffer.getvalue().encode("utf-8"), csv_path)
    plots = []
    for (column, label, _), path in zip(_PLOTS, plot_paths):
        png = _plot(table, column, label)
        _atomic_bytes(png, path)
        plots.append((label, png))
    thumbnails = []
    for i in range(len(table)):
        source = frames[i] if frames is not None else None
        if source is None:
            name = str(table["file"][i])
            source = name if name and Path(name).is_file() else None
        if source is None:
            thumbnails.append(None)
            continue
        try:
            thumbnails.append(make_thumbnail(source))
        except Exception as exc:
            log.warning("%s: no thumbnail (%s)", table["file"][i], exc)
            thumbnails.append(None)
    _atomic_bytes(_html(table, plots, thumbnails).encode("utf-8"), html_path)
    log.info("quality report written to %s", html_path)
    return {"csv": csv_path, "html": html_path, "plots": plot_paths}
