# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The night report: one self-contained HTML page (images embedded as data URIs)."""

import base64
import html
import logging
import time
from pathlib import Path

import yaml

__all__ = ["write_night_report"]

log = logging.getLogger(__name__)

_STYLE = """
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;font-size:90%}
.rejected{background:#fdd}.failed{background:#fbb}.done{background:#efe}
.thumbs{display:flex;flex-wrap:wrap;gap:8px}.thumb{width:210px;font-size:80%}
.thumb img{width:200px;border:3px solid #6a6}.thumb.bad img{border-color:#c44}
.thumb.preview{width:auto;max-width:420px}.thumb.preview img{width:auto;max-width:400px;border-color:#888}
pre{background:#f6f6f6;padding:.5em}
"""


def _b64png(data):
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _e(value):
    return html.escape(str(value))


def _plots(selection):
    """Quality against time, drawn by the quality report's `plot_against_time`."""
    from astrophot.analysis.report import html_figure, plot_against_time

    if selection is None or not len(selection):
        return "<p>No quality records (no frame was measured).</p>"
    columns = [
        ("fwhm", "FWHM (px)"),
        ("background", "Sky background"),
        ("n_stars", "Stars detected"),
        ("airmass", "Airmass"),
        ("transparency", "Transparency (star flux / filter median)"),
        ("ellipticity", "Ellipticity"),
    ]
    figures = []
    for column, label in columns:
        if column in selection.colnames:
            try:
                figures.append(html_figure(plot_against_time(selection, column, label), label))
            except (TypeError, ValueError) as exc:
                log.debug("no %s plot: %s", column, exc)
    return '<div class="figures">' + "".join(figures) + "</div>"


def _thumbnails(frames, size):
    from astrophot.analysis.report import make_thumbnail

    items = []
    for frame in frames:
        product = frame["products"].get("solved") or frame["products"].get("calibrated")
        name = Path(frame["file"]).name
        bad = frame["status"] != "done" or not frame.get("accepted", True)
        why = frame.get("reason") or frame.get("rejection") or ("accepted" if not bad else "")
        img = ""
        if product:
            try:
                made = frame.get("thumbnail")  # by the frame's task, while its pixels were in memory
                data = Path(made).read_bytes() if made and Path(made).exists() else None
                data = data or make_thumbnail(product, size=size)
                img = f'<img alt="{_e(name)}" src="{_b64png(data)}">'
            except Exception as exc:
                img = f"(no thumbnail: {_e(exc)})"
        status = "rejected" if frame.get("accepted") is False else frame["status"]
        items.append(
            f'<div class="thumb{" bad" if bad else ""}">{img}<br><b>{_e(name)}</b><br>{_e(status)}: {_e(why)}</div>'
        )
    return '<div class="thumbs">' + "".join(items) + "</div>"


def _link(path, output):
    """A link from ``report/night.html`` to a product."""
    path = Path(path)
    return f"../{path.relative_to(output)}" if path.is_relative_to(output) else path.as_uri()


def _frame_table(frames, output):
    head = "<tr><th>light</th><th>status</th><th>reason</th><th>FWHM</th><th>stars</th><th>seconds</th><th>products</th></tr>"
    rows = []
    for frame in frames:
        q = frame.get("quality") or {}
        status = "rejected" if frame.get("accepted") is False else frame["status"]
        links = " ".join(
            f'<a href="{_e(_link(p, output))}">{_e(k)}</a>' for k, p in frame["products"].items()
        )
        fwhm = q.get("fwhm")
        rows.append(
            f'<tr class="{_e(status)}"><td>{_e(Path(frame["file"]).name)}</td><td>{_e(status)}</td>'
            f"<td>{_e(frame.get('reason') or frame.get('rejection') or '')}</td>"
            f"<td>{'' if fwhm is None else f'{float(fwhm):.2f}'}</td><td>{_e(q.get('n_stars', ''))}</td>"
            f"<td>{frame['seconds'].get('total', 0):.2f}</td><td>{links}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _masters(result):
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(Path(path).name if path else 'none')}</td><td>{_e(reason)}</td></tr>"
        for name, (path, reason) in sorted(result.masters.items())
    )
    return f"<table><tr><th>master</th><th>file</th><th>why</th></tr>{rows}</table>"


def _stages(result):
    rows = "".join(
        f'<tr class="{_e(s["status"].replace(" ", "-"))}"><td>{_e(name)}</td><td>{_e(s["status"])}</td>'
        f"<td>{_e(s.get('reason', ''))}</td><td>{' '.join(_e(Path(p).name) for p in s['products'])}</td></tr>"
        for name, s in result.stages.items()
    )
    times = "".join(f"<tr><td>{_e(k)}</td><td>{v:.2f}</td></tr>" for k, v in result.timings.items())
    return (
        f"<table><tr><th>stage</th><th>status</th><th>reason</th><th>products</th></tr>{rows}</table>"
        f"<h3>Time per stage (s; per-frame stages summed over frames)</h3><table>{times}</table>"
    )


def _thumb(image, caption, size):
    from astrophot.analysis.report import make_thumbnail

    try:
        img = f'<img alt="{_e(caption)}" src="{_b64png(make_thumbnail(image, size=size))}">'
    except Exception as exc:
        img = f"no preview ({_e(exc)})"
    return f'<div class="thumb preview">{img}<br>{_e(caption)}</div>'


def _product_previews(path, size):
    """A product's preview, and for a stack its coverage, exposure and rejection maps."""
    from astrophot.io import read_frame

    name = Path(path).name
    try:
        frame = read_frame(path)
    except Exception as exc:
        return [f'<div class="thumb preview">{_e(name)}: no preview ({_e(exc)})</div>']
    items = [_thumb(frame, name, size)]
    for attribute, label in (
        ("coverage", "coverage (frames)"),
        ("exposure_map", "exposure (s)"),
        ("rejection", "rejected values"),
    ):
        image = getattr(frame, attribute, None)
        if image is not None and getattr(image, "ndim", 0) == 2:
            items.append(_thumb(image, f"{name}: {label}", size // 2))
    return items


def _previews(result, size):
    items = []
    for kind in ("stack", "mosaic", "continuum"):
        for path in result.products.get(kind, []):
            items.extend(_product_previews(path, size))
    for path in result.products.get("color", []):
        if str(path).endswith(".png"):
            data = Path(path).read_bytes()
            items.append(
                f'<div class="thumb preview"><img alt="colour" src="{_b64png(data)}">'
                f"<br>{_e(Path(path).name)}</div>"
            )
    if not items:
        return "<p>No stack, line or colour product in this run (see the stage table for why).</p>"
    return '<div class="thumbs">' + "".join(items) + "</div>"


def _header(plan, result):
    from astrophot.analysis.report import html_header, night_facts, rules_text

    counts = {}
    for frame in result.frames:
        status = "rejected" if frame.get("accepted") is False else frame["status"]
        counts[status] = counts.get(status, 0) + 1
    selection = getattr(result, "selection", None)
    facts = [("Night", f"{plan.source} -> {plan.output}")]
    facts.append(("Lights", ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"))
    rules = ()
    if selection is not None and len(selection):
        facts.extend(night_facts(selection))
        rules = rules_text(selection.meta.get("rules"))
    if plan.started is not None:
        facts.append(("Run time", f"{time.perf_counter() - plan.started:.1f} s until the report"))
    return html_header("astrophot night report", facts, rules=rules)


def write_night_report(plan, result):
    """
    Write ``report/night.html`` for a processed night.

    The page is self-contained (thumbnails, plots and previews inlined as
    data URIs) and extends the quality report
    (`~astrophot.analysis.write_quality_report`) with its pieces: the
    header, the plots against time, and the night's own sections (every
    frame's status and why, masters used and why, stages and their time,
    previews of the combined products, links, the configuration).

    Returns
    -------
    `~pathlib.Path`
    """
    from astrophot.analysis.report import html_page
    from astrophot.io._atomic import write_text_atomic

    output = Path(plan.output)
    size = int(plan.config["report"]["thumbnail_size"])
    (output / "report").mkdir(exist_ok=True)
    sections = [
        f"<style>{_STYLE}</style>",
        _header(plan, result),
        "<h2>Stages</h2>",
        _stages(result),
        "<h2>Frames</h2>",
        _frame_table(result.frames, output),
        _thumbnails(result.frames, size),
        "<h2>Through the night</h2>",
        _plots(getattr(result, "selection", None)),
        "<h2>Masters used and why</h2>",
        _masters(result),
        "<h2>Stacks, line and colour</h2>",
        _previews(result, size * 2),
        "<h2>Configuration</h2>",
        f"<pre>{_e(yaml.safe_dump(plan.config, sort_keys=False))}</pre>",
    ]
    path = output / "report" / "night.html"
    write_text_atomic(path, html_page("astrophot night report", sections))
    return path
