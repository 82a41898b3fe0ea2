# Licensed under a 3-clause BSD style license - see LICENSE.rst
import threading

import pytest

from astrophot._concurrency import MAX_AUTO_THREADS, in_dask_worker, resolve_threads, thread_map


def test_resolve_threads_explicit():
    assert resolve_threads(False) == 1
    assert resolve_threads(1) == 1
    assert resolve_threads(5) == 5
    assert resolve_threads(True) >= 1
    for bad in (0, -2, 1.5, "2"):
        with pytest.raises(ValueError, match="parallel="):
            resolve_threads(bad)


def test_resolve_threads_auto(monkeypatch):
    monkeypatch.delenv("ASTROPHOT_NUM_THREADS", raising=False)
    assert 1 <= resolve_threads(None) <= MAX_AUTO_THREADS
    monkeypatch.setenv("ASTROPHOT_NUM_THREADS", "3")
    assert resolve_threads(None) == 3
    monkeypatch.setenv("ASTROPHOT_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="ASTROPHOT_NUM_THREADS"):
        resolve_threads(None)


def test_not_a_dask_worker_here():
    assert not in_dask_worker()


def test_thread_map_order_threads_and_errors():
    seen = set()

    def work(i):
        seen.add(threading.current_thread().name)
        return i * i

    assert thread_map(work, range(20), n_threads=3) == [i * i for i in range(20)]
    seen.clear()
    assert thread_map(work, range(5), n_threads=1) == [0, 1, 4, 9, 16]
    assert seen == {threading.current_thread().name}

    def fail(i):
        if i == 3:
            raise RuntimeError("frame 3 failed")
        return i

    with pytest.raises(RuntimeError, match="frame 3"):
        thread_map(fail, range(6), n_threads=2)


def test_per_thread_gives_each_thread_its_own_copy():
    from astrophot._concurrency import PerThread

    shared = {"n": 0}
    private = PerThread(shared, dict, n_threads=3)
    barrier = threading.Barrier(3)

    def work(_):
        barrier.wait()  # three threads at once: three copies, none shared
        return id(private.get())

    ids = thread_map(work, range(3), n_threads=3)
    assert len(set(ids)) == 3 and id(shared) not in ids
    with pytest.raises(RuntimeError, match="more threads than copies"):
        thread_map(lambda _: (barrier.wait(), private.get()), range(3), n_threads=3)
    assert PerThread(shared, dict, n_threads=1).get() is shared  # one thread: no copy
