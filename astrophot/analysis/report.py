# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The night's quality report: a CSV, plots against time, and one HTML page."""

import base64
import html
import io
import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table

from astrophot.analysis.quality import DEFAULT_RULES, select_frames
from astrophot.exceptions import FrameWriteError
from astrophot.io._atomic import write_bytes_atomic, write_text_atomic

__all__ = [
    "QUALITY_COLUMNS",
    "ReportColumn",
    "html_figure",
    "html_header",
    "html_page",
    "html_table",
    "make_thumbnail",
    "night_facts",
    "plot_against_time",
    "relative_link",
    "rules_text",
    "site_text",
    "write_preview",
    "write_quality_report",
]

log = logging.getLogger(__name__)


#: The plots of the quality report: column, axis label, file name, caption.
_PLOTS = (
    ("fwhm", "FWHM (px)", "quality_fwhm.png", "Seeing: star FWHM of each frame"),
    ("ellipticity", "ellipticity (1 - b/a)", "quality_ellipticity.png", "Star elongation (trailing, tilt)"),
    ("background", "sky background ({unit}/px)", "quality_background.png", "Sky background"),
    ("n_stars", "stars detected", "quality_stars.png", "Stars detected (clouds, focus)"),
    ("airmass", "airmass", "quality_airmass.png", "Airmass"),
)


@dataclass(frozen=True)
class ReportColumn:
    """
    One column of a report table.

    ``key`` is the table column, ``title`` the heading a person reads, ``unit`` shown
    under it, ``fmt`` a format for numbers and ``css`` a class for its cells (``"wide"``
    lets the text wrap; the others stay on one line).
    """

    key: str
    title: str
    unit: str = ""
    fmt: str = "{:.4g}"
    css: str = ""


#: The columns of the quality table, in order.
QUALITY_COLUMNS = (
    ReportColumn("file", "Frame", css="file"),
    ReportColumn("date_obs", "Time", "UTC", css="time"),
    ReportColumn("filter", "Filter"),
    ReportColumn("exposure_time", "Exp.", "s", "{:.0f}"),
    ReportColumn("fwhm", "FWHM", "px", "{:.2f}"),
    ReportColumn("fwhm_arcsec", "FWHM", "arcsec", "{:.2f}"),
    ReportColumn("ellipticity", "Ellip.", "", "{:.3f}"),
    ReportColumn("n_stars", "Stars", "", "{:d}"),
    ReportColumn("background", "Sky", "{unit}/px", "{:.4g}"),
    ReportColumn("sky_noise", "Sky noise", "{unit}/px", "{:.3g}"),
    ReportColumn("transparency", "Transp.", "\u00d7 median", "{:.2f}"),
    ReportColumn("airmass", "Airmass", "", "{:.2f}"),
    ReportColumn("limiting_magnitude", "Limit 5\u03c3", "instr. mag", "{:.2f}"),
    ReportColumn("weight", "Weight", "", "{:.2f}"),
    ReportColumn("accepted", "Kept"),
    ReportColumn("reason", "Reason for rejection", css="wide"),
)

#: What the less obvious quality columns mean (shown under the table; ``{unit}`` is the frames' unit).
QUALITY_NOTES = (
    "Transparency is each frame's star flux (the same stars in every frame, the 11th to 30th "
    "brightest, in an aperture of 2.5 FWHM) divided by the median of its filter's frames: it is "
    "relative, not an absolute transmission, so about half the frames read above 1 by construction. "
    "Above 1 means more starlight than the typical frame (clearer sky); a blurred or defocused frame "
    "can also read 1.1 to 1.3, its larger aperture catching more of the stars' wings.",
    "Limit 5\u03c3 is the magnitude of a point source detected at 5 sigma in the photometric aperture, "
    "on the instrumental scale m = -2.5 log10(rate), the rate in {unit}/s with a zero point of 0: "
    "uncalibrated, so values near or below 0 are normal. A calibrated magnitude would add the "
    "filter's photometric zero point (from stars of a photometric catalogue, not applied here); "
    "the column compares the depth of frames of one filter.",
    "Weight is the relative point-source signal-to-noise squared used when stacking "
    "(1 for the best frame of each filter, 0 for rejected frames).",
)

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.2em; color: #222; max-width: 1900px; }
h1 { font-size: 1.5em; margin: 0 0 0.3em 0; }
h2 { font-size: 1.15em; margin: 1.2em 0 0.4em 0; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1em; margin: 0.4em 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
ul.rules, ul.notes { margin: 0.3em 0; padding-left: 1.4em; font-size: 0.9em; }
table.frames { border-collapse: collapse; font-size: 12.5px; width: 100%; }
table.frames td, table.frames th { border: 1px solid #ccc; padding: 2px 4px; vertical-align: middle; }
table.frames th { background: #f2f2f2; font-weight: 600; }
table.frames th .unit { display: block; font-weight: normal; color: #666; font-size: 0.9em; }
table.frames td { white-space: nowrap; text-align: right; }
table.frames td.file, table.frames td.wide, table.frames td.text { text-align: left; }
table.frames td.file { white-space: normal; overflow-wrap: anywhere; max-width: 13em; }
table.frames td.wide { white-space: normal; min-width: 14em; }
table.frames td.thumb { padding: 1px; }
table.frames td.thumb img { width: 150px; display: block; }
tr.bad { background: #fde2e2; }
tr.ok { background: #eef8ee; }
div.figures { display: flex; flex-wrap: wrap; gap: 0.8em; }
figure { margin: 0; }
figcaption { font-weight: 600; font-size: 0.95em; margin-bottom: 0.2em; }
figure img { width: 440px; }
"""


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


def html_page(title, sections):
    """
    A whole HTML page (UTF-8, the report style sheet, no scripts) from HTML ``sections``.

    Parameters
    ----------
    title : str
        The page title (plain text, escaped here).
    sections : iterable of str
        HTML snippets, joined one a line as the page body.

    Returns
    -------
    str
        The HTML document.
    """
    body = "\n".join(sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def html_header(title, facts, *, rules=(), notes=()):
    """
    The head of a report: a title, facts, and the rules applied and notes as bullet lists.

    Parameters
    ----------
    title : str
        The report's title (the page's ``<h1>``).
    facts : iterable of (str, object) pairs
        Label and text, shown as a definition list (the text through `str`).
    rules : iterable of str, optional
        The rules applied, listed under "Rules applied".
    notes : iterable of str, optional
        Notes, listed after the rules.

    Returns
    -------
    str
        The HTML ``<header>`` element (all text escaped here).
    """
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts)
    parts = [f"<h1>{html.escape(title)}</h1>", f'<dl class="facts">{items}</dl>']
    if rules:
        parts.append("<h2>Rules applied</h2>")
        parts.append('<ul class="rules">' + "".join(f"<li>{html.escape(r)}</li>" for r in rules) + "</ul>")
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    return "<header>" + "".join(parts) + "</header>"


def _format(value, column):
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return f"{int(value):d}"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return ""
        fmt = column.fmt if "d}" not in column.fmt else "{:.0f}"
        return fmt.format(float(value))
    return html.escape(str(value))


def html_table(rows, columns, *, row_class=None, first=None, first_title="", unit="", cell_html=None):
    """
    An HTML table of ``rows`` with ``columns``.

    Parameters
    ----------
    rows : `~astropy.table.Table` or sequence of dict
        The values, one row per table row.
    columns : sequence of `ReportColumn`
        The columns, in order; those missing from the rows are left out.
    row_class : callable, optional
        ``row_class(i)`` gives a CSS class for row ``i`` (``"ok"``/``"bad"``).
    first : sequence of str, optional
        ``first[i]`` is an HTML snippet for a leading column of row ``i`` (a thumbnail).
    first_title : str, optional
        The heading of that leading column.
    unit : str, optional
        Replaces ``{unit}`` in the column units.
    cell_html : callable, optional
        ``cell_html(i, column)`` may return the HTML of a cell; when it returns None
        (or is not given) the cell shows the formatted value.

    Returns
    -------
    str
        The HTML ``<table>`` element.
    """
    names = rows.colnames if isinstance(rows, Table) else (list(rows[0]) if len(rows) else [])
    shown = [c for c in columns if c.key in names]
    heads = "".join(
        f"<th>{html.escape(c.title)}"
        + (f'<span class="unit">{html.escape(c.unit.format(unit=unit))}</span>' if c.unit else "")
        + "</th>"
        for c in shown
    )
    if first is not None:
        heads = f"<th>{html.escape(first_title)}</th>{heads}"
    body = []
    for i, row in enumerate(rows):
        cells = []
        for c in shown:
            content = cell_html(i, c) if cell_html is not None else None
            if content is None:
                content = _format(row[c.key], c)
            css = c.css or ("text" if isinstance(row[c.key], str) else "")
            cells.append(f'<td class="{css}">{content}</td>' if css else f"<td>{content}</td>")
        lead = f'<td class="thumb">{first[i]}</td>' if first is not None else ""
        cls = f' class="{row_class(i)}"' if row_class is not None else ""
        body.append(f"<tr{cls}>{lead}{''.join(cells)}</tr>")
    return f'<table class="frames"><thead><tr>{heads}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def html_figure(image, caption, *, alt=None):
    """
    A figure with its caption above.

    Parameters
    ----------
    image : bytes, str or path-like
        PNG bytes (inlined as a data URL) or a relative path.
    caption : str
        The caption (plain text, escaped here).
    alt : str, optional
        The image's alternative text; default ``caption``.

    Returns
    -------
    str
        The HTML ``<figure>`` element.
    """
    src = f"data:image/png;base64,{_b64(image)}" if isinstance(image, bytes) else html.escape(str(image))
    alt = html.escape(alt or caption)
    return f'<figure><figcaption>{html.escape(caption)}</figcaption><img alt="{alt}" src="{src}"></figure>'


def relative_link(path, start):
    """
    ``path`` relative to the directory ``start``, with ``/`` separators (for an HTML link).

    Parameters
    ----------
    path : str or path-like
        The file linked to.
    start : str or path-like
        The directory the link is made from (where the HTML page is).

    Returns
    -------
    str
        The relative path, both resolved first.
    """
    return Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()


def _clock(hours, _position=None):
    minutes = int(round(hours * 60.0))
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def _time_axis(table):
    """x values and label: hours since 0h UTC of the first frame's day (ticks as UTC clock time)."""
    mjd = np.asarray(table["mjd"], dtype=float) if "mjd" in table.colnames else np.full(len(table), np.nan)
    if len(mjd) and np.all(np.isfinite(mjd)):
        return (mjd - math.floor(mjd.min())) * 24.0, "time (UTC)"
    return np.arange(len(table), dtype=float), "frame number"


#: The fixed limit (`~astrophot.analysis.DEFAULT_RULES` key) drawn on each plot.
_FIXED_RULE = {
    "fwhm": "max_fwhm",
    "ellipticity": "max_ellipticity",
    "background": "max_background",
    "n_stars": "min_stars",
    "airmass": "max_airmass",
}


def plot_against_time(table, column, label, *, limits=None, fixed=None):
    """
    A plot of ``column`` of each frame against UTC time.

    One colour per filter, rejected frames as red crosses. A column without
    any value says so in the plot.

    Parameters
    ----------
    table : `~astropy.table.Table`
        The quality table (``filter``, ``accepted``, ``column`` and, for the
        time axis, ``mjd``; unless every ``mjd`` is finite the x axis is the frame number).
    column : str
        The column plotted.
    label : str
        The y-axis label.
    limits : dict, optional
        ``{filter: (value, text)}``: each filter's limit, drawn as a dashed line
        in that filter's colour.
    fixed : float, optional
        A fixed limit, drawn as a dotted black line.

    Returns
    -------
    bytes
        PNG data.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    x, xlabel = _time_axis(table)
    values = np.asarray(table[column], dtype=float)
    accepted = np.asarray(table["accepted"], dtype=bool)
    fig = Figure(figsize=(5.5, 3.0), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    if not np.any(np.isfinite(values)):
        ax.text(0.5, 0.5, f"no {label} for any frame", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        _plot_points(ax, table, x, values, accepted, limits)
        if fixed is not None and math.isfinite(float(fixed)):
            ax.axhline(float(fixed), color="black", ls=":", lw=1.2, label=f"fixed limit {float(fixed):g}")
        if xlabel.endswith("(UTC)"):
            ax.xaxis.set_major_formatter(FuncFormatter(_clock))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="best")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _plot_points(ax, table, x, values, accepted, limits):
    names = [str(f) for f in table["filter"]]
    for name in sorted(set(names)):
        sel = np.asarray([f == name for f in names])
        (line,) = ax.plot(x[sel & accepted], values[sel & accepted], "o", label=name or "no filter")
        if np.any(sel & ~accepted):
            ax.plot(x[sel & ~accepted], values[sel & ~accepted], "x", color="red", ms=9)
        limit = (limits or {}).get(name)
        if limit is not None and math.isfinite(limit[0]):
            ax.axhline(limit[0], color=line.get_color(), ls="--", lw=1, label=f"{name or 'no filter'} limit")
    if np.any(~accepted):
        ax.plot([], [], "x", color="red", label="rejected")


def _plot_caption(table, column, caption, per_filter, fixed):
    """The caption above a plot: what it shows, and which limits are drawn."""
    values = np.asarray(table[column], dtype=float)
    if not np.any(np.isfinite(values)):
        return caption + (" (no AIRMASS in the frames' headers)" if column == "airmass" else " (no values)")
    drawn = []
    if per_filter:
        drawn.append("dashed: each filter's limit")
    if fixed is not None:
        drawn.append(f"dotted: fixed limit {float(fixed):g}")
    return caption + (f" ({'; '.join(drawn)})" if drawn else "")


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _minutes(seconds):
    return f"{seconds / 60.0:.1f} min" if seconds < 3600 else f"{seconds / 3600.0:.2f} h"


def _distinct(table, column):
    if column not in table.colnames:
        return []
    return sorted({str(v) for v in table[column] if str(v).strip()})


def night_facts(table, *, site=None):
    """
    The facts heading a night's report, as (label, text) pairs.

    Parameters
    ----------
    table : `~astropy.table.Table`
        The quality table (``accepted``, ``filter`` and, when there,
        ``telescope``, ``target``, ``date_obs``, ``exposure_time``).
    site : str, optional
        The site in words (`site_text`); default ``'unknown'``.

    Returns
    -------
    list of (str, str)
        Telescope, target, night (UTC span), site, frames per filter
        (accepted of all) and total accepted exposure.
    """
    facts = [
        ("Telescope", ", ".join(_distinct(table, "telescope")) or "unknown"),
        ("Target", ", ".join(_distinct(table, "target")) or "unknown"),
    ]
    dates = (
        sorted(str(d) for d in table["date_obs"] if str(d).strip()) if "date_obs" in table.colnames else []
    )
    if dates:
        facts.append(
            ("Night (UTC)", f"{dates[0][:16].replace('T', ' ')} to {dates[-1][:16].replace('T', ' ')}")
        )
    else:
        facts.append(("Night (UTC)", "unknown (no DATE-OBS)"))
    facts.append(("Site", site or "unknown"))
    accepted = np.asarray(table["accepted"], dtype=bool)
    exposure = np.asarray(table["exposure_time"], dtype=float) if "exposure_time" in table.colnames else None
    per_filter, total = [], 0.0
    for name in sorted({str(f) for f in table["filter"]}):
        sel = np.asarray([str(f) == name for f in table["filter"]])
        text = f"{name or 'no filter'}: {int(np.sum(sel & accepted))} of {int(np.sum(sel))} accepted"
        if exposure is not None:
            seconds = float(np.nansum(exposure[sel & accepted]))
            total += seconds
            text += f" ({_minutes(seconds)})"
        per_filter.append(text)
    facts.append(("Frames per filter", "; ".join(per_filter)))
    facts.append(("Total accepted exposure", _minutes(total) if exposure is not None else "unknown"))
    return facts


_RULE_TEXT = {
    "fwhm_tolerance": "FWHM is more than {v:.0%} above the filter's median",
    "ellipticity_tolerance": "ellipticity is more than {v:g} above the filter's median",
    "stars_tolerance": "star count is more than {v:.0%} below the filter's median",
    "background_tolerance": "sky is more than {v:.0%} above the filter's median",
    "transparency_tolerance": "star flux is more than {v:.0%} below the filter's median",
    "max_fwhm": "FWHM is above {v:g} px",
    "max_fwhm_arcsec": "FWHM is above {v:g} arcsec",
    "max_ellipticity": "ellipticity is above {v:g}",
    "min_stars": "star count is below {v:g}",
    "max_background": "sky is above {v:g}",
    "max_sky_noise": "sky noise is above {v:g}",
    "max_airmass": "airmass is above {v:g}",
    "min_transparency": "transparency is below {v:g}",
}


def rules_text(rules):
    """
    The rules of `~astrophot.analysis.select_frames` as sentences (rejected when ...).

    Parameters
    ----------
    rules : dict or None
        The rules applied (`~astrophot.analysis.DEFAULT_RULES` keys); rules
        that are None are left out, and the night rules when ``robust`` is false.

    Returns
    -------
    list of str
        One sentence a rule (empty for no rules).
    """
    if not rules:
        return []
    out = []
    robust = rules.get("robust", True)
    if robust:
        out.append(
            f"Night rules compare each frame with the other frames of its filter (when there are at "
            f"least {rules.get('min_frames', 3)}): a frame must be beyond {rules.get('n_sigma', 5):g} "
            "robust spreads (MAD) and beyond the tolerance below to be rejected."
        )
    for key, template in _RULE_TEXT.items():
        value = rules.get(key)
        if value is None or (key.endswith("_tolerance") and not robust):
            continue
        value = float(getattr(value, "value", value))
        if key.endswith("_tolerance"):
            out.append("Rejected when the " + template.format(v=value) + " (night rule)")
        else:
            out.append("Rejected when the " + template.format(v=value) + " (fixed limit)")
    return out


def write_preview(frame, path, *, size=1200):
    """
    Write a larger PNG preview of a frame (see `make_thumbnail`) atomically.

    Parameters
    ----------
    frame : frame, `~astropy.nddata.CCDData`, array, str or path-like
        The image (a path is read with `~astrophot.read_frame`).
    path : str or path-like
        The PNG file written.
    size : int, optional
        Longest side in pixels.

    Returns
    -------
    `~pathlib.Path`
        ``path``.
    """
    write_bytes_atomic(path, make_thumbnail(frame, size=size))
    return Path(path)


def _dms(angle, positive, negative):
    d, m, sec = abs(angle.dms.d), abs(angle.dms.m), abs(angle.dms.s)
    return f"{int(d)}\N{DEGREE SIGN}{int(m):02d}\u2032{int(round(sec)):02d}\u2033 {positive if angle.deg >= 0 else negative}"


def site_text(header):
    """
    The site a FITS header gives, in words.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict
        The header read (``OBSERVAT``/``SITENAME``, ``SITELAT``/``SITELONG``).

    Returns
    -------
    str or None
        The named observatory (``OBSERVAT``/``SITENAME``, else the iTelescope
        site within 10 km of ``SITELAT``/``SITELONG``) and its latitude and
        longitude (``32\N{DEGREE SIGN}54\u203212\u2033 N, 105\N{DEGREE SIGN}31\u203243\u2033 W``);
        None when the header has neither a name nor a position.
    """
    from astrophot.instruments.itelescope import SITES, site_from_header

    name = header.get("OBSERVAT") or header.get("SITENAME")
    try:
        site = site_from_header(header)
    except (KeyError, ValueError):  # MissingKeywordError is a KeyError
        return str(name).strip() if name else None
    where = f"{_dms(site.latitude, 'N', 'S')}, {_dms(site.longitude, 'E', 'W')}"
    if not name:
        lat, lon = np.radians(site.latitude.deg), np.radians(site.longitude.deg)
        for known in SITES.values():
            klat, klon = np.radians(known.latitude.deg), np.radians(known.longitude.deg)
            cos = np.sin(lat) * np.sin(klat) + np.cos(lat) * np.cos(klat) * np.cos(lon - klon)
            if 6371.0 * np.arccos(np.clip(cos, -1, 1)) < 10.0:
                name = f"{known.name} ({known.mpc_code}, {known.description})"
                break
    return f"{name}: {where}" if name else where


def _site_of(source):
    header = getattr(source, "header", None)
    if header is None:
        header = getattr(source, "meta", None)
    if header is None and isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        from astropy.io import fits

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                header = fits.getheader(source, 0)
        except OSError:
            header = None
    return site_text(header) if header is not None else None


def _report_html(table, plots, thumbnails, links, *, site=None, title=None):
    unit = ", ".join(_distinct(table, "unit")) or "unit"
    facts = night_facts(table, site=site)
    known = [dict(facts)[k] for k in ("Telescope", "Target") if dict(facts)[k] != "unknown"]
    title = title or "Night report" + (f": {', '.join(known)}" if known else "")
    n_ok = int(np.sum(table["accepted"]))
    facts.insert(0, ("Frames", f"{len(table)} ({n_ok} accepted, {len(table) - n_ok} rejected)"))
    header = html_header(title, facts, rules=rules_text(table.meta.get("rules")), notes=())
    figures = (
        '<h2>Through the night</h2><div class="figures">'
        + "".join(html_figure(png, caption) for caption, png in plots)
        + "</div>"
    )
    first = []
    for i, thumb in enumerate(thumbnails):
        if not thumb:
            first.append("(no image)")
            continue
        img = f'<img alt="thumbnail" src="data:image/png;base64,{_b64(thumb)}">'
        preview = links[i].get("preview")
        first.append(f'<a href="{html.escape(preview)}">{img}</a>' if preview else img)

    def cell_html(i, column):
        if column.key == "date_obs":
            text = str(table["date_obs"][i])
            return html.escape(text[11:19] if len(text) >= 19 else text)
        if column.key != "file":
            return None
        name = html.escape(Path(str(table["file"][i])).name)
        target = links[i].get("file")
        return f'<a href="{html.escape(target)}">{name}</a>' if target else name

    frames = html_table(
        table,
        QUALITY_COLUMNS,
        row_class=lambda i: "ok" if table["accepted"][i] else "bad",
        first=first,
        first_title="Image",
        unit=unit,
        cell_html=cell_html,
    )
    notes = (
        '<ul class="notes">'
        + "".join(f"<li>{html.escape(n.format(unit=unit))}</li>" for n in QUALITY_NOTES)
        + "</ul>"
    )
    return html_page(title, [header, "<h2>Frames</h2>", frames, notes, figures])


def write_quality_report(records, outdir, *, frames=None, rules=None, site=None, title=None, overwrite=False):
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
    site : str, optional
        The site named in the header (default: ``OBSERVAT`` or ``SITELAT``/``SITELONG``
        of the first frame that has them).
    title : str, optional
        The page's title (default: telescope and target).
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
    The HTML page opens with the night (telescope, target, UTC span, site,
    frames per filter, accepted exposure, the rules applied), then one plot
    per quantity against time (caption above, each filter's limit dashed),
    then the frames: a thumbnail linking to a larger preview in
    ``previews/``, the file name linking to the frame (paths relative to the
    page), and the measurements with units; rejected frames are shaded red
    with their reason. Plots and thumbnails are inlined, so the page reads
    alone too; each file is written atomically. The building blocks
    (``html_page``, ``html_header``, ``html_table``, ``html_figure``,
    ``plot_against_time``, ``night_facts``, ``rules_text``) serve other reports.

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
    plot_paths = [outdir / name for _, _, name, _ in _PLOTS]
    if not overwrite:
        existing = [p for p in (csv_path, html_path, *plot_paths) if p.exists()]
        if existing:
            raise FrameWriteError(f"{existing[0]}: exists (use overwrite=True to replace the report)")
    if frames is not None and len(frames) != len(table):
        raise ValueError(f"{len(frames)} frames given for {len(table)} quality records")

    buffer = io.StringIO()
    table.write(buffer, format="ascii.csv")
    write_text_atomic(csv_path, buffer.getvalue())
    if rules and "rules" not in table.meta:
        table.meta["rules"] = {**DEFAULT_RULES, **rules}
    unit = ", ".join(_distinct(table, "unit")) or "frame unit"
    limits = table.meta.get("limits", {})
    plots = []
    applied = table.meta.get("rules") or {}
    for (column, label, _, caption), path in zip(_PLOTS, plot_paths):
        per_filter = {name: lim[column] for name, lim in limits.items() if column in lim}
        fixed = applied.get(_FIXED_RULE.get(column))
        fixed = None if fixed is None else float(getattr(fixed, "value", fixed))
        png = plot_against_time(table, column, label.format(unit=unit), limits=per_filter, fixed=fixed)
        write_bytes_atomic(path, png)
        plots.append((_plot_caption(table, column, caption, per_filter, fixed), png))
    thumbnails, links = _thumbnails_and_links(table, frames, outdir)
    site = site or next((s for s in map(_site_of, _sources(table, frames)) if s), None)
    page = _report_html(table, plots, thumbnails, links, site=site, title=title)
    write_text_atomic(html_path, page)
    log.info("quality report written to %s", html_path)
    return {"csv": csv_path, "html": html_path, "plots": plot_paths}


def _sources(table, frames):
    for i in range(len(table)):
        source = frames[i] if frames is not None else None
        if source is None:
            name = str(table["file"][i])
            source = name if name and Path(name).is_file() else None
        yield source


def _thumbnails_and_links(table, frames, outdir):
    """A thumbnail (PNG bytes) per frame, and links to its larger preview and its file."""
    thumbnails, links = [], []
    previews = outdir / "previews"
    for i, source in enumerate(_sources(table, frames)):
        link = {}
        path = source if isinstance(source, (str, os.PathLike)) else getattr(source, "source_path", None)
        if path is not None and Path(path).is_file():
            link["file"] = relative_link(path, outdir)
        if source is None:
            thumbnails.append(None)
            links.append(link)
            continue
        try:
            thumbnails.append(make_thumbnail(source, size=360))
            previews.mkdir(exist_ok=True)
            stem = Path(str(table["file"][i])).name or f"frame{i + 1}"
            preview = write_preview(source, previews / f"{i + 1:03d}-{stem}.png")
            link["preview"] = relative_link(preview, outdir)
        except Exception as exc:
            log.warning("%s: no thumbnail (%s)", table["file"][i], exc)
            thumbnails.append(None)
        links.append(link)
    return thumbnails, links
