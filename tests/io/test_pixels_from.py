# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``write_frame(solved, path, pixels_from=calibrated_path)``: a solved frame that keeps its header,
WCS, star list and solution but refers to the calibrated frame's pixels (path + sha256) instead of
storing them again; read back equal to a full copy; refused, naming both files, when the
calibrated file is missing or its pixels changed (issue 16, finding 9).
"""

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable
from astropy.wcs import WCS

from astrophot import calibrate_frame, read_frame, write_frame
from astrophot.exceptions import FrameReadError, FrameWriteError
from astrophot.frames import SolvedFrame


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """calibrated/cal.fits and the SolvedFrame made from it (as read back, like the night runner does)."""
    from astrophot.datasets import make_raw_frame

    raw, truth = make_raw_frame(shape=(200, 300), seed=4)
    frame = calibrate_frame(raw, gain=1.5, read_noise=10.0)
    frame.mask[0, 0] = True  # a mask that differs from the flags: a MASK plane too
    root = tmp_path_factory.mktemp("pixels_from")
    (root / "calibrated").mkdir()
    (root / "solved").mkdir()
    cal_path = write_frame(frame, root / "calibrated" / "cal-1.fits")
    calibrated = read_frame(cal_path)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 300, 25), rng.uniform(0, 200, 25)
    ra, dec = truth[0].wcs.pixel_to_world_values(x, y)
    stars = QTable({"x": x, "y": y, "flux": rng.uniform(1e3, 1e5, 25), "ra": ra, "dec": dec})
    solution = {"backend": "matcher", "n_matched": 25, "rms_arcsec": 0.21}
    solved = SolvedFrame(calibrated, wcs=truth[0].wcs, stars=stars, solution=solution)
    return root, cal_path, solved


def _planes(frame):
    return (frame.data, frame.uncertainty.array, frame.flags, frame.mask)


def test_a_solved_frame_refers_to_its_calibrated_pixels_and_reads_back_equal(night, tmp_path):
    root, cal_path, solved = night
    full = write_frame(solved, tmp_path / "nav-full.fits")
    nav = write_frame(solved, root / "solved" / "nav-1.fits", pixels_from=cal_path)
    with fits.open(nav) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "STARS", "SOLUTION"]  # no pixel planes
        assert hdul[0].header["NAXIS"] == 0
        assert hdul[0].header["APPIXREF"] == "../calibrated/cal-1.fits"  # relative to the solved frame
        assert len(hdul[0].header["APPIXSHA"]) == 64
    before, after = full.stat().st_size, nav.stat().st_size
    # 200x300: float32 data + float32 UNCERT + uint8 MASK + uint8 DQ = 600 kB of pixels not repeated
    assert before - after >= 200 * 300 * (4 + 4 + 1 + 1), (before, after)
    assert after < 0.1 * before, (before, after)

    a, b = read_frame(full), read_frame(nav)
    assert type(b) is SolvedFrame
    for left, right in zip(_planes(a), _planes(b)):
        assert left.dtype == right.dtype
        np.testing.assert_array_equal(left, right)
    assert b.checksum() == solved.checksum()
    assert list(b.header.items()) == list(a.header.items())
    assert b.wcs.to_header() == a.wcs.to_header() and b.wcs.pixel_shape == a.wcs.pixel_shape
    assert b.unit == a.unit == solved.unit
    assert b.solution == a.solution == solved.solution
    for name in solved.stars.colnames:
        np.testing.assert_array_equal(b.stars[name], a.stars[name])
    assert b.provenance.id == a.provenance.id == solved.provenance.id
    # the pair moves together: the relative path still finds the pixels
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    np.testing.assert_array_equal(read_frame(moved / "solved" / "nav-1.fits").data, a.data)


def test_a_changed_or_missing_calibrated_file_is_refused_naming_both(night, tmp_path):
    root, _, solved = night
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    cal, nav = copy / "calibrated" / "cal-1.fits", copy / "solved" / "nav-1.fits"
    if not nav.exists():
        write_frame(solved, nav, pixels_from=cal)
    # a header edit changes no pixel: still read
    with fits.open(cal, mode="update") as hdul:
        hdul[0].header["OBSERVER"] = "someone"
    np.testing.assert_array_equal(read_frame(nav).data, solved.data)
    # one pixel changed: refused with both names
    with fits.open(cal, mode="update") as hdul:
        hdul[0].data[10, 20] += 1.0
    with pytest.raises(
        FrameReadError, match=r"nav-1\.fits: its pixels are in .*cal-1\.fits, whose pixels changed"
    ):
        read_frame(nav)
    # a flag changed: refused too (the checksum covers every plane)
    shutil.copy(root / "calibrated" / "cal-1.fits", cal)
    np.testing.assert_array_equal(read_frame(nav).flags, solved.flags)
    with fits.open(cal, mode="update") as hdul:
        hdul["DQ"].data[3, 3] ^= 1
    with pytest.raises(FrameReadError, match="whose pixels changed"):
        read_frame(nav)
    cal.unlink()
    with pytest.raises(
        FrameReadError, match=r"nav-1\.fits: its pixels are in .*cal-1\.fits, which does not exist"
    ):
        read_frame(nav)


def test_pixels_from_must_hold_exactly_the_frames_pixels(night, tmp_path):
    root, cal_path, solved = night
    other = solved.copy()
    other.data[0, 1] += 1.0
    with pytest.raises(
        FrameWriteError, match=r"nav\.fits: the frame's data differs from that of .*cal-1\.fits"
    ):
        write_frame(other, tmp_path / "nav.fits", pixels_from=cal_path)
    flagged = solved.copy()
    flagged.flags[4, 4] ^= 2
    with pytest.raises(FrameWriteError, match="flags differs"):
        write_frame(flagged, tmp_path / "nav.fits", pixels_from=cal_path)
    assert not (tmp_path / "nav.fits").exists() and not (tmp_path / "nav.asdf").exists()
    # a file that holds no pixels itself (a reference) is not a source: one level only
    ref = write_frame(solved, tmp_path / "ref.fits", pixels_from=cal_path)
    with pytest.raises(FrameWriteError, match=r"holds no pixels itself"):
        write_frame(solved, tmp_path / "chain.fits", pixels_from=ref)
    with pytest.raises(FrameWriteError, match="names the file being written"):
        write_frame(solved, ref, pixels_from=ref, overwrite=True)
    # a file astrophot did not write
    plain = tmp_path / "plain.fits"
    fits.PrimaryHDU(np.asarray(solved.data)).writeto(plain)
    with pytest.raises(FrameWriteError, match="not written by astrophot"):
        write_frame(solved, tmp_path / "nav2.fits", pixels_from=plain)


def test_headers_say_the_shape_and_info_where_the_pixels_are(night, tmp_path, capsys):
    from astrophot.cli.main import main
    from astrophot.io._fits import read_product_header

    root, cal_path, solved = night
    far = tmp_path / ("calibrated-" + "x" * 70)  # a path longer than one card: CONTINUE cards
    far.mkdir()
    for suffix in (".fits", ".asdf"):
        shutil.copy(cal_path.with_suffix(suffix), far / cal_path.with_suffix(suffix).name)
    (tmp_path / "solved").mkdir()
    pairs = (
        (cal_path, root / "solved" / "nav-1.fits"),
        (far / cal_path.name, tmp_path / "solved" / "nav-1.fits"),
    )
    for source, nav in pairs:
        if not nav.exists():
            write_frame(solved, nav, pixels_from=source)
        # the grid of a night reads headers only: the image's NAXIS1/2 and WCS are there
        header = read_product_header(nav)
        assert (header["NAXIS"], header["NAXIS1"], header["NAXIS2"]) == (2, 300, 200)
        wcs = WCS(header)
        assert wcs.pixel_shape == (300, 200)
        np.testing.assert_array_equal(wcs.wcs.crval, read_frame(nav).wcs.wcs.crval)  # as read_frame reads it
        assert header["EXPTIME"] == solved.header["EXPTIME"]
        assert main(["info", str(nav)]) == 0
        shown = capsys.readouterr().out
        reference = fits.getheader(nav)["APPIXREF"]
        assert f"shape       300 x 200 (float32, electron), pixels in {reference}" in shown, shown
    assert len(fits.getheader(pairs[1][1])["APPIXREF"]) > 68
