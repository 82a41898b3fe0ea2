# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Headless Chromium for the report tests and the docs screenshot
(``docs/_make_report_screenshot.py``): one way of calling it, one layout probe.
"""

import json
import re
import shutil
import subprocess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

WIDTH = 1400

#: Added to a copy of the page only: writes the layout into the DOM for --dump-dom.
PROBE = """<script>
window.addEventListener('load', () => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.right, r.width]; };
  const table = document.querySelector('table.frames');
  const heads = [...table.querySelectorAll('thead th')].map(th => [th.textContent.trim(), ...box(th)]);
  const images = [...document.images].map(img => [img.getAttribute('src').slice(0, 40), img.complete,
                                                   img.naturalWidth, img.getBoundingClientRect().width]);
  const out = {width: window.innerWidth, scroll: document.documentElement.scrollWidth,
               height: document.documentElement.scrollHeight,
               table: box(table), heads: heads, images: images};
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium(url, profile, *extra, width=WIDTH, height=1600):
    """Run headless Chromium on ``url`` with a ``width`` x ``height`` window (a fresh ``profile``)."""
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        *extra,
        url,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def console_lines(proc):
    """The page's console messages in Chromium's log (the report has no scripts: any is an error)."""
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def page_layout(page, profile, *, width=WIDTH):
    """
    The layout of the HTML file ``page`` at ``width`` px, measured by `PROBE` on a copy of it:
    window width, page scroll width and height, the frames table's box, each table head's
    (text, left, right, width) and each image's (src start, loaded, natural width, shown width).
    Returns (layout, proc).
    """
    text = page.read_text()
    probed = page.with_name("probe.html")
    probed.write_text(text.replace("</body>", PROBE + "</body>"))
    try:
        proc = chromium(probed.as_uri(), profile, "--dump-dom", width=width)
    finally:
        probed.unlink()
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    if not match:
        raise RuntimeError(f"no layout probe in the page: {proc.stdout[-2000:]}")
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&")), proc


def screenshot(page, png, profile, *, width=WIDTH, height=None):
    """
    A PNG screenshot of the HTML file ``page`` at ``width`` px; ``height`` None takes the
    whole page (measured with `page_layout`). Returns the Chromium process.
    """
    if height is None:
        height = int(page_layout(page, profile, width=width)[0]["height"])
    return chromium(page.as_uri(), profile, f"--screenshot={png}", width=width, height=height)


def png_size(path):
    """(width, height) of a PNG file, from its header."""
    data = path.read_bytes()[:24]
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
