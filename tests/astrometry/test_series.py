# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The 5200 index series: tiles against the published HEALPix layout; downloads from recorded responses."""

import pytest

from astrophot.astrometry._series import fetch_index_files, healpix_xy, index_series, series_5200_files
from astrophot.exceptions import AstrometryError

#: astrometry.net's healpix.h draws the Nside=2 XY numbers over the RING layout: ring 1 (z = 5/6,
#: phi = 45, 135, ...) "3 7 11 15"; ring 2 (z = 2/3 less a little, phi = 22.5, 67.5, ...)
#: "1 2 5 6 9 10 13 14"; ring 3 (z = 1/3, phi = 0, 45, ...) "19 0 23 4 27 8 31 12"; ring 4
#: (z = 0, phi = 22.5, 67.5, ...) "18 21 22 25 26 29 30 17"; ring 7 (z = -5/6) "32 36 40 44".
LAYOUT = {
    56.44: ([45, 135, 225, 315], [3, 7, 11, 15]),
    40.0: ([22.5 + 45 * k for k in range(8)], [1, 2, 5, 6, 9, 10, 13, 14]),
    19.47: ([45 * k for k in range(8)], [19, 0, 23, 4, 27, 8, 31, 12]),
    0.0: ([22.5 + 45 * k for k in range(8)], [18, 21, 22, 25, 26, 29, 30, 17]),
    -56.44: ([45, 135, 225, 315], [32, 36, 40, 44]),
}


@pytest.mark.parametrize("dec", sorted(LAYOUT))
def test_tiles_follow_the_published_layout(dec):
    ra, expected = LAYOUT[dec]
    xy, nested = healpix_xy(ra, [dec] * len(ra), 2)
    assert xy.tolist() == expected
    # NESTED interleaves the bits: x + 2 y instead of 2 x + y
    base, within = xy // 4, xy % 4
    assert nested.tolist() == (base * 4 + (within // 2) + 2 * (within % 2)).tolist()


def test_fields_list_the_files_that_cover_them():
    # a 0.3 deg field in the middle of tile 19 (ra 0, dec +19.5): one tile, all seven scales
    names = series_5200_files(0.0, 25.0, 0.3)
    assert names == [f"index-{5200 + s}-19.fits" for s in range(7)]
    # straddling the ring-3/ring-4 boundary at ra 0: tiles 18 and 19 (and 16, 17 below the equator)
    names = series_5200_files(0.0, 0.0, 0.3)
    assert sorted({n[-7:-5] for n in names}) == ["16", "17", "18", "19"]
    # a 2 degree field: quads of 12' and up: 5205 and 5206 only
    assert {n[:10] for n in series_5200_files(100.0, 30.0, 2.0)} == {"index-5205", "index-5206"}


class _Recorded:
    """A recorded HTTP exchange: the responses a session.get gave, by URL."""

    def __init__(self, responses):
        self.responses = responses
        self.asked = []

    def get(self, url, stream=True, timeout=None):
        self.asked.append(url)
        status, body = self.responses[url]
        if isinstance(body, Exception):
            raise body
        return _Response(status, body)


class _Response:
    def __init__(self, status, body):
        self.status_code = status
        self._body = body

    def iter_content(self, chunk_size=1):
        for i in range(0, len(self._body), chunk_size):
            yield self._body[i : i + chunk_size]


def test_download_from_recorded_responses(tmp_path):
    base = "https://portal.nersc.gov/project/cosmo/temp/dstn/index-5200/LITE/"
    session = _Recorded(
        {
            base + "index-5203-19.fits": (200, b"SIMPLE  =                    T" + b" " * 50),
            base + "index-5204-19.fits": (200, b"x" * 3000),
        }
    )
    (tmp_path / "index-5204-19.fits").write_bytes(b"already")
    paths = fetch_index_files(
        ["index-5203-19.fits", "index-5204-19.fits"], tmp_path, session=session, chunk_size=16
    )
    assert session.asked == [base + "index-5203-19.fits"]  # the file already there is not fetched
    assert paths[0].read_bytes().startswith(b"SIMPLE")
    assert paths[1].read_bytes() == b"already"


def test_download_errors_are_clear(tmp_path):
    base = "https://portal.nersc.gov/project/cosmo/temp/dstn/index-5200/LITE/"
    offline = _Recorded({base + "index-5200-00.fits": (None, ConnectionError("Name or service not known"))})
    with pytest.raises(
        AstrometryError, match="are you offline.*index-5200-00.fits|index-5200-00.fits.*offline"
    ):
        fetch_index_files(["index-5200-00.fits"], tmp_path, session=offline)
    missing = _Recorded({base + "index-5200-99.fits": (404, b"")})
    with pytest.raises(AstrometryError, match="HTTP 404"):
        fetch_index_files(["index-5200-99.fits"], tmp_path, session=missing)
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left


def test_cli_lists_the_files(capsys):
    from astrophot.cli.main import main

    assert main(["index", "list", "--ra", "0", "--dec", "25", "--field", "0.3"]) in (0, None)
    assert capsys.readouterr().out.split() == [f"index-{5200 + s}-19.fits" for s in range(7)]


@pytest.mark.parametrize(
    ("field_deg", "expected"),
    [
        # quads of 10-100 % of the field: 5200 has 2-22 arcmin, 4100 22-2000 arcmin
        (0.02, ()),  # 1.2 arcmin: narrower than index-5200's 2 arcmin quads
        (0.05, ("5200",)),  # 3 arcmin: index-5200's and -5201's quads fit
        (0.49, ("5200",)),  # too few Tycho-2 stars below half a degree
        (0.5, ("4100", "5200")),
        (3.6, ("4100", "5200")),  # 216 arcmin: 22 arcmin quads are still >= 10 %
        (3.7, ("4100",)),  # 222 arcmin: index-5206's 22 arcmin quads are under 10 %
        (340.0, ()),  # 20400 arcmin (a fisheye): 2000 arcmin quads are under 10 %
    ],
)
def test_index_series_for_a_field(field_deg, expected):
    assert index_series(field_deg) == expected


def test_index_series_rejects_a_bad_field():
    with pytest.raises(ValueError, match="positive"):
        index_series(0)
