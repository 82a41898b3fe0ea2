# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""prepare_download: unzip, rename, fix permissions -- safely, idempotently, losing nothing."""

import hashlib
import io
import os
import stat
import warnings
import zipfile

import pytest

from astrophot.exceptions import AstrophotError
from astrophot.instruments.itelescope import PrepareError, PrepareReport, prepare_download

RAW = "raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-300-{:03d}.fit"


def _zip(path, members, *, compression=zipfile.ZIP_DEFLATED):
    """Write ``members`` (name -> bytes, or ZipInfo -> bytes) to a zip at ``path``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # hostile archives on purpose
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return path


def _symlink_info(name):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _snapshot(root):
    """Everything about a tree: type, mode, size, content hash, mtime of every entry."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = "link:" + os.readlink(path)
            else:
                digest = None
            state[rel] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_size,
                digest,
                st.st_mtime_ns,
            )
    return state


def _contents(root):
    """Multiset of the content hashes of every regular file (where files are does not matter)."""
    hashes = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as fh:
                    hashes.append(hashlib.sha256(fh.read()).hexdigest())
    return sorted(hashes)


def _sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def night(tmp_path):
    """A realistic download: spaces in names, two zips, a non-traversable directory."""
    root = tmp_path / "T20"
    target = root / "M31 field" / "20240101"
    target.mkdir(parents=True)
    lights = [(RAW.format(i), f"light {i}".encode() * 100) for i in range(1, 4)]
    _zip(target / "lights part 1.zip", lights[:2])
    _zip(target / "lights part 2.zip", [lights[2], ("logs/night log.txt", b"clear")])
    (target / "notes with spaces.txt").write_bytes(b"seeing 2 arcsec")
    locked = root / "calibration"
    locked.mkdir()
    (locked / "Master_Dark_1_4008x2672_Bin1x1_Temp-15C_ExpTime900s.fit").write_bytes(b"dark")
    os.chmod(locked / "Master_Dark_1_4008x2672_Bin1x1_Temp-15C_ExpTime900s.fit", 0o600)
    os.chmod(locked, 0o700)
    return root


def test_prepares_a_realistic_download(night):
    before = _contents(night)
    report = prepare_download(night)
    assert isinstance(report, PrepareReport)
    assert report.ok and report.changed and not report.dry_run
    folder = night / "M31_field" / "20240101"
    expected_names = {
        "lights_part_1.zip",
        "lights_part_2.zip",
        "notes_with_spaces.txt",
        RAW.format(1),
        RAW.format(2),
        RAW.format(3),
        "logs",
    }
    assert {p.name for p in folder.iterdir()} == expected_names
    assert (folder / "logs" / "night_log.txt").read_bytes() == b"clear"
    for i in range(1, 4):
        assert (folder / RAW.format(i)).read_bytes() == f"light {i}".encode() * 100
    # the report names every action
    assert [(o.name, n.name) for o, n in report.renamed] == [
        ("M31 field", "M31_field"),
        ("lights part 1.zip", "lights_part_1.zip"),
        ("lights part 2.zip", "lights_part_2.zip"),
        ("notes with spaces.txt", "notes_with_spaces.txt"),
    ]
    assert sorted(p.name for _, p in report.extracted) == sorted(
        [*(RAW.format(i) for i in (1, 2, 3)), "night_log.txt"]
    )
    assert [a.name for a in report.archives] == ["lights_part_1.zip", "lights_part_2.zip"]
    assert not report.skipped and not report.errors
    # permissions: the locked directory is now traversable, its file readable by all
    calibration = night / "calibration"
    assert stat.S_IMODE(os.stat(calibration).st_mode) == 0o755
    dark = calibration / "Master_Dark_1_4008x2672_Bin1x1_Temp-15C_ExpTime900s.fit"
    assert stat.S_IMODE(os.stat(dark).st_mode) == 0o644
    assert {(p.name, old, new) for p, old, new in report.permissions} >= {
        ("calibration", 0o700, 0o755),
        (dark.name, 0o600, 0o644),
    }
    # no file lost: every original file is still there, plus the archives' contents
    after = _contents(night)
    extracted = [_sha(f"light {i}".encode() * 100) for i in (1, 2, 3)] + [_sha(b"clear")]
    assert after == sorted(before + extracted)
    text = report.format()
    assert "renamed: 4" in text and "extracted: 4 from 2 archive(s)" in text
    assert str(report) == text


def test_running_twice_changes_nothing(night):
    prepare_download(night)
    first = _snapshot(night)
    report = prepare_download(night)
    assert not report.changed
    assert report.ok and not report.skipped
    assert len(report.archives) == 2  # both archives are complete
    assert _snapshot(night) == first
    assert "nothing to do" in report.format()


def test_dry_run_changes_nothing_and_predicts_the_real_run(night, tmp_path):
    before = _snapshot(night)
    dry = prepare_download(night, dry_run=True)
    assert dry.dry_run and dry.changed
    assert _snapshot(night) == before
    assert "dry run" in dry.format() and "would be" in dry.format()
    real = prepare_download(night)
    for name in ("permissions", "renamed", "extracted", "archives", "skipped", "errors"):
        assert getattr(dry, name) == getattr(real, name), name


def test_dry_run_after_a_real_run_has_nothing_to_do(night):
    prepare_download(night)
    report = prepare_download(night, dry_run=True)
    assert not report.changed and report.ok


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("../evil.txt", "points outside"),
        ("good/../../evil.txt", "points outside"),
        ("..\\evil.txt", "points outside"),
        ("/tmp/evil.txt", "absolute path"),
        ("\\\\server\\share\\evil.txt", "absolute path"),
        ("C:\\Windows\\evil.txt", "absolute path"),
        ("C:evil.txt", "absolute path"),
    ],
)
def test_entries_that_escape_are_refused(tmp_path, entry, reason):
    root = tmp_path / "download"
    root.mkdir()
    archive = _zip(root / "night.zip", [(RAW.format(1), b"good"), (entry, b"evil")])
    zip_bytes = archive.read_bytes()
    report = prepare_download(root)
    assert not report.ok
    ((path, message),) = report.errors
    assert path == archive
    assert reason in message and "nothing extracted" in message and repr(entry) in message
    # nothing extracted at all (not even the good entry), nothing written outside, archive kept
    assert sorted(p.name for p in root.iterdir()) == ["night.zip"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["download"]
    assert archive.read_bytes() == zip_bytes
    assert not report.extracted and not report.archives


def test_symlink_entries_are_refused(tmp_path):
    root = tmp_path / "download"
    root.mkdir()
    archive = _zip(root / "night.zip", [(RAW.format(1), b"good"), (_symlink_info("passwd"), b"/etc/passwd")])
    report = prepare_download(root)
    ((path, message),) = report.errors
    assert path == archive and "symbolic link" in message
    assert sorted(p.name for p in root.iterdir()) == ["night.zip"]
    assert not os.path.lexists(root / "passwd")


def test_special_file_entries_are_refused(tmp_path):
    root = tmp_path / "download"
    root.mkdir()
    info = zipfile.ZipInfo("fifo")
    info.create_system = 3
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    _zip(root / "night.zip", [(info, b"")])
    report = prepare_download(root)
    assert "special file" in report.errors[0][1]
    assert sorted(p.name for p in root.iterdir()) == ["night.zip"]


def test_no_writing_through_an_existing_symlink_to_outside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "download"
    root.mkdir()
    os.symlink(outside, root / "link")
    _zip(root / "night.zip", [("link/evil.txt", b"evil")])
    report = prepare_download(root)
    assert "outside the directory" in report.errors[0][1]
    assert list(outside.iterdir()) == []
    # a symlink already in the directory is neither followed nor changed
    assert os.readlink(root / "link") == str(outside)


def test_duplicate_names_keep_the_first_and_lose_nothing(tmp_path):
    root = tmp_path / "download"
    root.mkdir()
    archive = _zip(
        root / "night.zip",
        [
            (RAW.format(1), b"first"),
            (RAW.format(1), b"second"),
            ("a b.txt", b"spaced"),
            ("a_b.txt", b"plain"),
        ],
    )
    report = prepare_download(root)
    assert report.ok
    assert (root / RAW.format(1)).read_bytes() == b"first"
    assert (root / "a_b.txt").read_bytes() == b"spaced"  # 'a b.txt' comes first and becomes a_b.txt
    skipped = {(p.name, why.split(" ")[0]) for p, why in report.skipped}
    assert skipped == {(RAW.format(1), "duplicate"), ("a_b.txt", "duplicate")}
    # the skipped entries are still in the archive, which is kept
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.read(i) for i in zf.infolist()) == [b"first", b"plain", b"second", b"spaced"]
    # idempotent: the second run reports the same skips and changes nothing
    state = _snapshot(root)
    again = prepare_download(root)
    assert not again.changed and again.skipped == report.skipped
    assert _snapshot(root) == state


def test_existing_files_are_never_overwritten(tmp_path):
    root = tmp_path / "download"
    root.mkdir()
    (root / RAW.format(1)).write_bytes(b"mine, edited")
    _zip(root / "night.zip", [(RAW.format(1), b"from the archive"), (RAW.format(2), b"new")])
    report = prepare_download(root)
    assert (root / RAW.format(1)).read_bytes() == b"mine, edited"
    assert (root / RAW.format(2)).read_bytes() == b"new"
    ((path, why),) = report.skipped
    assert path == root / RAW.format(1) and "differs" in why
    assert [p.name for _, p in report.extracted] == [RAW.format(2)]


def test_identical_existing_files_count_as_extracted(tmp_path):
    root = tmp_path / "download"
    root.mkdir()
    (root / RAW.format(1)).write_bytes(b"same")
    _zip(root / "night.zip", [(RAW.format(1), b"same")])
    report = prepare_download(root)
    assert not report.extracted and not report.skipped
    assert report.archives == [root / "night.zip"]


def test_rename_clashes_are_skipped(tmp_path):
    root = tmp_path / "download"
    (root / "my night").mkdir(parents=True)
    (root / "my_night").mkdir()
    (root / "a b.fit").write_bytes(b"spaced")
    (root / "a_b.fit").write_bytes(b"plain")
    report = prepare_download(root)
    assert not report.renamed
    assert {p.name for p, _ in report.skipped} == {"my night", "a b.fit"}
    assert all("already exists" in why for _, why in report.skipped)
    assert (root / "a b.fit").read_bytes() == b"spaced"
    assert (root / "a_b.fit").read_bytes() == b"plain"


def test_truncated_archive_is_reported_and_left_in_place(tmp_path):
    root = tmp_path / "download"
    root.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for i in range(1, 4):
            zf.writestr(RAW.format(i), os.urandom(2000))
    data = buffer.getvalue()
    (root / "night.zip").write_bytes(data[: len(data) // 2])
    good = _zip(root / "other.zip", [(RAW.format(9), b"fine")])
    report = prepare_download(root)
    ((path, why),) = report.errors
    assert path == root / "night.zip" and "not a readable zip archive" in why
    assert (root / "night.zip").read_bytes() == data[: len(data) // 2]
    # the other archive is extracted all the same
    assert report.archives == [good]
    assert sorted(p.name for p in root.iterdir()) == ["night.zip", "other.zip", RAW.format(9)]


def test_corrupt_member_extracts_nothing_from_that_archive(tmp_path):
    root = tmp_path / "download"
    root.mkdir()
    first, second = b"A" * 5000, b"B" * 5000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(RAW.format(1), first)
        zf.writestr(RAW.format(2), second)
    data = bytearray(buffer.getvalue())
    where = data.find(second)
    data[where + 100 : where + 110] = b"X" * 10  # breaks the CRC of the second member only
    (root / "night.zip").write_bytes(bytes(data))
    report = prepare_download(root)
    ((path, why),) = report.errors
    assert path == root / "night.zip" and "left in place, nothing extracted" in why
    # all or nothing: the intact first member is not extracted either, no temporary file remains
    assert sorted(os.listdir(root)) == ["night.zip"]
    assert (root / "night.zip").read_bytes() == bytes(data)


def test_nested_archives_and_directories_in_archives(tmp_path):
    root = tmp_path / "download"
    root.mkdir()
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("deep dir/" + RAW.format(5), b"deep")
    _zip(root / "outer.zip", [("sub dir/", b""), ("sub dir/inner.zip", inner.getvalue())])
    report = prepare_download(root)
    assert report.ok
    assert (root / "sub_dir" / "deep_dir" / RAW.format(5)).read_bytes() == b"deep"
    assert stat.S_IMODE(os.stat(root / "sub_dir" / "deep_dir").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(root / "sub_dir" / "deep_dir" / RAW.format(5)).st_mode) == 0o644
    assert report.archives == [root / "outer.zip", root / "sub_dir" / "inner.zip"]
    state = _snapshot(root)
    assert not prepare_download(root).changed
    assert _snapshot(root) == state


def test_not_a_directory(tmp_path):
    with pytest.raises(PrepareError, match="no such directory") as info:
        prepare_download(tmp_path / "missing")
    assert isinstance(info.value, AstrophotError) and isinstance(info.value, OSError)
    (tmp_path / "file.zip").write_bytes(b"")
    with pytest.raises(PrepareError, match="not a directory"):
        prepare_download(tmp_path / "file.zip")


def test_empty_directory(tmp_path):
    os.chmod(tmp_path, 0o700)
    report = prepare_download(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o700  # the directory given is left as it is
    assert report.ok and not report.changed
    assert report.format().endswith("nothing to do")


def test_long_member_names(tmp_path):
    long_name = (
        "raw-T20-jdoe-" + "Very_Long_Target_Name_" * 9 + "Name_A" + "-20240101-201500-Ha-BIN1-E-300-001.fit"
    )
    assert 250 <= len(long_name) <= 255
    _zip(tmp_path / "night.zip", [(long_name, b"x")])
    report = prepare_download(tmp_path)
    assert report.ok
    assert (tmp_path / long_name).read_bytes() == b"x"


def test_a_decompression_bomb_is_refused_and_the_rest_extracted(tmp_path):
    """Reliability finding 14: a 2 MB zip holding 2 GiB of zeros was extracted in full."""
    zeros = b"\0" * (64 * 2**20)  # 64 MiB deflates about 1000 times
    _zip(tmp_path / "bomb.zip", [("zeros.fit", zeros), (RAW.format(1), b"a")])
    inner = io.BytesIO()
    _zip(inner, [("deep_zeros.fit", zeros)])
    _zip(tmp_path / "nested.zip", [("inner.zip", inner.getvalue())], compression=zipfile.ZIP_STORED)
    _zip(tmp_path / "good.zip", [(RAW.format(2), b"b")])
    report = prepare_download(tmp_path)
    errors = {path.name: why for path, why in report.errors}
    assert "decompression bomb" in errors["bomb.zip"] and "max_ratio=200" in errors["bomb.zip"]
    assert "decompression bomb" in errors["inner.zip"]  # nested archives are held to the same limit
    assert not (tmp_path / "zeros.fit").exists() and not (tmp_path / RAW.format(1)).exists()
    assert not (tmp_path / "deep_zeros.fit").exists()
    assert (tmp_path / RAW.format(2)).read_bytes() == b"b"
    assert "bomb.zip" in report.format() and not report.ok
    # the user can raise the limit on purpose
    assert prepare_download(tmp_path, max_ratio=1e5).ok
    assert (tmp_path / "zeros.fit").stat().st_size == len(zeros)


def test_the_total_expanded_size_is_capped_over_the_run(tmp_path):
    rng = os.urandom
    _zip(tmp_path / "a.zip", [(RAW.format(1), rng(3 * 2**20))])
    _zip(tmp_path / "b.zip", [(RAW.format(2), rng(3 * 2**20))])
    report = prepare_download(tmp_path, max_size=5 * 2**20)
    assert len(report.extracted) == 1 and len(report.errors) == 1
    archive, why = report.errors[0]
    assert archive.name == "b.zip" and "max_size=5242880" in why and "3145728 already extracted" in why
    with pytest.raises(ValueError, match="max_ratio"):
        prepare_download(tmp_path, max_ratio=0.5)


def test_a_name_too_long_for_the_file_system_extracts_nothing_of_its_archive(tmp_path):
    """Reliability finding 15: one 300-byte name aborted the run with a raw [Errno 36], half-extracted
    the archive, left a partial file and skipped later archives."""
    too_long = "x" * 300 + ".fit"
    _zip(tmp_path / "a.zip", [(RAW.format(1), b"1"), (too_long, b"2"), (RAW.format(3), b"3")])
    _zip(tmp_path / "b.zip", [(RAW.format(4), b"4")])
    report = prepare_download(tmp_path)
    ((archive, why),) = report.errors
    assert archive.name == "a.zip" and "304 bytes" in why and "longer than the file system allows" in why
    assert not (tmp_path / RAW.format(1)).exists() and not (tmp_path / RAW.format(3)).exists()
    assert (tmp_path / RAW.format(4)).read_bytes() == b"4"  # later archives still extracted
    assert not [p for p in tmp_path.iterdir() if ".astrophot-partial-" in p.name]
    assert "a.zip" in report.format()


def test_control_characters_in_entry_names_become_underscores(tmp_path):
    _zip(tmp_path / "a.zip", [("M31\tR\n001.fit", b"1"), ("dir\nname/M31 G.fit", b"2")])
    report = prepare_download(tmp_path)
    assert report.ok
    assert (tmp_path / "M31_R_001.fit").read_bytes() == b"1"
    assert (tmp_path / "dir_name" / "M31_G.fit").read_bytes() == b"2"
    text = report.format()
    assert "\t" not in text and all("M31" not in line or line.count("fit") <= 1 for line in text.splitlines())


def test_an_error_while_publishing_undoes_the_whole_archive(tmp_path, monkeypatch):
    _zip(tmp_path / "a.zip", [(RAW.format(1), b"1"), ("sub/" + RAW.format(2), b"2"), (RAW.format(3), b"3")])
    real_link = os.link
    calls = []

    def failing_link(src, dst, *args, **kwargs):
        calls.append(dst)
        if len(calls) == 2:
            raise PermissionError(13, "Permission denied", str(dst))
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", failing_link)
    report = prepare_download(tmp_path)
    ((archive, why),) = report.errors
    assert archive.name == "a.zip" and "Permission denied" in why and "nothing extracted" in why
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]  # no file, no directory, no temporary
    monkeypatch.setattr(os, "link", real_link)
    assert prepare_download(tmp_path).ok and (tmp_path / "sub" / RAW.format(2)).read_bytes() == b"2"
