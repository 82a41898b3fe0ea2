# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Bad-pixel maps, bad columns and the user YAML, against simulator truth."""

import warnings

import numpy as np
import pytest

from astrophot.calibration import (
    BadPixelRegions,
    find_bad_columns,
    find_bad_pixels,
    make_master_bias,
    make_master_dark,
    make_master_flat,
)
from astrophot.datasets import make_bias_stack, make_dark_stack, make_flat_stack, make_raw_frame
from astrophot.exceptions import AstrophotUserWarning, FrameMismatchError, UserRegionsError
from astrophot.frames import BadPixelMap, CalibratedFrame, DQFlag, MasterDark, MasterFlat
from astrophot.io import read_frame, write_frame

# a megapixel, so that a false-positive fraction of 1e-4 is 100 pixels: the 4-sigma rate of
# Gaussian noise (6.3e-5) is then well below it, beyond the counting noise
SHAPE = (1000, 1000)


@pytest.fixture(scope="module", params=[1, 2, 3])
def night(request):
    """Masters of one simulated camera and its truth."""
    seed = request.param
    biases, truth = make_bias_stack(9, shape=SHAPE, seed=seed)
    darks, _ = make_dark_stack(9, shape=SHAPE, exposure=300, seed=seed, detector=truth.detector)
    bias = make_master_bias(biases)
    return {
        "seed": seed,
        "detector": truth.detector,
        "bias": bias,
        "dark": make_master_dark(darks, bias=bias),
        "biased_dark": make_master_dark(darks),
    }


def test_hot_pixels_recall_and_false_positives(night):
    det = night["detector"]
    bpm = find_bad_pixels(night["dark"])
    assert isinstance(bpm, BadPixelMap)
    spread = bpm.provenance.steps[-1].outcome["dark_spread"]
    x, y, rate = det.hot_pixels.T
    excess = rate * 300 / det.gain
    strong = excess > 5 * spread
    assert strong.sum() >= 30
    # hot pixels on a bad column or row are flagged with the whole line
    found = (bpm.data[y.astype(int), x.astype(int)] & (DQFlag.HOT | DQFlag.BAD_COLUMN | DQFlag.BAD_ROW)) != 0
    assert found[strong].mean() >= 0.99
    normal = ~det.hot_pixel_mask & ~det.bad_line_mask
    flagged = (bpm.data & (DQFlag.HOT | DQFlag.COLD)) != 0
    assert np.count_nonzero(flagged & normal) / np.count_nonzero(normal) < 1e-4


def test_bad_lines_of_the_dark_are_flagged_whole(night):
    det = night["detector"]
    bpm = find_bad_pixels(night["dark"])
    columns = np.flatnonzero(np.all(bpm.data & DQFlag.BAD_COLUMN, axis=0))
    rows = np.flatnonzero(np.all(bpm.data & DQFlag.BAD_ROW, axis=1))
    assert sorted(columns) == sorted(det.bad_columns)
    assert sorted(rows) == sorted(det.bad_rows)


def test_biased_dark_column_pattern_is_not_hot(night):
    det = night["detector"]
    bpm = find_bad_pixels(night["biased_dark"])
    normal = ~det.hot_pixel_mask & ~det.bad_line_mask
    flagged = (bpm.data & (DQFlag.HOT | DQFlag.COLD)) != 0
    assert np.count_nonzero(flagged & normal) / np.count_nonzero(normal) < 1e-4


def test_bad_columns_found_in_calibrated_frames_none_invented(night):
    det = night["detector"]
    raw, _ = make_raw_frame(shape=SHAPE, exposure=300, seed=night["seed"], detector=det)
    calibrated = raw.data.astype(np.float32) - night["bias"].data - night["dark"].data
    calibrated /= det.flats["Red"]
    regions = find_bad_columns(CalibratedFrame(calibrated))
    assert [c - 1 for c in regions.columns] == sorted(det.bad_columns)
    assert [r - 1 for r in regions.rows] == sorted(det.bad_rows)
    text = regions.to_yaml()
    assert BadPixelRegions.from_yaml(text) == regions
    assert "sigma" in text and text.startswith("# find_bad_columns")


def test_find_bad_columns_safe_with_zero_spread():
    flat = CalibratedFrame(np.full((50, 60), 7.0, dtype=np.float32))
    assert len(find_bad_columns(flat)) == 0
    flat.data[:, 13] = 9.0
    flat.data[31, :] = 5.0
    found = find_bad_columns(flat)
    assert found.columns == (14,) and found.rows == (32,)


def test_find_bad_columns_checks_window():
    frame = CalibratedFrame(np.zeros((20, 20), dtype=np.float32))
    with pytest.raises(ValueError, match="odd"):
        find_bad_columns(frame, window=10)


def test_dead_pixels_from_a_flat():
    biases, truth = make_bias_stack(4, shape=(200, 240), seed=21)
    det = truth.detector
    flats, _ = make_flat_stack(5, filter="Red", shape=(200, 240), seed=21, detector=det)
    darks, _ = make_dark_stack(4, shape=(200, 240), seed=21, detector=det)
    bias = make_master_bias(biases)
    flat = make_master_flat(flats, bias=bias)
    dead = [(10, 20), (150, 33), (199, 239)]
    damaged = MasterFlat(flat.data.copy(), meta=flat.meta)
    for y, x in dead:
        damaged.data[y, x] *= 0.3
    bpm = find_bad_pixels(make_master_dark(darks, bias=bias), flat=damaged)
    found = {tuple(p) for p in np.argwhere(bpm.data & DQFlag.DEAD)}
    assert found == set(dead)  # dust shadows and vignetting are not dead pixels
    with pytest.raises(FrameMismatchError, match="flat"):
        find_bad_pixels(make_master_dark(darks, bias=bias), flat=MasterFlat(np.ones((10, 10))))


def test_user_regions_flags_and_bpm_round_trip(tmp_path):
    dark = MasterDark(np.random.default_rng(0).normal(10, 1, (5, 70)).astype(np.float32))
    yaml_file = tmp_path / "user.yml"
    yaml_file.write_text("bad_rectangles:\n  - [2, 3, 60, 62]\nbad_rows: [5]\n")
    bpm = find_bad_pixels(dark, user_regions=yaml_file)
    user = (bpm.data & DQFlag.USER) != 0
    expected = np.zeros((5, 70), dtype=bool)
    expected[1:3, 59:62] = True
    expected[4, :] = True
    np.testing.assert_array_equal(user, expected)
    assert bpm.count(DQFlag.BAD_ROW) == 70
    assert bpm.header["NBADUSER"] == expected.sum()
    path = write_frame(bpm, tmp_path / "Master_Badpix.fits")
    back = read_frame(path)
    assert isinstance(back, BadPixelMap)
    np.testing.assert_array_equal(back.data, bpm.data)


def test_rectangle_is_one_based_inclusive():
    mask = BadPixelRegions.from_yaml("bad_rectangles: [[2, 3, 60, 62]]").to_mask((10, 80))
    rows, cols = np.nonzero(mask)
    assert sorted(set(rows)) == [1, 2]
    assert sorted(set(cols)) == [59, 60, 61]


def test_yaml_keys_optional_and_round_trip_with_comments(tmp_path):
    text = """# T20 bin 1, 2020 masters
# from inspection of Ha frames
bad_columns:
  - 1004   # hot column
  - 77
bad_rectangles:
  - [10, 12, 300, 310]  # dust
"""
    regions = BadPixelRegions.from_yaml(text)
    assert regions.columns == (77, 1004) and regions.rows == ()
    assert regions.rectangles == ((10, 12, 300, 310),)
    out = regions.to_yaml()
    assert out.startswith("# T20 bin 1, 2020 masters\n# from inspection of Ha frames\n")
    assert "  - 1004  # hot column" in out and "# dust" in out and "bad_rows: []" in out
    assert BadPixelRegions.from_yaml(out) == regions
    path = tmp_path / "again.yml"
    path.write_text(out)
    assert BadPixelRegions.from_yaml(path).comments == regions.comments
    assert len(BadPixelRegions.from_yaml("")) == 0
    assert len(BadPixelRegions.from_yaml("# only a comment\n")) == 0
    assert len(BadPixelRegions.from_yaml("bad_columns:\n")) == 0


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("bad_columns: [1, 2\nbad_rows: [3]\n", 2, "not valid YAML"),
        ("bad_columns:\n  - 4\n  - x\n", 3, "column numbers"),
        ("bad_colums: [4]\n", 1, "unknown key 'bad_colums'"),
        ("bad_rows: 7\n", 1, "must be a list"),
        ("bad_rows:\n  - 0\n", 2, ">= 1"),
        ("bad_rectangles:\n  - [1, 2, 3]\n", 2, "found 3 numbers"),
        ("bad_rectangles:\n  - [5, 2, 3, 4]\n", 2, "start after its end"),
        ("- 1\n- 2\n", 1, "expected a mapping"),
        ("bad_rows: [1]\nbad_rows: [2]\n", 2, "appears twice"),
        ("bad_columns:\n  - 2.5\n", 2, "column numbers"),
    ],
)
def test_malformed_yaml_gives_file_line_and_reason(tmp_path, text, line, reason):
    path = tmp_path / "broken.yml"
    path.write_text(text)
    with pytest.raises(UserRegionsError) as info:
        BadPixelRegions.from_yaml(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line {line}:")
    assert reason in message


def test_missing_yaml_file(tmp_path):
    with pytest.raises(UserRegionsError, match="no such file"):
        BadPixelRegions.from_yaml(tmp_path / "nope.yml")


def test_regions_outside_the_image_warn():
    regions = BadPixelRegions(columns=[3, 500], rectangles=[(1, 2, 8, 20)])
    with pytest.warns(AstrophotUserWarning, match="column 500"):
        mask = regions.to_mask((10, 10))
    assert mask[:, 2].all() and mask[0:2, 7:10].all() and mask.sum() == 10 + 2 * 3


def test_merge():
    a = BadPixelRegions(columns=[1, 2], comments={("bad_columns", 1): "a"})
    b = BadPixelRegions(columns=[2, 3], rows=[4])
    merged = a.merge(b)
    assert merged.columns == (1, 2, 3) and merged.rows == (4,) and merged.comments[("bad_columns", 1)] == "a"


@pytest.mark.parametrize("n_frames", [1, 3])
def test_master_of_few_integer_frames_flags_only_its_bad_row(n_frames):
    """
    Regression: a master of few integer frames has row medians on a grid (MAD of their
    residuals 0); the line test flagged dozens of rows (627 of 1336 on a 3-dark master).
    """
    from astrophot import MasterDark
    from astrophot.calibration import find_bad_pixels

    rng = np.random.default_rng(0)
    shape = (600, 400)
    frames = rng.poisson(20, (n_frames, *shape)) + np.round(rng.normal(0, 1.0, (n_frames, *shape)))
    data = np.median(frames, axis=0).astype(np.float32)
    data[300, :] += 20  # the one bad row (truth)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstrophotUserWarning)
        bpm = find_bad_pixels(MasterDark(data, meta={"EXPTIME": 300.0}))
    outcome = bpm.provenance.steps[-1].outcome
    assert list(outcome["bad_rows"]) == [301]
    assert list(outcome["bad_columns"]) == []


def test_implausible_fraction_warns():
    from astrophot import MasterDark
    from astrophot.calibration import find_bad_pixels

    rng = np.random.default_rng(1)
    data = rng.normal(100, 3, (200, 300)).astype(np.float32)
    data[::4, :] += 50  # a quarter of the rows deviate: not a plausible detector
    with pytest.warns(AstrophotUserWarning, match="rows BAD_ROW.*not a plausible detector"):
        find_bad_pixels(MasterDark(data, meta={"EXPTIME": 300.0}))
