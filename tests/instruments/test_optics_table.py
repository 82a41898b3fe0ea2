# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The optics table: computed from the telescope table, and the same as the one in the docs."""

import math
from pathlib import Path

import pytest

from astrophot.instruments.itelescope import TELESCOPES, optics_table

DOCS = Path(__file__).resolve().parents[2] / "docs" / "astrometry.rst"


def _rows(table):
    lines = table.strip().splitlines()
    assert set(lines[0]) == {"=", " "} and lines[0] == lines[2] == lines[-1]
    starts = [0] + [i + 1 for i, c in enumerate(lines[0]) if c == " "]
    ends = [i for i, c in enumerate(lines[0]) if c == " "] + [len(lines[0])]
    return [[line[a:b].strip() for a, b in zip(starts, ends, strict=True)] for line in lines[3:-1]]


def test_docs_table_is_the_rendered_one():
    text = DOCS.read_text(encoding="utf-8")
    start, end = ".. optics-table-start", ".. optics-table-end"
    assert text.count(start) == 1 and text.count(end) == 1
    in_docs = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert in_docs == optics_table(), "docs/astrometry.rst: paste the output of optics_table()"


def test_every_telescope_has_a_row_and_unknowns_say_so():
    rows = {row[0]: row for row in _rows(optics_table())}
    assert list(rows) == list(TELESCOPES)
    assert rows["T02"][2:] == ["unknown"] * 5
    assert rows["T05"][4] == "unknown"  # shape known, pixel size not


def test_t07_row_matches_the_published_page():
    # iTelescope's T7 page: 2929 mm, 9 um pixels, 0.63 arcsec/px, 28.2 x 42.3 arcmin
    row = {row[0]: row for row in _rows(optics_table())}["T07"]
    assert row[1:4] == ["I89", "2929", "9"]
    assert float(row[4]) == pytest.approx(0.63, abs=0.005)
    height, width = (float(x) for x in row[5].split(" x "))
    assert (height, width) == pytest.approx((28.2, 42.3), abs=0.1)


def test_rows_follow_from_focal_length_and_pixel_size():
    """206264.8 * pixel / focal length, by hand, for every telescope with optics."""
    for row in _rows(optics_table()):
        if row[2] == "unknown":
            continue
        scale = 206264.806 * float(row[3]) * 1e-3 / float(row[2])
        assert float(row[4]) == pytest.approx(scale, abs=5e-4), row[0]
        ny, nx = TELESCOPES[row[0]].shape
        height, width = (float(x) for x in row[5].split(" x "))
        assert height == pytest.approx(ny * scale / 60, abs=0.05)
        assert width == pytest.approx(nx * scale / 60, abs=0.05)
        longest = max(height, width)
        # 5200 quads reach 22 arcmin (>= 10 % of the field); Tycho-2 needs half a degree
        assert ("5200" in row[6]) == (longest <= 220), row[0]
        assert ("4100" in row[6]) == (longest >= 30), row[0]
    assert math.isclose(TELESCOPES["T20"].plate_scale.value, 3.503, abs_tol=5e-4)


def test_a_subset_in_the_order_given():
    table = optics_table(["t33", "T7"])
    assert [row[0] for row in _rows(table)] == ["T33", "T07"]
