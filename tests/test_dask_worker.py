# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Inside a ``dask.distributed`` worker the stages run in the task's own thread and
nothing forks (issue 10: one concurrency policy, the caller's): a real
LocalCluster with a worker process, the stages of a night run in one task.
"""

import pytest

distributed = pytest.importorskip("distributed")


def _stages_in_a_worker():
    """Run the stages inside the worker; return what started: astrophot threads, forks, the thread count."""
    import os
    import threading

    import astrophot as ap
    from astrophot._concurrency import in_dask_worker, resolve_threads
    from astrophot.calibration import make_master_bias
    from astrophot.datasets import make_bias_stack, make_dithered_frames, make_raw_frame

    started, forks = [], []
    real_start = threading.Thread.start

    def recording_start(thread):
        started.append(thread.name)
        return real_start(thread)

    threading.Thread.start = recording_start
    os.register_at_fork(before=lambda: forks.append(os.getpid()))
    try:
        biases, _ = make_bias_stack(3, shape=(200, 300), seed=1)
        bias = make_master_bias(biases)
        raw, _ = make_raw_frame(shape=(200, 300), fwhm=3.0, seed=2)
        frame = ap.calibrate_frame(raw, bias=bias, unit="adu", gain=1.0, read_noise=8.0)
        frame = ap.reject_cosmic_rays(ap.fix_bad_pixels(frame))
        background = ap.estimate_background(frame)
        stars = ap.find_stars(frame, background=background)
        ap.assess_quality(frame, stars=stars, background=background)
        frames, _ = make_dithered_frames(3, shape=(80, 100), seed=3)
        grid = ap.find_optimal_wcs(frames)
        ap.resample_frame(frames[0], grid)
        ap.stack_frames(frames, wcs=grid[0], shape=grid[1])
    finally:
        threading.Thread.start = real_start
    return {
        "in_worker": in_dask_worker(),
        "threads": resolve_threads(None),
        "astrophot_threads": [name for name in started if name.startswith("astrophot")],
        "forks": len(forks),
    }


def test_stages_use_one_thread_and_never_fork_in_a_dask_worker():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        seen = client.submit(_stages_in_a_worker, pure=False).result(timeout=600)
    assert seen["in_worker"] and seen["threads"] == 1
    assert seen["astrophot_threads"] == []  # no pool of its own: the cluster runs one task per core
    assert seen["forks"] == 0
