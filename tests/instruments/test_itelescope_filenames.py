# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The iTelescope file-name parser: every name in the seed, the spec and the real headers."""

import dataclasses
import datetime
import pathlib
import re

import astropy.units as u
import pytest
from astropy.io import fits
from astropy.time import Time
from hypothesis import given
from hypothesis import strategies as st

from astrophot.exceptions import AstrophotError
from astrophot.instruments.itelescope import (
    FilenameError,
    ITelescopeFilename,
    get_telescope,
    make_master_filename,
    make_raw_filename,
    output_name,
    parse_filename,
)

SEED = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "iTelescope_processing.md"
SPEC = (
    pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "original-pipeline-spec.md"
)

# name -> the fields it must give (every field not listed must be None)
EXPECTED = {
    "raw-T05-davestrickland-NGC_6888-20200716-231744-Ha-BIN1-E-180-001.fit": dict(
        kind="raw",
        prefix="raw",
        telescope="T05",
        user="davestrickland",
        target="NGC 6888",
        filter="Ha",
        binning=1,
        pier_side="E",
        exposure=180 * u.s,
        sequence=1,
        local_time=datetime.datetime(2020, 7, 16, 23, 17, 44),
    ),
    "raw-T31-davestrickland-webb-20211229-024225-Green-BIN1-W-300-001.fit": dict(
        kind="raw",
        prefix="raw",
        telescope="T31",
        user="davestrickland",
        target="webb",
        filter="Green",
        binning=1,
        pier_side="W",
        exposure=300 * u.s,
        sequence=1,
        local_time=datetime.datetime(2021, 12, 29, 2, 42, 25),
    ),
    "calibrated-T05-davestrickland-M82-20210219-002600-Red-BIN1-W-300-001.fit": dict(
        kind="calibrated",
        prefix="calibrated",
        telescope="T05",
        user="davestrickland",
        target="M82",
        filter="Red",
        binning=1,
        pier_side="W",
        exposure=300 * u.s,
        sequence=1,
        local_time=datetime.datetime(2021, 2, 19, 0, 26, 0),
    ),
    "cal-T20-davestrickland-CygnusLoop_x1_y1-20210708-220604-Ha-BIN1-E-300-001.fits": dict(
        kind="calibrated",
        prefix="cal",
        telescope="T20",
        user="davestrickland",
        target="CygnusLoop",
        mosaic_panel=(1, 1),
        filter="Ha",
        binning=1,
        pier_side="E",
        exposure=300 * u.s,
        sequence=1,
        local_time=datetime.datetime(2021, 7, 8, 22, 6, 4),
        extension=".fits",
    ),
    "Calibrated-iTelescope-Whale_Galaxy_NGC_55-900s-Red-5.fits": dict(
        kind="premium",
        prefix="Calibrated-iTelescope",
        target="Whale Galaxy NGC 55",
        filter="Red",
        exposure=900 * u.s,
        sequence=5,
        extension=".fits",
    ),
    "Calibrated-iTelescope-M101_Supernova_2023ixf-180s-Lum-1.fits": dict(
        kind="premium",
        prefix="Calibrated-iTelescope",
        target="M101 Supernova 2023ixf",
        filter="Lum",
        exposure=180 * u.s,
        sequence=1,
        extension=".fits",
    ),
    "Master_Dark_1_4008x2672_Bin1x1_Temp-15C_ExpTime900s.fit": dict(
        kind="master",
        prefix="Master",
        master_kind="Dark",
        binning=1,
        shape=(2672, 4008),
        set_temperature=-15 * u.deg_C,
        exposure=900 * u.s,
    ),
    "Master_Dark_2_2004x1336_Bin2x2_Temp-15C_ExpTime900s.fit": dict(
        kind="master",
        prefix="Master",
        master_kind="Dark",
        binning=2,
        shape=(1336, 2004),
        set_temperature=-15 * u.deg_C,
        exposure=900 * u.s,
    ),
    "Master_Badpix_1_4008x2672_Bin1x1_Temp-15C_ExpTime900s.fit": dict(
        kind="master",
        prefix="Master",
        master_kind="Badpix",
        binning=1,
        shape=(2672, 4008),
        set_temperature=-15 * u.deg_C,
        exposure=900 * u.s,
    ),
    "Master_Badpix_2_2004x1336_Bin2x2_Temp-15C_ExpTime900s.fit": dict(
        kind="master",
        prefix="Master",
        master_kind="Badpix",
        binning=2,
        shape=(1336, 2004),
        set_temperature=-15 * u.deg_C,
        exposure=900 * u.s,
    ),
    "Master_Bias_1_2184x1472_Bin1x1_Temp-10C_ExpTime0ms.fit": dict(
        kind="master",
        prefix="Master",
        master_kind="Bias",
        binning=1,
        shape=(1472, 2184),
        set_temperature=-10 * u.deg_C,
        exposure=0 * u.s,
    ),
    "Master_Flat_Ha_1_Ha_2184x1472_Bin1x1_Temp-10C_ExpTime46s.fit": dict(
        kind="master",
        prefix="Master",
        master_kind="Flat",
        filter="Ha",
        binning=1,
        shape=(1472, 2184),
        set_temperature=-10 * u.deg_C,
        exposure=46 * u.s,
    ),
    "calibrated-T33-m17-SII-300s.fit": dict(
        kind="calibrated",
        prefix="calibrated",
        telescope="T33",
        target="m17",
        filter="SII",
        exposure=300 * u.s,
    ),
}

NAME_RE = re.compile(
    r"(?:raw|calibrated|cal)-T\d+-[A-Za-z0-9_\-]+?\.fits?"
    r"|Calibrated-iTelescope-[A-Za-z0-9_\-]+\.fits?"
    r"|Master_[A-Za-z0-9_\-]+\.fits?"
)


def _check(record, expected, name):
    assert isinstance(record, ITelescopeFilename)
    assert record.name == name
    fields = {f.name for f in dataclasses.fields(record)} - {"name", "extension", "compression"}
    for field in fields:
        value = getattr(record, field)
        if field in expected:
            want = expected[field]
            if isinstance(want, u.Quantity):
                assert value.unit == want.unit, field
                assert value.value == want.value, field
            else:
                assert value == want, field
        else:
            assert value is None, f"{field} should be None, is {value!r}"
    assert record.extension == expected.get("extension", ".fit")
    assert record.compression is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parse_exact_fields(name):
    _check(parse_filename(name), EXPECTED[name], name)


@pytest.mark.parametrize("source", [SEED, SPEC], ids=["seed", "spec"])
def test_every_name_in_the_seed_and_spec_parses(shared_data, source):
    path = shared_data.parent / source
    if not path.exists():
        pytest.skip(f"{path} is absent in this checkout")
    names = sorted(set(NAME_RE.findall(path.read_text())))
    assert len(names) >= 5, names
    for name in names:
        record = parse_filename(name)
        if name in EXPECTED:
            _check(record, EXPECTED[name], name)
        else:  # a name added to the document later: at least its kind matches its prefix
            assert record.kind == {"M": "master", "C": "premium", "r": "raw"}.get(name[0], "calibrated")


def _read_header(path):
    lines = path.read_text().splitlines()
    cards = [line for line in lines if re.match(r"^([A-Z0-9_-]{1,8} *=|HISTORY|COMMENT|HIERARCH|END)", line)]
    return fits.Header.fromstring("\n".join(cards), sep="\n")


def test_every_name_in_the_real_headers_agrees_with_its_header(shared_data):
    """The header dumps are named after their files (``<name>.hdr.txt``)."""
    paths = sorted((shared_data / "itelescope_headers").glob("*.hdr.txt"))
    assert len(paths) == 3
    for path in paths:
        name = path.name.removesuffix(".hdr.txt") + ".fit"
        record = parse_filename(name)
        header = _read_header(path)
        assert record.filter == header["FILTER"].strip()
        assert record.exposure.to_value(u.s) == header["EXPTIME"]
        if record.binning is not None:
            assert record.binning == header["XBINNING"]
        if "TELESCOP" in header and header["TELESCOP"].strip():
            assert get_telescope(header["TELESCOP"]).id == record.telescope
        target = header.get("OBJECT", "").strip() or header.get("OBSTARGET", "").strip()
        if target:
            assert record.target == target
        if record.kind == "raw":
            # The file name's time stamp is local, not UT: here it is 13 hours off DATE-OBS.
            date_obs = Time(header["DATE-OBS"], scale="utc").to_datetime()
            assert record.local_time.tzinfo is None
            offset = abs(date_obs - record.local_time)
            assert offset > datetime.timedelta(hours=1)
            assert record.local_time.date() == date_obs.date()


@pytest.mark.parametrize("extension", [".fit", ".fits", ".fts", ".FIT", ".Fits"])
@pytest.mark.parametrize("compression", [None, ".gz", ".bz2", ".fz", ".GZ"])
def test_extensions_and_compression(extension, compression):
    stem = "raw-T20-jdoe-M31-20240101-201500-Ha-BIN2-W-60-012"
    name = stem + extension + (compression or "")
    record = parse_filename(name)
    assert record.extension == extension
    assert record.compression == compression
    assert record.binning == 2 and record.sequence == 12 and record.exposure == 60 * u.s


@pytest.mark.parametrize(
    "path",
    [
        "/data/T20/M31-field/20240101/raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001.fit",
        "C:\\iTelescope\\T20-data\\raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001.fit",
        pathlib.Path("a-b/c-d/raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001.fit"),
        b"x-y/raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001.fit",
    ],
)
def test_directories_are_ignored(path):
    record = parse_filename(path)
    assert record.name == "raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001.fit"
    assert record.user == "jdoe" and record.target == "M31"


def test_targets_with_hyphens_and_panels():
    record = parse_filename("cal-T05-dks-HE_2300-0630-20210101-010203-V-BIN1-E-120-007.fits")
    assert record.target == "HE 2300-0630"
    assert record.sequence == 7
    record = parse_filename("raw-T20-dks-Cygnus_Loop_x12_y3-20210708-220604-OIII-BIN1-E-300-002.fit")
    assert record.target == "Cygnus Loop" and record.mosaic_panel == (12, 3)
    record = parse_filename("Calibrated-iTelescope-Veil_x2_y1-300s-Ha-3.fits")
    assert record.target == "Veil" and record.mosaic_panel == (2, 1)


def test_cal_prefix_on_premium_and_master_names():
    record = parse_filename("cal-Calibrated-iTelescope-Whale_Galaxy_NGC_55-900s-Red-5.fits")
    assert record.kind == "premium" and record.prefix == "cal" and record.is_astrophot_output
    assert record.target == "Whale Galaxy NGC 55"
    record = parse_filename("cal-Master_Flat_OIII_2_OIII_2004x1336_Bin2x2_Temp-15C_ExpTime12.5s.fits")
    assert record.kind == "master" and record.master_kind == "Flat" and record.filter == "OIII"
    assert record.exposure == 12.5 * u.s


MALFORMED = [
    ("readme.txt", "not a FITS file name"),
    (".fit", "not a FITS file name"),
    ("raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001", "not a FITS file name"),
    ("image.fits", "unknown prefix"),
    ("light-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001.fit", "unknown prefix 'light'"),
    ("raw-T20-jdoe-M31-Ha.fit", "at least 11 are needed"),
    ("raw-X20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001.fit", "not a telescope id"),
    ("raw-T20-jdoe-M31-20241301-201500-Ha-BIN1-E-60-001.fit", "not a valid date"),
    ("raw-T20-jdoe-M31-20240101-256000-Ha-BIN1-E-60-001.fit", "not a valid date"),
    ("raw-T20-jdoe-M31-2024011-2015000-Ha-BIN1-E-60-001.fit", "time stamp"),
    ("raw-T20-jdoe-M31-20240101-201500-Ha-BINX-E-60-001.fit", "binning"),
    ("raw-T20-jdoe-M31-20240101-201500-Ha-BIN0-E-60-001.fit", "binning"),
    ("raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-N-60-001.fit", "pier side"),
    ("raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60s-001.fit", "exposure"),
    ("raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-first.fit", "sequence"),
    ("raw-T20-jdoe-__-20240101-201500-Ha-BIN1-E-60-001.fit", "target is empty"),
    ("raw-T20-j$doe-M31-20240101-201500-Ha-BIN1-E-60-001.fit", "user"),
    ("Calibrated-iTelescope-M31-900-Red-5.fits", "exposure"),
    ("Calibrated-iTelescope-M31-900s-Red-five.fits", "set index"),
    ("Calibrated-iTelescope-900s-Red-5.fits", "too few"),
    ("Master_Dark_1_4008x2672_Bin2x2_Temp-15C_ExpTime900s.fit", "disagree"),
    ("Master_Flat_Ha_1_OIII_2184x1472_Bin1x1_Temp-10C_ExpTime46s.fit", "two filter fields differ"),
    ("Master_Dark_1_4008x2672_Bin1x1_Temp-15C_ExpTime900.fit", "not a master"),
    ("Master_Dusk_1_4008x2672_Bin1x1_Temp-15C_ExpTime900s.fit", "not a master"),
    ("Master_Dark_1_0x2672_Bin1x1_Temp-15C_ExpTime900s.fit", "not positive"),
]


@pytest.mark.parametrize(("name", "problem"), MALFORMED)
def test_malformed_names(name, problem):
    with pytest.raises(FilenameError) as info:
        parse_filename(name)
    error = info.value
    assert isinstance(error, AstrophotError) and isinstance(error, ValueError)
    assert error.name == name
    assert problem in str(error)
    assert name in str(error)
    if "not a FITS" not in problem:
        assert "expected" in str(error)


# --- making names ----------------------------------------------------------------

_words = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), min_size=1
)
_target_words = st.lists(_words, min_size=1, max_size=4)


@given(
    telescope=st.integers(1, 99),
    user=_words,
    target=_target_words,
    hyphen=st.booleans(),
    panel=st.none() | st.tuples(st.integers(0, 20), st.integers(0, 20)),
    local_time=st.datetimes(datetime.datetime(2000, 1, 1), datetime.datetime(2099, 12, 31)).map(
        lambda t: t.replace(microsecond=0)
    ),
    filter_=_words,
    binning=st.integers(1, 4),
    pier=st.sampled_from("EW"),
    exposure=st.integers(0, 3600) | st.decimals(0, 100, places=2).map(float),
    sequence=st.integers(0, 5000),
    prefix=st.sampled_from(["raw", "calibrated", "cal"]),
    extension=st.sampled_from([".fit", ".fits", ".fts", ".fit.gz", ".fits.fz"]),
)
def test_make_raw_filename_round_trip(
    telescope, user, target, hyphen, panel, local_time, filter_, binning, pier, exposure, sequence, prefix,
    extension,
):  # fmt: skip
    target_text = " ".join(target) + ("-0630" if hyphen else "")
    name = make_raw_filename(
        telescope=f"T{telescope:02d}",
        user=user,
        target=target_text,
        mosaic_panel=panel,
        local_time=local_time,
        filter=filter_,
        binning=binning,
        pier_side=pier,
        exposure=exposure * u.s,
        sequence=sequence,
        prefix=prefix,
        extension=extension,
    )
    record = parse_filename(name)
    assert record.kind == ("raw" if prefix == "raw" else "calibrated")
    assert record.prefix == prefix
    assert record.telescope == f"T{telescope:02d}"
    assert record.user == user
    assert record.target == target_text
    assert record.mosaic_panel == panel
    assert record.local_time == local_time
    assert record.filter == filter_
    assert record.binning == binning
    assert record.pier_side == pier
    assert record.exposure.to_value(u.s) == pytest.approx(exposure, abs=1e-9)
    assert record.sequence == sequence


def test_make_raw_filename_matches_the_spec_example():
    name = make_raw_filename(
        telescope=get_telescope("iTelescope T05"),
        user="davestrickland",
        target="NGC 6888",
        local_time=datetime.datetime(2020, 7, 16, 23, 17, 44),
        filter="Ha",
        binning=1,
        pier_side="East",
        exposure=180.0,
        sequence=1,
    )
    assert name == "raw-T05-davestrickland-NGC_6888-20200716-231744-Ha-BIN1-E-180-001.fit"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (dict(user="dave strickland"), "user"),
        (dict(user="dave-s"), "user"),
        (dict(filter="H-a"), "filter"),
        (dict(target=""), "target"),
        (dict(target="a/b"), "target"),
        (dict(target="Loop_x1_y2"), "mosaic_panel"),
        (dict(telescope="Keck"), "telescope id"),
        (dict(binning=0), "binning"),
        (dict(pier_side="N"), "pier side"),
        (dict(exposure=-1), "non-negative"),
        (dict(exposure=5 * u.m), "a time"),
        (dict(sequence=-1), "sequence"),
        (dict(prefix="nav"), "prefix"),
        (dict(extension=".png"), "FITS extension"),
        (dict(local_time="20240101"), "datetime"),
    ],
)
def test_make_raw_filename_rejects(change, problem):
    fields = dict(
        telescope="T20",
        user="jdoe",
        target="M31",
        local_time=datetime.datetime(2024, 1, 1, 20, 15),
        filter="Ha",
        binning=1,
        pier_side="E",
        exposure=60,
        sequence=1,
    )
    fields.update(change)
    with pytest.raises(FilenameError, match=problem):
        make_raw_filename(**fields)


@pytest.mark.parametrize("name", [n for n in EXPECTED if n.startswith("Master_")])
def test_make_master_filename_reproduces_real_names(name):
    record = parse_filename(name)
    made = make_master_filename(
        record.master_kind,
        binning=record.binning,
        shape=record.shape,
        set_temperature=record.set_temperature,
        exposure=record.exposure,
        filter=record.filter,
    )
    assert made == name


@given(
    kind=st.sampled_from(["Bias", "dark", "FLAT", "Badpix"]),
    binning=st.integers(1, 4),
    shape=st.tuples(st.integers(1, 10000), st.integers(1, 10000)),
    temperature=st.integers(-50, 20),
    exposure=st.sampled_from([0, 0.001, 0.25, 1, 46, 900, 12.5]),
    filter_=st.sampled_from(["Ha", "OIII", "Luminance", "B"]),
)
def test_make_master_filename_round_trip(kind, binning, shape, temperature, exposure, filter_):
    is_flat = kind.lower() == "flat"
    name = make_master_filename(
        kind,
        binning=binning,
        shape=shape,
        set_temperature=temperature * u.deg_C,
        exposure=exposure,
        filter=filter_ if is_flat else None,
    )
    record = parse_filename(name)
    assert record.master_kind == kind.capitalize()
    assert record.binning == binning and record.shape == shape
    assert record.set_temperature == temperature * u.deg_C
    assert record.exposure.to_value(u.s) == pytest.approx(exposure, abs=1e-12)
    assert record.filter == (filter_ if is_flat else None)


def test_make_master_filename_rejects():
    with pytest.raises(FilenameError, match="needs its filter"):
        make_master_filename("Flat", binning=1, shape=(10, 10), set_temperature=-10, exposure=5)
    with pytest.raises(FilenameError, match="only flats"):
        make_master_filename("Dark", binning=1, shape=(10, 10), set_temperature=-10, exposure=5, filter="Ha")
    with pytest.raises(FilenameError, match="master kind"):
        make_master_filename("Sky", binning=1, shape=(10, 10), set_temperature=-10, exposure=5)
    with pytest.raises(FilenameError, match="shape"):
        make_master_filename("Bias", binning=1, shape=(0, 10), set_temperature=-10, exposure=0)


# --- output names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "prefix", "expected"),
    [
        (
            "raw-T20-davestrickland-CygnusLoop_x1_y1-20210708-220604-Ha-BIN1-E-300-001.fit",
            "cal",
            "cal-T20-davestrickland-CygnusLoop_x1_y1-20210708-220604-Ha-BIN1-E-300-001.fits",
        ),
        (
            "calibrated-T05-davestrickland-M82-20210219-002600-Red-BIN1-W-300-001.fit.gz",
            "cal",
            "cal-T05-davestrickland-M82-20210219-002600-Red-BIN1-W-300-001.fits",
        ),
        (
            "cal-T05-davestrickland-M82-20210219-002600-Red-BIN1-W-300-001.fits",
            "nav",
            "nav-T05-davestrickland-M82-20210219-002600-Red-BIN1-W-300-001.fits",
        ),
        (
            "Calibrated-iTelescope-Whale_Galaxy_NGC_55-900s-Red-5.fits",
            "cal",
            "cal-Calibrated-iTelescope-Whale_Galaxy_NGC_55-900s-Red-5.fits",
        ),
        (
            "Master_Dark_2_2004x1336_Bin2x2_Temp-15C_ExpTime900s.fit",
            "cal",
            "cal-Master_Dark_2_2004x1336_Bin2x2_Temp-15C_ExpTime900s.fits",
        ),
    ],
)
def test_output_name(name, prefix, expected):
    assert output_name(name, prefix) == expected
    if prefix == "cal":
        record, derived = parse_filename(name), parse_filename(expected)
        assert derived.prefix == "cal"
        assert derived.kind == ("calibrated" if record.kind == "raw" else record.kind)
        for field in ("telescope", "user", "target", "filter", "exposure", "sequence", "local_time"):
            assert getattr(derived, field) == getattr(record, field)


def test_output_name_keeps_the_directory_and_type():
    raw = "T20/M31-field/20240101/raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001.fit"
    assert output_name(raw) == "T20/M31-field/20240101/cal-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001.fits"
    path = pathlib.Path("/data/raw-dir") / "raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001.fit"
    out = output_name(path)
    assert isinstance(out, pathlib.Path)
    assert out == pathlib.Path("/data/raw-dir/cal-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001.fits")


def test_output_name_rejects():
    name = "cal-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-60-001.fits"
    with pytest.raises(FilenameError, match="is the input name"):
        output_name(name)
    with pytest.raises(FilenameError, match="prefix"):
        output_name(name, "my-cal")
    with pytest.raises(FilenameError, match="unknown prefix"):
        output_name("light_001.fits")
