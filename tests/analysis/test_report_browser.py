# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The quality report in a real headless browser (Debian's chromium, installed by .ci/run):
at 1400 px the whole table, reason column included, fits the window, every image loads,
every link points to a file that exists, and the console stays silent.
"""

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")

WIDTH = 1400

#: Added to a copy of the page only: writes the layout into the DOM for --dump-dom.
_PROBE = """<script>
window.addEventListener('load', () => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.right, r.width]; };
  const table = document.querySelector('table.frames');
  const heads = [...table.querySelectorAll('thead th')].map(th => [th.textContent.trim(), ...box(th)]);
  const images = [...document.images].map(img => [img.getAttribute('src').slice(0, 40), img.complete,
                                                   img.naturalWidth]);
  const out = {width: window.innerWidth, scroll: document.documentElement.scrollWidth,
               table: box(table), heads: heads, images: images};
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(url, profile, *extra):
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
        f"--window-size={WIDTH},1600",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        *extra,
        url,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "img" and not attrs.get("src", "").startswith("data:"):
            self.links.append(attrs["src"])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of a small simulated night with a defocused and a trailed frame."""
    from astrophot.analysis import assess_quality, select_frames, write_quality_report
    from astrophot.datasets import simulate_night
    from astrophot.io import read_frame, write_frame

    from ._truthcal import calibrate_from_truth

    root = tmp_path_factory.mktemp("browser")
    night = simulate_night(
        root / "night",
        filters=("Red",),
        n_lights=6,
        shape=(200, 300),
        bad_frames=("defocused", "trailed"),
        n_bias=2,
        n_darks=2,
        n_flats=2,
        seed=7,
    )
    (root / "calibrated").mkdir()
    paths, records = [], []
    for path in night.lights:
        frame = calibrate_from_truth(read_frame(path), night, frame_truth=night.truth_for(path))
        paths.append(write_frame(frame, root / "calibrated" / f"cal-{path.stem}.fits"))
        records.append(assess_quality(frame))
    table = select_frames(records)
    result = write_quality_report(table, root / "report", frames=paths)
    return result, table


def test_report_at_1400px_shows_the_reason_column_loads_everything_and_logs_nothing(report, tmp_path):
    result, table = report
    page = Path(result["html"])
    assert np.sum(~np.asarray(table["accepted"])) >= 2, "the defocused and trailed frames are rejected"
    text = page.read_text()
    assert "<script" not in text
    probed = page.with_name("probe.html")
    probed.write_text(text.replace("</body>", _PROBE + "</body>"))
    try:
        proc = _chromium(probed.as_uri(), tmp_path / "profile-dom", "--dump-dom")
    finally:
        probed.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, proc.stdout[-2000:]
    layout = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert layout["width"] == WIDTH
    assert layout["scroll"] <= WIDTH, f"the page scrolls sideways: {layout['scroll']} px"
    heads = {name: (left, right, width) for name, left, right, width in layout["heads"]}
    reason = next(v for k, v in heads.items() if k.startswith("Reason"))
    assert reason[1] <= WIDTH and reason[2] >= 150, heads
    assert all(complete and width > 0 for _, complete, width in layout["images"]), layout["images"]
    # no console message at all (the page has no scripts; a message means an error)
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console

    parser = _Links()
    parser.feed(text)
    assert parser.links, "no links to previews and files"
    for link in parser.links:
        assert not link.startswith(("/", "file:")), link  # relative to the report
        assert (page.parent / unquote(link)).is_file(), link

    shot = tmp_path / "report.png"
    proc = _chromium(page.as_uri(), tmp_path / "profile-shot", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(shot.read_bytes()[16:20], "big")
    assert width == WIDTH
    assert not [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def test_report_header_says_what_the_night_was(report):
    result, table = report
    text = Path(result["html"]).read_text()
    for label in (
        "Telescope",
        "Target",
        "Night (UTC)",
        "Site",
        "Frames per filter",
        "Total accepted exposure",
    ):
        assert f"<dt>{label}</dt>" in text
    accepted = np.asarray(table["exposure_time"], dtype=float)[np.asarray(table["accepted"], dtype=bool)]
    assert f"{np.nansum(accepted) / 60:.1f} min" in text
    assert "Rules applied" in text and "instrumental" in text
    assert "<figcaption>" in text and text.index("<figcaption>") < text.index('alt="Seeing')
