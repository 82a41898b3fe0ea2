# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""add_metadata on real iTelescope headers, offline."""

import re
import time

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits

from astrophot import CalibratedFrame, add_metadata
from astrophot.exceptions import AstrophotUserWarning
from astrophot.reduction._metadata import NameResolveError, load_keywords, resolve_name

_CARD = re.compile(r"^([A-Z0-9_-]{1,8}\s*=|HISTORY|COMMENT|HIERARCH|END)")


def _header(shared_data, name):
    """A header from one of the shared text files (wrapped comment lines dropped)."""
    text = (shared_data / "itelescope_headers" / name).read_text()
    lines = [line for line in text.splitlines() if _CARD.match(line)]
    return fits.Header.fromstring("\n".join(lines), sep="\n")


@pytest.fixture
def t33(shared_data):
    header = _header(shared_data, "calibrated-T33-m17-SII-300s.hdr.txt")
    return CalibratedFrame(np.zeros((4, 4), dtype=np.float32), meta=header)


def test_t33_airmass_matches_itelescope(t33):
    """iTelescope's AIRMASS is for the exposure start; ours at the start agrees to 6e-4."""
    itelescope = t33.header["AIRMASS"]
    out = add_metadata(t33)
    outcome = out.provenance.steps[-1].outcome
    assert outcome["previous_airmass"] == itelescope
    assert outcome["coordinates_source"] == "header"
    assert outcome["site_source"] == "header"
    assert abs(outcome["airmass_start"] - itelescope) < 6e-4
    # the header now holds the mid-exposure value, 150 s later and 0.0018 higher
    assert out.header["AIRMASS"] == pytest.approx(outcome["airmass"], abs=1e-5)
    assert abs(out.header["AIRMASS"] - itelescope) > abs(outcome["airmass_start"] - itelescope)
    assert out.header["DATE-AVG"] == "2018-07-04T14:05:33.000"
    assert out.header["MJD-AVG"] == pytest.approx(58303.5871875)
    # site from SITELAT/SITELONG ('-31 16 24', '149 03 52') and ALT-OBS
    assert out.header["LAT-OBS"] == pytest.approx(-31.2733333, abs=1e-6)
    assert out.header["LONG-OBS"] == pytest.approx(149.0644444, abs=1e-6)
    assert out.header["ALT-OBS"] == pytest.approx(1165.0)
    # hour angle: local apparent sidereal time 18h49m26.2s at the start (astropy; the header's
    # ST = 18 55 09.27 is 5m43s ahead and not used), plus 150 s, minus RA 18h20m48.12s
    lst_start = 18 + 49 / 60 + 26.2 / 3600
    ra = 18 + 20 / 60 + 48.12 / 3600
    assert out.header["OBJCTHA"] == pytest.approx(lst_start + 150 * 1.0027379 / 3600 - ra, abs=0.002)
    # night-time at Siding Spring; the Moon was 2 days before last quarter (6 July 2018)
    assert out.header["SUNALT"] < -18
    assert 0.6 < out.header["MOONPHAS"] < 0.8
    assert 0 < out.header["MOONSEP"] < 180
    assert out.header["OBJECT"].strip() == "m17"
    assert out.header["RA-OBJ"] == pytest.approx(275.2005, abs=1e-4)


def test_inputs_untouched_and_provenance(t33):
    before = t33.header.copy()
    out = add_metadata(t33)
    assert t33.header == before
    assert out is not t33 and isinstance(out, CalibratedFrame)
    assert out.provenance.steps[-1].function == "astrophot.add_metadata"
    assert out.provenance.steps[-1].inputs[0].sha256 == t33.checksum()


def test_offline_name_resolution_fails_fast():
    """With the network disabled (conftest guard) a target name fails in seconds, clearly."""
    frame = CalibratedFrame(np.zeros((4, 4)), meta={"OBJECT": "M17", "DATE-OBS": "2018-07-04T14:03:03"})
    start = time.perf_counter()
    with pytest.raises(NameResolveError, match=r"could not resolve 'M17'.*pass coordinates="):
        add_metadata(frame, resolve=True, timeout=5)
    assert time.perf_counter() - start < 5


def test_silent_network_times_out(monkeypatch):
    """A resolver that never answers is abandoned after the timeout."""

    def hang(*args, **kwargs):
        time.sleep(30)

    monkeypatch.setattr(SkyCoord, "from_name", hang)
    start = time.perf_counter()
    with pytest.raises(NameResolveError, match=r"no answer from the name resolver within 0.5 s"):
        resolve_name("NGC 6888", timeout=0.5)
    assert time.perf_counter() - start < 2


def test_coordinates_from_argument_and_names_table(t33):
    bare = CalibratedFrame(
        np.zeros((4, 4)),
        meta={k: t33.header[k] for k in ("DATE-OBS", "EXPTIME", "SITELAT", "SITELONG", "ALT-OBS")},
    )
    with pytest.warns(AstrophotUserWarning, match="missing target coordinates"):
        add_metadata(bare, target="M17")
    reference = add_metadata(t33).header["AIRMASS"]
    from_argument = add_metadata(bare, target="M17", coordinates="18 20 48.12 -16 10 58.8")
    assert from_argument.header["AIRMASS"] == pytest.approx(reference, abs=1e-6)
    from_table = add_metadata(bare, target="m 17", names={"M17": [275.2005, -16.183]}, resolve=True)
    assert from_table.header["AIRMASS"] == pytest.approx(reference, abs=1e-4)
    assert from_table.provenance.steps[-1].outcome["coordinates_source"] == "name resolver"


def test_raw_t31_from_file_name(shared_data):
    header = _header(shared_data, "raw-T31-davestrickland-webb-20211229-024225-Green-BIN1-W-300-001.hdr.txt")
    frame = CalibratedFrame(
        np.zeros((4, 4)),
        meta=header,
        source_path="/data/raw-T31-davestrickland-webb-20211229-024225-Green-BIN1-W-300-001.fit",
    )
    with pytest.warns(AstrophotUserWarning, match="missing target coordinates"):
        out = add_metadata(frame)
    assert out.header["TELESCOP"] == "iTelescope T31"
    assert out.header["OBSERVER"] == "davestrickland"
    assert out.header["OBJECT"] == "webb"
    assert out.header["LAT-OBS"] == pytest.approx(-31.2733333, abs=1e-6)
    assert out.header["ALT-OBS"] == pytest.approx(1118.0)  # no height in the header: the site table's
    # with coordinates the geometry follows; the file-name time (02:42 local) is not used
    out = add_metadata(frame, coordinates=SkyCoord(90.0, -30.0, unit="deg"))
    assert out.header["DATE-AVG"] == "2021-12-29T15:45:16.530"


def test_premium_set_with_keywords(shared_data, tmp_path):
    header = _header(shared_data, "Calibrated-iTelescope-Whale_Galaxy_NGC_55-900s-Red-5.hdr.txt")
    frame = CalibratedFrame(
        np.zeros((4, 4)),
        meta=header,
        source_path=str(tmp_path / "Calibrated-iTelescope-Whale_Galaxy_NGC_55-900s-Red-5.fits"),
    )
    yaml_file = tmp_path / "premium.yml"
    yaml_file.write_text(
        "telescop: T30\n"
        "date-obs: 2023-08-20T15:00:00\n"
        "objctra: '00 14 53.6'\n"
        "objctdec: '-39 11 48'\n"
        "observing_program: whales\n"
        "filters_used: [Red, Green]\n"
    )
    with pytest.warns(AstrophotUserWarning, match="'filters_used' is not a single value"):
        out = add_metadata(frame, keywords=yaml_file)
    assert out.header["OBJECT"] == "Whale Galaxy NGC 55"  # the HIERARCH OBSTARGET
    assert out.header["TELESCOP"] == "T30"  # a user value is kept as written
    assert out.header["OBSERVING_PROGRAM"] == "whales"
    assert out.header["LAT-OBS"] == pytest.approx(-31.2733333, abs=1e-6)  # T30 is at Siding Spring
    assert 1 <= out.header["AIRMASS"] < 3
    assert out.provenance.steps[-1].outcome["site_source"] == "telescope table (T30)"


def test_no_date_warns():
    frame = CalibratedFrame(np.zeros((4, 4)), meta={"OBJECT": "M17"})
    with pytest.warns(AstrophotUserWarning, match="missing DATE-OBS"):
        out = add_metadata(frame, coordinates="275.2 -16.18", location="Q62")
    assert "AIRMASS" not in out.header and out.header["LAT-OBS"] == pytest.approx(-31.2733, abs=1e-4)


def test_dates_beyond_the_bundled_iers_tables():
    """No IERS download (the network is off): a date years ahead still computes."""
    frame = CalibratedFrame(np.zeros((4, 4)), meta={"DATE-OBS": "2031-03-01T12:00:00", "EXPTIME": 60.0})
    out = add_metadata(frame, coordinates="275.2 -16.18", location="Q62")
    assert np.isfinite(out.header["OBJCTALT"]) and np.isfinite(out.header["SUNALT"])


def test_load_keywords_errors(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        load_keywords(bad)
    assert load_keywords({"exptime": 5}) == {"EXPTIME": 5}
