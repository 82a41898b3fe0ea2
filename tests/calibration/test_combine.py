# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The band-by-band combiner against independent references (numpy, astropy, ccdproc)."""

import itertools
import threading
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.stats import mad_std

from astrophot import _concurrency
from astrophot.calibration import combine_frames
from astrophot.calibration._kernel import bitonic_merger, combine_sources, prune, sorting_network
from astrophot.calibration._sources import FileSource, make_sources
from astrophot.exceptions import CalibrationError, FrameMismatchError, FrameReadError
from astrophot.frames import CalibratedFrame, MasterBias, MasterDark
from astrophot.io import read_frame, write_frame


def _apply(values, pairs):
    rows = [v.copy() for v in values]
    for a, b in pairs:
        lo, hi = np.minimum(rows[a], rows[b]), np.maximum(rows[a], rows[b])
        rows[a], rows[b] = lo, hi
    return np.array(rows)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 16, 20, 31, 33])
def test_sorting_network_sorts(n):
    rng = np.random.default_rng(n)
    values = rng.integers(0, 6, size=(n, 4000))  # many ties
    np.testing.assert_array_equal(_apply(values, sorting_network(n)), np.sort(values, axis=0))


def test_sorting_network_all_zero_one_inputs():
    # the 0-1 principle: a network sorting every 0/1 input sorts everything
    n = 11
    inputs = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int8).T
    np.testing.assert_array_equal(_apply(inputs, sorting_network(n)), np.sort(inputs, axis=0))


@pytest.mark.parametrize("n", [2, 5, 12, 20])
def test_bitonic_merger_sorts_v_shapes_with_infinite_ends(n):
    rng = np.random.default_rng(n)
    cols = []
    for _ in range(3000):
        lo = int(rng.integers(0, n))
        hi = int(rng.integers(lo + 1, n + 1))
        mid = int(rng.integers(lo, hi))
        left = np.sort(rng.random(mid - lo + 1))[::-1]
        right = np.sort(rng.random(hi - mid - 1))
        col = np.full(n, np.inf)
        col[lo:hi] = np.concatenate([left, right])
        cols.append(col)
    values = np.array(cols).T
    np.testing.assert_array_equal(_apply(values, bitonic_merger(n)), np.sort(values, axis=0))


def test_pruned_network_keeps_the_middle_ranks():
    n = 20
    rng = np.random.default_rng(0)
    values = rng.random((n, 2000))
    pruned = prune(sorting_network(n), {9, 10})
    assert len(pruned) < len(sorting_network(n))
    out = _apply(values, pruned)
    np.testing.assert_array_equal(out[9:11], np.sort(values, axis=0)[9:11])


def _reference(stack, mask, method, n_sigma_low, n_sigma_high, iterations, n_low, n_high, weights=None):
    """Masked-array reference: min/max by rank, then iterated median/MAD clipping (kept rejections)."""
    data = stack.astype(np.float64)
    mask = mask.copy()
    if n_low or n_high:
        keyed = np.where(mask, np.inf, data)
        order = np.argsort(keyed, axis=0, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(len(stack))[:, None, None] * np.ones_like(order), 0)
        nvalid = (~mask).sum(0)
        mask |= (rank < n_low) | (rank >= nvalid - n_high)
    st = np.ma.masked_array(data, mask=mask)
    for _ in range(iterations):
        med = np.ma.median(st, axis=0)
        spread = mad_std(st, axis=0)
        new = st.mask.copy()
        if n_sigma_low is not None:
            new |= np.ma.filled(st.data < med - n_sigma_low * spread, False)
        if n_sigma_high is not None:
            new |= np.ma.filled(st.data > med + n_sigma_high * spread, False)
        if (new == st.mask).all():
            break
        st = np.ma.masked_array(data, mask=new)
    count = (~st.mask).sum(0)
    if method == "median":
        value = np.ma.median(st, axis=0).filled(np.nan)
        sigma = np.ma.std(st, axis=0, ddof=1).filled(np.nan) / np.sqrt(count) * np.sqrt(np.pi / 2)
    elif weights is None:
        value = st.mean(axis=0).filled(np.nan)
        sigma = np.ma.std(st, axis=0, ddof=1).filled(np.nan) / np.sqrt(count)
    else:
        w = np.ma.masked_array(np.broadcast_to(weights[:, None, None], st.shape), mask=st.mask)
        value = (np.ma.sum(w * st, axis=0) / w.sum(0)).filled(np.nan)
        var = np.ma.sum(w * (st - value) ** 2, axis=0) / w.sum(0) * count / (count - 1)
        neff = w.sum(0) ** 2 / (w**2).sum(0)
        sigma = np.sqrt(var / neff).filled(np.nan)
    sigma = np.where(count < 2, np.nan, sigma)
    return value, st.mask.sum(0), sigma


@pytest.mark.parametrize("seed", range(40))
def test_kernel_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 26))
    shape = (int(rng.integers(1, 30)), int(rng.integers(1, 40)))
    data = rng.normal(1000, 10, (n, *shape))
    outliers = rng.random(data.shape) < 0.05
    data[outliers] += rng.normal(0, 300, outliers.sum())
    weights = None
    method = ["median", "average"][seed % 2]
    if seed % 3 == 0:
        data = np.clip(data, 0, 65535).astype(np.uint16)
        mask = np.zeros(data.shape, dtype=bool)
    else:
        data = data.astype(np.float32)
        mask = rng.random(data.shape) < 0.05
        data[rng.random(data.shape) < 0.01] = np.nan
        mask |= ~np.isfinite(data)
        if method == "average" and seed % 5 == 1:
            weights = rng.uniform(0.5, 2.0, n)
    limits = [None if rng.random() < 0.15 else float(rng.uniform(1.5, 5)) for _ in range(2)]
    n_sigma_low, n_sigma_high = limits
    iterations = int(rng.integers(1, 5))
    n_low = int(rng.integers(0, 2)) if n > 3 else 0
    n_high = int(rng.integers(0, 2)) if n > 3 else 0
    frames = [CCDData(data[i], unit="adu", mask=mask[i] if mask.any() else None) for i in range(n)]
    result = combine_sources(
        make_sources(frames),
        method=method,
        sigma_clip=n_sigma_low is not None or n_sigma_high is not None,
        n_sigma_low=n_sigma_low,
        n_sigma_high=n_sigma_high,
        max_iterations=iterations,
        n_low=n_low,
        n_high=n_high,
        weights=weights,
        rows_per_band=int(rng.integers(1, 8)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, n_rejected, sigma = _reference(
            data, mask, method, n_sigma_low, n_sigma_high, iterations, n_low, n_high, weights
        )
    np.testing.assert_array_equal(result["n_rejected"], n_rejected)
    np.testing.assert_allclose(result["data"], value, rtol=1e-6, atol=2e-4, equal_nan=True)
    np.testing.assert_allclose(result["uncertainty"], sigma, rtol=2e-4, atol=1e-4, equal_nan=True)
    np.testing.assert_array_equal(result["mask"], n_rejected == n)


def _write_raw(path, data, **cards):
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    fits.PrimaryHDU(data, header=header).writeto(path)
    return path


@pytest.mark.parametrize(
    ("dtype", "cards"),
    [
        (np.uint16, {}),
        (np.uint16, {"PEDESTAL": -100}),
        (np.int16, {}),
        (np.float32, {}),
        (np.uint8, {}),
        (np.int32, {}),
        (np.float64, {}),
    ],
)
def test_file_source_values_and_checksum_match_read_frame(tmp_path, dtype, cards):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 250, (37, 23)).astype(dtype)
    path = _write_raw(tmp_path / "raw.fits", data, IMAGETYP="Bias Frame", **cards)
    (source,) = make_sources([path])
    assert isinstance(source, FileSource)
    frame = read_frame(path)
    source.open()
    try:
        out = np.empty(37 * 23, dtype=source.dtype)
        for r0 in range(0, 37, 5):
            r1 = min(37, r0 + 5)
            part = out[r0 * 23 : r1 * 23]
            source.read_rows(r0, r1, part)
            source.update_checksum(part)
    finally:
        source.close()
    np.testing.assert_array_equal(out.reshape(37, 23), frame.data)
    assert source.reference("frames").sha256 == frame.checksum()


def test_compressed_files_are_read_whole(tmp_path):
    data = np.arange(200, dtype=np.float32).reshape(10, 20)
    path = tmp_path / "c.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, compression_type="GZIP_1")]).writeto(path)
    (source,) = make_sources([path])
    assert not isinstance(source, FileSource)
    assert source.resident_bytes == data.nbytes
    out = combine_frames([path, path], method="median")
    np.testing.assert_array_equal(out.data, data)


def test_files_and_frames_combine_the_same(tmp_path):
    rng = np.random.default_rng(7)
    stack = (1000 + rng.normal(0, 5, (7, 40, 30))).astype(np.uint16)
    stack[3, 5, 5] = 60000
    paths = [_write_raw(tmp_path / f"b{i}.fit", stack[i], IMAGETYP="Bias Frame") for i in range(7)]
    from_files = combine_frames(paths, method="median", n_sigma_low=3, n_sigma_high=3)
    frames = [read_frame(p) for p in paths]
    from_frames = combine_frames(frames, method="median", n_sigma_low=3, n_sigma_high=3)
    np.testing.assert_array_equal(from_files.data, from_frames.data)
    np.testing.assert_array_equal(from_files.n_rejected, from_frames.n_rejected)
    assert from_files.n_rejected[5, 5] >= 1
    refs = from_files.provenance.steps[-1].inputs
    assert [r.sha256 for r in refs] == [read_frame(p).checksum() for p in paths]
    assert [r.path for r in refs] == [str(p) for p in paths]


def test_matches_ccdproc_combine_one_iteration(tmp_path):
    ccdproc = pytest.importorskip("ccdproc")
    rng = np.random.default_rng(11)
    stack = (500 + rng.normal(0, 8, (9, 30, 25))).astype(np.uint16)
    stack[rng.random(stack.shape) < 0.02] = 4000
    frames = [CCDData(s, unit="adu") for s in stack]
    for method in ("median", "average"):
        ours = combine_frames(frames, method=method, n_sigma_low=3, n_sigma_high=3, clip_spread="pixel")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = ccdproc.combine(
                [CCDData(s.astype(np.float64), unit="adu") for s in stack],
                method=method,
                sigma_clip=True,
                sigma_clip_low_thresh=3,
                sigma_clip_high_thresh=3,
                sigma_clip_func=np.ma.median,
                sigma_clip_dev_func=mad_std,
            )
        np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-6)
        pooled = combine_frames(frames, method=method, n_sigma_low=3, n_sigma_high=3)
        assert pooled.n_rejected.sum() < ours.n_rejected.sum()


def test_pooled_spread_rejects_fewer_good_values():
    # nine Gaussian frames: clipping at 5 "sigma" of each pixel's own MAD rejects good values
    rng = np.random.default_rng(12)
    frames = [CCDData(rng.normal(100, 5, (200, 100)).astype(np.float32), unit="adu") for _ in range(9)]
    own = combine_frames(frames, clip_spread="pixel")
    pooled = combine_frames(frames)
    own_rate = own.n_rejected.mean() / 9
    pooled_rate = pooled.n_rejected.mean() / 9
    assert own_rate > 5e-4  # good values rejected
    assert pooled_rate < 1e-4
    assert own_rate > 10 * pooled_rate


def test_memory_limit_sets_the_band_and_is_enforced(tmp_path):
    rng = np.random.default_rng(2)
    frames = [CCDData(rng.normal(0, 1, (64, 50)).astype(np.float32), unit="adu") for _ in range(5)]
    roomy = combine_sources(make_sources(frames), memory_limit=2**30)
    tight_limit = 64 * 50 * 11 + 3 * 50 * (5 * 17 + 64 + 40)
    tight = combine_sources(make_sources(frames), memory_limit=tight_limit)
    assert tight["rows_per_band"] < roomy["rows_per_band"]
    np.testing.assert_array_equal(tight["data"], roomy["data"])
    with pytest.raises(CalibrationError, match="memory_limit"):
        combine_sources(make_sources(frames), memory_limit=1000)


def test_result_type_unit_and_provenance():
    frames = [MasterBias(np.full((3, 4), v, dtype=np.float32)) for v in (1.0, 2.0, 3.0)]
    out = combine_frames(frames)
    assert isinstance(out, MasterBias)
    assert out.data.dtype == np.float32
    step = out.provenance.steps[-1]
    assert step.function == "astrophot.combine_frames"
    assert len(step.inputs) == 3 and {r.role for r in step.inputs} == {"frames"}
    raw = [CCDData(np.ones((3, 4)), unit="adu")]
    assert isinstance(combine_frames(raw), CalibratedFrame)
    assert isinstance(combine_frames(raw, frame_type="MasterDark"), MasterDark)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(3)
    frames = [CCDData(rng.normal(0, 1, (8, 9)).astype(np.float32), unit="adu") for _ in range(4)]
    before = [f.data.copy() for f in frames]
    combine_frames(frames, scale=[1, 2, 3, 4])
    for frame, data in zip(frames, before):
        np.testing.assert_array_equal(frame.data, data)


def test_scale_and_weights():
    base = np.linspace(1, 2, 12, dtype=np.float32).reshape(3, 4)
    frames = [CCDData(base * k, unit="adu") for k in (1.0, 2.0, 4.0)]
    out = combine_frames(frames, scale=[1.0, 0.5, 0.25], sigma_clip=False)
    np.testing.assert_allclose(out.data, base, rtol=1e-6)
    values = [CCDData(np.full((2, 2), v, dtype=np.float32), unit="adu") for v in (1.0, 4.0)]
    weighted = combine_frames(values, weights=[3, 1], sigma_clip=False)
    np.testing.assert_allclose(weighted.data, 1.75)


def test_bad_arguments():
    frames = [CCDData(np.ones((2, 2)), unit="adu") for _ in range(3)]
    with pytest.raises(CalibrationError, match="no input frames"):
        combine_frames([])
    with pytest.raises(ValueError, match="method"):
        combine_frames(frames, method="mode")
    with pytest.raises(ValueError, match="n_low"):
        combine_frames(frames, n_low=2, n_high=1)
    with pytest.raises(ValueError, match="weights"):
        combine_frames(frames, method="median", weights=[1, 1, 1])
    with pytest.raises(FrameMismatchError, match="shape"):
        combine_frames([*frames, CCDData(np.ones((3, 2)), unit="adu")])
    with pytest.raises(FrameMismatchError, match="unit"):
        combine_frames([*frames, CCDData(np.ones((2, 2)), unit="electron")])
    with pytest.raises(TypeError, match="expected a frame"):
        combine_frames([np.ones((2, 2))])


def test_unreadable_files_are_named(tmp_path):
    bad = tmp_path / "junk.fits"
    bad.write_bytes(b"not a fits file at all" * 200)
    with pytest.raises(FrameReadError, match="junk.fits"):
        combine_frames([bad])
    with pytest.raises(FrameReadError, match="missing.fits"):
        combine_frames([tmp_path / "missing.fits"])
    good = _write_raw(tmp_path / "t.fits", np.zeros((50, 40), dtype=np.uint16))
    truncated = tmp_path / "trunc.fits"
    truncated.write_bytes(good.read_bytes()[:4000])
    with pytest.raises(FrameReadError, match="trunc.fits"):
        combine_frames([truncated])


def test_written_master_reads_back(tmp_path):
    frames = [MasterBias(np.full((3, 4), v, dtype=np.float32)) for v in (1.0, 2.0, 30.0)]
    out = combine_frames(frames, method="median")
    path = write_frame(out, tmp_path / "m.fits")
    back = read_frame(path)
    np.testing.assert_array_equal(back.data, out.data)
    np.testing.assert_array_equal(back.uncertainty.array, out.uncertainty.array)


def _combine_threads_started(monkeypatch):
    """Names of the threads the combiner starts (recorded as they start)."""
    started = []
    real_start = threading.Thread.start

    def start(thread):
        started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    return started


def test_threads_follow_the_concurrency_policy(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    stack = (1000 + rng.normal(0, 5, (5, 60, 40))).astype(np.uint16)
    paths = [_write_raw(tmp_path / f"b{i}.fit", stack[i], IMAGETYP="Bias Frame") for i in range(5)]
    monkeypatch.delenv("ASTROPHOT_NUM_THREADS", raising=False)
    threaded = combine_sources(make_sources(paths), rows_per_band=7, workers=2)
    threaded_sums = [read_frame(p).checksum() for p in paths]
    started = _combine_threads_started(monkeypatch)
    # inside a Dask worker the automatic choice is one thread: no pool, nothing started
    monkeypatch.setattr(_concurrency, "in_dask_worker", lambda: True)
    sources = make_sources(paths)
    serial = combine_sources(sources, rows_per_band=7)
    assert serial["workers"] == 1
    assert started == []
    for key in ("data", "uncertainty", "n_rejected", "mask"):
        np.testing.assert_array_equal(serial[key], threaded[key])
    assert [s.reference("frames").sha256 for s in sources] == threaded_sums
    # the caller decides: an explicit count is used, in a Dask worker too
    assert combine_sources(make_sources(paths), workers=3)["workers"] == 3
    assert any(name.startswith("astrophot-combine") for name in started)
    monkeypatch.setattr(_concurrency, "in_dask_worker", lambda: False)
    monkeypatch.setenv("ASTROPHOT_NUM_THREADS", "1")
    assert combine_sources(make_sources(paths))["workers"] == 1
    # the automatic count stays at most two (the kernel is bound by memory bandwidth)
    monkeypatch.setenv("ASTROPHOT_NUM_THREADS", "8")
    assert combine_sources(make_sources(paths))["workers"] == 2
