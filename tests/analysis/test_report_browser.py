# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The quality report in a real headless browser (Debian's chromium, installed by .ci/run):
at 1400 px the whole table, reason column included, fits the window, every image loads,
every link points to a file that exists, and the console stays silent.
"""

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from ._browser import CHROMIUM, WIDTH, console_lines, page_layout, png_size, screenshot

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


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
    layout, proc = page_layout(page, tmp_path / "profile-dom")
    assert layout["width"] == WIDTH
    assert layout["scroll"] <= WIDTH, f"the page scrolls sideways: {layout['scroll']} px"
    heads = {name: (left, right, width) for name, left, right, width in layout["heads"]}
    reason = next(v for k, v in heads.items() if k.startswith("Reason"))
    assert reason[1] <= WIDTH and reason[2] >= 150, heads
    assert all(complete and width > 0 for _, complete, width, _ in layout["images"]), layout["images"]
    # the thumbnails are shown 150 px wide (a trailed frame's streaks are visible at that size)
    thumbs = [shown for src, _, _, shown in layout["images"] if src.startswith("data:")][: len(table)]
    assert min(thumbs) >= 150, thumbs
    # no console message at all (the page has no scripts; a message means an error)
    assert not console_lines(proc), console_lines(proc)

    parser = _Links()
    parser.feed(text)
    assert parser.links, "no links to previews and files"
    for link in parser.links:
        assert not link.startswith(("/", "file:")), link  # relative to the report
        assert (page.parent / unquote(link)).is_file(), link

    shot = tmp_path / "report.png"
    proc = screenshot(page, shot, tmp_path / "profile-shot", height=layout["height"])
    assert png_size(shot) == (WIDTH, layout["height"])  # the whole page
    assert not console_lines(proc)


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
