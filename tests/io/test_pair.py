# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Issue 11, findings 1-5: the FITS + sidecar pair is published so that a reader sees the old pair
or the new pair; temporaries are owned and cleaned; odd names; errors not masked.
"""

import errno
import os
import threading

import numpy as np
import pytest
from astropy.io import fits

import astrophot.io._atomic as atomic_module
import astrophot.io._fits as fits_module
from astrophot import CalibratedFrame, read_frame, write_frame
from astrophot.exceptions import FrameReadError, FrameWriteError, ProvenanceError
from astrophot.io import clean_stale_temporaries
from astrophot.provenance import start_step


def _frame(value):
    data = np.full((6, 8), value, dtype=np.float32)
    return start_step("t", parameters={"value": value}).finish(CalibratedFrame(data))


def _consistent(path):
    """The pair at ``path`` belongs together; returns the value its pixels hold."""
    frame = read_frame(path)
    assert frame.provenance.last.output.sha256 == frame.checksum()
    value = frame.provenance.last.parameters["value"]
    assert np.all(frame.data == value)
    return value


def _temporaries(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".aptmp", ".aplock")))


class Crash(BaseException):
    """A process dying at this point: nothing after it runs (not even clean-up)."""


def _crash_at(monkeypatch, step, side_name):
    monkeypatch.setattr(fits_module, "safe_unlink", lambda path: None)  # a dead process cleans nothing
    monkeypatch.setattr(atomic_module, "safe_unlink", lambda path: None)
    if step == "fits temporary written":
        monkeypatch.setattr(fits_module, "write_sidecar", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    elif step == "both temporaries written":
        monkeypatch.setattr(fits_module, "target_lock", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    elif step == "fits published":
        real_replace = os.replace

        def replace(src, dst):
            if str(dst).endswith(side_name):
                raise Crash()
            return real_replace(src, dst)

        monkeypatch.setattr(fits_module.os, "replace", replace)
    elif step == "pair published":
        pass


STEPS = ["fits temporary written", "both temporaries written", "fits published", "pair published"]


@pytest.mark.parametrize("overwrite", [False, True], ids=["fresh name", "overwrite"])
@pytest.mark.parametrize("step", STEPS)
def test_crash_at_every_step_leaves_old_or_new_pair(tmp_path, monkeypatch, step, overwrite):
    """Finding 2: a crash between any two steps; the reader sees the old or the new pair, the next write cleans."""
    path = tmp_path / "out.fits"
    if overwrite:
        write_frame(_frame(1.0), path)
    with monkeypatch.context() as m:
        _crash_at(m, step, "out.asdf")
        try:
            write_frame(_frame(2.0), path, overwrite=overwrite)
        except Crash:
            pass
    # what any reader sees now
    if path.exists():
        assert _consistent(path) in ((1.0, 2.0) if overwrite else (2.0,))
    else:
        assert not overwrite
    # the writer is dead: its temporaries are stale; the next write removes them (or completes the pair)
    monkeypatch.setattr(atomic_module, "_pid_alive", lambda pid: False)
    write_frame(_frame(3.0), path, overwrite=True)
    assert _consistent(path) == 3.0
    assert _temporaries(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.asdf", "out.fits"]


def test_failing_fits_publish_keeps_the_old_pair_with_its_history(tmp_path, monkeypatch):
    """Finding 2: a failing FITS rename used to delete the new sidecar after the old one was replaced."""
    path = tmp_path / "out.fits"
    write_frame(_frame(1.0), path)

    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "rename failed (injected)")

    monkeypatch.setattr(fits_module, "publish", broken)
    with pytest.raises(FrameWriteError, match="injected"):
        write_frame(_frame(2.0), path, overwrite=True)
    assert _consistent(path) == 1.0
    assert _temporaries(tmp_path) == []


def test_orphan_sidecar_does_not_block_a_rerun(tmp_path):
    """Finding 2: an orphan .asdf left by an old crash used to give 'already exists'."""
    path = tmp_path / "out.fits"
    write_frame(_frame(1.0), path)
    path.unlink()
    write_frame(_frame(2.0), path)
    assert _consistent(path) == 2.0


def test_foreign_asdf_beside_a_new_name_is_not_replaced(tmp_path):
    (tmp_path / "out.asdf").write_text("#ASDF 1.0.0\nmine\n")
    with pytest.raises(FrameWriteError, match="not the sidecar"):
        write_frame(_frame(1.0), tmp_path / "out.fits")
    assert (tmp_path / "out.asdf").read_text() == "#ASDF 1.0.0\nmine\n"


def test_threads_overwrite_false_exactly_one_wins(tmp_path):
    """Finding 3: 300/300 pairs of threads both succeeded before; now one wins and the pair is consistent."""
    path = tmp_path / "race.fits"
    for _attempt in range(10):
        results = [None] * 4
        barrier = threading.Barrier(4)

        def write(i, barrier=barrier, results=results):
            barrier.wait()
            try:
                write_frame(_frame(float(i)), path)
                results[i] = "ok"
            except FrameWriteError as exc:
                results[i] = "exists" if "already exists" in str(exc) else str(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["exists", "exists", "exists", "ok"], results
        assert _consistent(path) == float(results.index("ok"))
        assert _temporaries(tmp_path) == []
        path.unlink()
        (tmp_path / "race.asdf").unlink()


@pytest.mark.parametrize("name", ["target#2.fits", "a;b.fits", "what?.fits", "100%.fits", "M31 #1.fits"])
def test_uri_characters_in_names_stay_beside_the_file(tmp_path, name):
    """Finding 1: '#', ';', '?', '%' made asdf write the sidecar elsewhere (and read M31 for M31#2)."""
    decoy = tmp_path / ("." + name.split("#")[0].split("?")[0])
    decoy.write_text("user file")
    path = write_frame(_frame(5.0), tmp_path / name)
    assert _consistent(path) == 5.0
    assert decoy.read_text() == "user file"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, name[:-5] + ".asdf", decoy.name])


def test_stale_temporaries_are_removed_only_when_their_process_is_dead(tmp_path):
    """Finding 4: temporaries of killed writers were never removed; now a later write or a start cleans."""
    path = tmp_path / "big.fits"
    dead = atomic_module.owned_temporary(path).name.replace(f".{os.getpid()}.", ".999999999.")
    alive = atomic_module.owned_temporary(path).name
    other_host = f".big.fits.otherhost.1.0123abcd{atomic_module.TMP_SUFFIX}"
    for name in (dead, alive, other_host):
        (tmp_path / name).write_bytes(b"x" * 1000)
    write_frame(_frame(1.0), path)
    assert not (tmp_path / dead).exists()
    assert (tmp_path / alive).exists() and (tmp_path / other_host).exists()
    (tmp_path / dead).write_bytes(b"x")
    removed = clean_stale_temporaries(tmp_path)
    assert [p.name for p in removed] == [dead]


def test_asdf_is_given_a_file_object_and_old_asdf_temporaries_are_cleaned(tmp_path):
    """Finding 4: asdf's own .asdf_tmp* files (it makes them for path strings) are cleaned when old."""
    old = tmp_path / ".asdf_tmpabc123"
    old.write_bytes(b"x")
    os.utime(old, (0, 0))
    write_frame(_frame(1.0), tmp_path / "a.fits")
    assert not list(tmp_path.glob(".asdf_tmp*")) or old.exists()
    assert clean_stale_temporaries(tmp_path) == [old]


def test_non_ascii_name_is_refused_up_front(tmp_path):
    """Finding 5: 'M31_été.fits' failed halfway (the sidecar name goes into a FITS card)."""
    with pytest.raises(FrameWriteError, match="printable ASCII.*'M31_(_|__)t(_|__)\\.fits'"):
        write_frame(_frame(1.0), tmp_path / "M31_été.fits")
    assert list(tmp_path.iterdir()) == []


def test_read_only_directory_reports_the_real_error(tmp_path, monkeypatch):
    """Finding 5: the clean-up's unlink masked the real error with EROFS."""
    real_open = open

    def erofs_open(file, mode="r", *args, **kwargs):
        if "w" in mode and str(file).endswith(".aptmp"):
            raise OSError(errno.EROFS, "Read-only file system", str(file))
        return real_open(file, mode, *args, **kwargs)

    def erofs_unlink(path, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system (unlink)", str(path))

    monkeypatch.setattr("builtins.open", erofs_open)
    monkeypatch.setattr(atomic_module.os, "unlink", erofs_unlink)
    with pytest.raises(
        FrameWriteError, match=r"Read-only file system'?\)?$|Errno 30\] Read-only file system"
    ):
        write_frame(_frame(1.0), tmp_path / "ro.fits")


def test_sidecar_name_card_cannot_point_elsewhere(tmp_path):
    """Finding 9: APSIDECR='../../etc/passwd' gave a bare ValueError without the file name."""
    path = write_frame(_frame(1.0), tmp_path / "a.fits")
    with fits.open(path, mode="update") as hdul:
        hdul[0].header["APSIDECR"] = "../../etc/passwd"
    with pytest.raises(FrameReadError, match=r"a\.fits: card APSIDECR = '\.\./\.\./etc/passwd'"):
        read_frame(path)


def test_control_characters_fail_at_read_naming_the_card(tmp_path):
    """Finding 9: NUL/BEL in header strings were accepted at read and failed later at write."""
    path = tmp_path / "bel.fits"
    hdu = fits.PrimaryHDU(np.ones((4, 4), dtype=np.uint16))
    hdu.writeto(path)
    with open(path, "r+b") as handle:
        raw = handle.read(2880)
        card = b"OBJECT  = 'M31\x07    '" + b" " * 60
        raw = raw.replace(b"END" + b" " * 77, card[:80] + b"END" + b" " * 77, 1)[:2880]
        handle.seek(0)
        handle.write(raw)
    with pytest.raises(
        FrameReadError, match="bel.fits: card OBJECT (holds control characters|cannot be parsed)"
    ):
        read_frame(path)


def test_sidecar_with_binary_blocks_is_refused_unread(tmp_path):
    """Finding 10: a 2 KB sidecar with a bzip2 block of 1 GiB used 2.2 GB and 20 s."""
    import asdf

    path = write_frame(_frame(1.0), tmp_path / "a.fits")
    side = tmp_path / "a.asdf"
    bomb = asdf.AsdfFile({"provenance": None, "payload": np.zeros(4 * 1024 * 1024, dtype=np.uint8)})
    bomb.set_array_compression(bomb.tree["payload"], "bzp2")
    with open(side, "wb") as handle:
        bomb.write_to(handle)
    assert side.stat().st_size < 20000
    with pytest.raises(ProvenanceError, match="a.asdf: provenance sidecar holds binary blocks"):
        read_frame(path)


def test_mostly_nan_or_infinite_frames_warn_with_numbers(tmp_path):
    """Finding 8 (part): F / 0 (all inf) and all-NaN frames passed silently (F / 0 is now refused:
    tests/reliability/test_degenerate.py)."""
    frame = _frame(1.0)
    frame.data = np.full(frame.data.shape, np.inf, dtype=frame.data.dtype)
    with pytest.warns(UserWarning, match="100% of its pixels are NaN or infinite"):
        write_frame(frame, tmp_path / "inf.fits")
    with pytest.warns(UserWarning, match="100% of its pixels are NaN or infinite"):
        read_frame(tmp_path / "inf.fits")


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "function: ",
            "function: 42 #",
            r"breaks its schema at steps/0/function: 42 is not of type 'string'",
        ),
        ("sha256: ", "sha256: zz", r"breaks its schema at steps/0/[\w/]*sha256: 'zz"),
        ("duration: ", "duration: abc", r"holds an invalid value \(ValueError: could not convert string"),
    ],
)
def test_a_sidecar_that_breaks_the_schema_fails_at_read_in_one_line(tmp_path, old, new, expected):
    """Finding 9: accepted at read, then the next write printed a 15-line jsonschema dump."""
    frame = _frame(1.0)
    path = write_frame(frame, tmp_path / "a.fits")
    side = tmp_path / "a.asdf"
    text = side.read_text()
    assert old in text
    side.write_text(text.replace(old, new, 1))
    with pytest.raises(ProvenanceError, match=expected) as info:
        read_frame(path)
    assert "\n" not in str(info.value) and "a.asdf" in str(info.value)


def test_a_write_error_is_one_line(tmp_path):
    frame = _frame(1.0)
    object.__setattr__(frame.provenance.steps[-1], "function", 42)  # a schema violation made in memory
    with pytest.raises(FrameWriteError, match=r"a.fits: write failed \(ValidationError: 42 is not") as info:
        write_frame(frame, tmp_path / "a.fits")
    assert "\n" not in str(info.value)
