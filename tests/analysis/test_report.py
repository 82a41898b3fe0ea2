# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The quality report page as an astronomer reads it (issue 16, "the night report"): the HTML
says where and what, labels what is instrumental, explains what looks odd, and its reasons
and captions are sentences. The layout in a real browser is in test_report_browser.py.
"""

import html
import re

import numpy as np
import pytest
from astropy.io import fits

from astrophot.analysis import select_frames, write_quality_report
from astrophot.analysis.quality import QualityRecord, example_records
from astrophot.analysis.report import _clock, _time_axis, site_text
from astrophot.datasets import make_raw_frame


def _page(paths):
    return html.unescape(paths["html"].read_text())


def _fact(text, label):
    match = re.search(rf"<dt>{re.escape(label)}</dt><dd>(.*?)</dd>", text)
    assert match, f"no {label!r} in the header"
    return match.group(1)


def _captions(text):
    return re.findall(r"<figcaption>(.*?)</figcaption><img", text)


def test_site_is_the_named_observatory_in_degrees():
    new_mexico = fits.Header({"SITELAT": "32 54 12", "SITELONG": "-105 31 43"})
    text = site_text(new_mexico)
    # the iTelescope table's New Mexico site (32 54 11.91, -105 31 43.32) is 8 m away
    assert text.startswith("iTelescope New Mexico (H06, Mayhill, New Mexico, USA): ")
    assert text.endswith("32\N{DEGREE SIGN}54\u203212\u2033 N, 105\N{DEGREE SIGN}31\u203243\u2033 W")
    south = fits.Header({"SITELAT": "-12 30 00", "SITELONG": "20 15 00"})  # no known observatory there
    assert site_text(south) == "12\N{DEGREE SIGN}30\u203200\u2033 S, 20\N{DEGREE SIGN}15\u203200\u2033 E"
    named = fits.Header({"OBSERVAT": "Home", "SITELAT": "-12 30 00", "SITELONG": "20 15 00"})
    assert site_text(named).startswith("Home: 12\N{DEGREE SIGN}30")
    assert site_text(fits.Header({"OBSERVAT": "Home"})) == "Home"
    assert site_text(fits.Header()) is None


def test_header_site_frames_and_title_from_the_frames(tmp_path):
    records = example_records()
    frames = [make_raw_frame(shape=(40, 60), seed=i)[0] for i in range(len(records))]
    text = _page(write_quality_report(records, tmp_path, frames=frames))
    assert _fact(text, "Site").startswith("iTelescope New Mexico (H06")  # from SITELAT/SITELONG
    assert _fact(text, "Frames") == "6 (5 accepted, 1 rejected)"
    # no telescope or target known: the title does not say "unknown, unknown"
    assert "<h1>Night report</h1>" in text
    named = [
        QualityRecord(**{**r.to_dict(), "telescope": "iTelescope T20", "target": "M31"}) for r in records
    ]
    text = _page(write_quality_report(named, tmp_path / "named"))
    assert "<h1>Night report: iTelescope T20, M31</h1>" in text


def test_limiting_magnitude_is_labelled_instrumental_with_its_scale(tmp_path):
    text = _page(write_quality_report(example_records(), tmp_path))
    heads = re.findall(r"<th>(.*?)</th>", text)
    assert '5\u03c3<span class="unit">instr. mag</span>' in "".join(h for h in heads if h.startswith("Limit"))
    note = next(n for n in re.findall(r"<li>(.*?)</li>", text) if n.startswith("Limit"))
    # the rate's unit (the records are in electrons), the zero point, and why values are negative
    assert "-2.5 log10(rate), the rate in electron/s with a zero point of 0" in note
    assert "values near or below 0 are normal" in note and "photometric zero point" in note
    assert np.all(np.asarray([r.limiting_magnitude for r in example_records()]) < 0)


def test_transparency_above_one_is_explained(tmp_path):
    table = select_frames(example_records())
    assert np.any(np.asarray(table["transparency"]) > 1), "the example has frames above 1"
    text = _page(write_quality_report(table, tmp_path))
    assert '<th>Transp.<span class="unit">\u00d7 median</span></th>' in text
    note = next(n for n in re.findall(r"<li>(.*?)</li>", text) if n.startswith("Transparency"))
    assert "about half the frames read above 1 by construction" in note
    assert "defocused frame can also read 1.1 to 1.3" in note


#: A number, then optionally a unit, as a reason writes it.
_NUM = r"-?[0-9][0-9.e+-]*"


def test_reasons_are_sentences_with_units_and_how_each_limit_was_set():
    records = example_records()
    table = select_frames(records, rules={"max_airmass": 1.5, "max_fwhm": 5.0})
    fwhm = np.asarray([r.fwhm for r in records])
    stars = np.asarray([r.n_stars for r in records])
    bad = int(np.argmax(fwhm))
    reasons = str(table["reason"][bad]).split("; ")
    median = np.median(fwhm)
    assert reasons[0] == f"FWHM {fwhm[bad]:.3g} px > 5 px (fixed limit)"
    assert f"FWHM {fwhm[bad]:.3g} px > {1.25 * median:.3g} px (1.25 x Red median {median:.3g} px)" in reasons
    median = np.median(stars)
    assert f"stars {stars[bad]} < {0.5 * median:.0f} (0.50 x Red median {median:.0f})" in reasons
    for reason in "; ".join(table["reason"]).split("; "):
        if not reason:
            continue
        # the quantity, its value, a comparison, the limit, and in brackets how the limit was set
        assert re.fullmatch(rf"[A-Za-z ]+ {_NUM}( [a-z/]+)? [<>] {_NUM}( [a-z/]+)? \(.+\)", reason), reason
        # never two numbers in a row ("night median + 0.1 0.05891")
        assert not re.search(rf"\d {_NUM}\b", reason.split("(")[1]), reason


def test_an_absolute_tolerance_and_a_spread_read_as_sums():
    records = example_records()
    elongated = [
        QualityRecord(**{**r.to_dict(), "ellipticity": 0.5 if i == 2 else 0.04 + 0.001 * i})
        for i, r in enumerate(records)
    ]
    reason = str(select_frames(elongated)["reason"][2])
    median = np.median([r.ellipticity for r in elongated])  # 0.0435
    assert reason.startswith(f"ellipticity 0.5 > {median + 0.1:.3g} (Red median {median:.3g} + 0.1)"), reason
    spread = [QualityRecord(**{**r.to_dict(), "fwhm": 3.0 + 0.3 * i}) for i, r in enumerate(records[:4])]
    spread.append(QualityRecord(**{**records[4].to_dict(), "fwhm": 12.0}))
    reason = str(select_frames(spread)["reason"][4])
    assert re.match(
        rf"FWHM 12 px > {_NUM} px \(Red median {_NUM} px \+ 5 x robust spread {_NUM} px\)", reason
    ), reason


def test_plots_have_captions_above_and_every_limit_drawn(tmp_path):
    table = select_frames(example_records(), rules={"max_fwhm": 4.0, "max_airmass": 1.5, "min_stars": 100})
    text = _page(write_quality_report(table, tmp_path))
    captions = _captions(text)
    assert captions == [
        "Seeing: star FWHM of each frame (dashed: each filter's limit; dotted: fixed limit 4)",
        "Star elongation (trailing, tilt) (dashed: each filter's limit)",
        "Sky background (dashed: each filter's limit)",
        "Stars detected (clouds, focus) (dashed: each filter's limit; dotted: fixed limit 100)",
        "Airmass (dotted: fixed limit 1.5)",
    ]
    no_airmass = [QualityRecord(**{**r.to_dict(), "airmass": None}) for r in example_records()]
    captions = _captions(_page(write_quality_report(no_airmass, tmp_path / "none")))
    assert captions[-1] == "Airmass (no AIRMASS in the frames' headers)"


def test_plots_run_against_utc_clock_time():
    table = select_frames(example_records())
    x, label = _time_axis(table)
    assert label == "time (UTC)"
    # the first frame is at 04:00 UTC (example_records' DATE-OBS)
    assert _clock(x[0]) == "04:00" and str(table["date_obs"][0])[11:16] == "04:00"
    assert _clock(23.999) == "00:00" and _clock(24.5) == "00:30" and _clock(5.9999) == "06:00"
    table.remove_column("mjd")
    assert _time_axis(table)[1] == "frame number"


@pytest.mark.parametrize("column", ["fwhm", "n_stars", "airmass"])
def test_a_plot_with_no_values_says_so(column, tmp_path):
    from astrophot.analysis.report import plot_against_time

    table = select_frames(example_records())
    table[column] = np.full(len(table), np.nan)
    png = plot_against_time(table, column, column)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
