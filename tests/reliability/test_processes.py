# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Issue 11, findings 2-4 with real processes: kill -9 at random moments while write_frame runs, and
N processes writing one path with overwrite=False.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from astrophot import read_frame
from astrophot.io import remove_stale_temporaries

WRITER = r"""
import sys
import numpy as np
from astrophot import CalibratedFrame, write_frame
from astrophot.provenance import start_step

path, seed, overwrite, go = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
shape = (256, 384)


def frame(value):
    data = np.full(shape, value, dtype=np.float32)
    return start_step("t", parameters={"value": value}).finish(CalibratedFrame(data))


print("ready", flush=True)
if go != "-":
    import os, time
    while not os.path.exists(go):
        time.sleep(0.001)
    try:
        write_frame(frame(float(seed)), path, overwrite=overwrite)
        print("ok", flush=True)
    except Exception as exc:
        print("exists" if "already exists" in str(exc) else f"error {exc}", flush=True)
    sys.exit(0)
i = 0
while True:
    write_frame(frame(float(seed * 100000 + i)), path, overwrite=True)
    if i == 0:
        print("wrote", flush=True)
    i += 1
"""


def _start(path, seed, *, overwrite=True, go="-"):
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(seed), "1" if overwrite else "0", str(go)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _consistent(path):
    frame = read_frame(path)
    step = frame.provenance.last
    assert step.output.sha256 == frame.checksum(), "the FITS file and the sidecar belong to different writes"
    assert np.all(frame.data == step.parameters["value"])
    return step.parameters["value"]


def _temporaries(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".aptmp", ".aplock")))


def test_kill_9_at_random_moments_never_leaves_a_mixed_pair(tmp_path):
    """20 writers killed with SIGKILL at random moments: the pair is always whole, no temporary survives."""
    rng = random.Random(11)
    path = tmp_path / "frame.fits"
    left_behind = []
    for attempt in range(20):
        proc = _start(path, attempt + 1)
        assert proc.stdout.readline().strip() == "ready"
        if attempt:  # the new writer's first write removed the temporaries of the one killed before
            assert proc.stdout.readline().strip() == "wrote"
            stale = [name for name in left_behind if (tmp_path / name).exists()]
            assert stale == [], stale
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        if path.exists():
            _consistent(path)
        left_behind = _temporaries(tmp_path)
    remove_stale_temporaries(tmp_path)
    assert _temporaries(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.asdf", "frame.fits"]
    _consistent(path)


@pytest.mark.parametrize("n", [4])
def test_processes_writing_one_path_exactly_one_wins(tmp_path, n):
    """Finding 3: 20/20 pairs of processes both reported success before."""
    path = tmp_path / "race.fits"
    go = tmp_path / "go"
    procs = [_start(path, i, overwrite=False, go=go) for i in range(n)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    go.write_text("")
    results = [proc.communicate(timeout=300)[0].strip() for proc in procs]
    assert sorted(results) == ["exists"] * (n - 1) + ["ok"], results
    assert _consistent(path) == float(results.index("ok"))
    assert _temporaries(tmp_path) == []


def _sha256(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def batch(tmp_path):
    """Eight small raw lights on disk and a master bias, as a user's folder."""
    from astrophot import write_frame
    from astrophot.calibration import make_master_bias
    from astrophot.datasets import make_bias_stack, make_raw_frame

    shape = (96, 128)
    raws = []
    for i in range(8):
        raw, _ = make_raw_frame(shape=shape, seed=40 + i)
        path = tmp_path / f"light-{i}.fits"
        raw.to_hdu().writeto(path)
        raws.append(path)
    biases, _ = make_bias_stack(3, shape=shape, seed=40)
    bias = write_frame(make_master_bias(biases), tmp_path / "bias.fits")
    return raws, bias


def test_kill_9_during_a_calibrate_batch_leaves_whole_pairs_and_the_rerun_finishes(batch, tmp_path):
    """20 'astrophot calibrate' batches killed with SIGKILL at random moments; then one run to the end."""
    raws, bias = batch
    before = {p: _sha256(p) for p in [*raws, bias]}

    def command(out):
        return [sys.executable, "-m", "astrophot.cli.main", "calibrate", *map(str, raws), "--bias", str(bias),
                "--gain", "1.5", "--read-noise", "10", "-o", str(out)]  # fmt: skip

    # an uninterrupted run: the reference products, and when this machine writes them (start-up dominates)
    reference_dir = tmp_path / "reference"
    start = time.perf_counter()
    proc = subprocess.Popen(
        command(reference_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ)
    )
    first = None
    while proc.poll() is None:
        if first is None and reference_dir.exists() and any(reference_dir.glob("*.fits")):
            first = time.perf_counter() - start
        time.sleep(0.01)
    duration = time.perf_counter() - start
    assert proc.returncode == 0
    first = duration if first is None else first
    reference = {p.name: read_frame(p).checksum() for p in reference_dir.glob("*.fits")}
    assert len(reference) == len(raws)
    out = tmp_path / "cal"
    rng = random.Random(7)
    interrupted = 0
    for _ in range(20):
        proc = subprocess.Popen(
            command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ)
        )
        time.sleep(rng.uniform(0.8 * first, duration))  # while the batch writes its products
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        products = sorted(out.glob("*.fits")) if out.exists() else []
        interrupted += 0 < len(products) < len(raws)
        for product in products:
            frame = read_frame(product)  # never a mixed or partial pair under a final name
            assert frame.provenance.last.output.sha256 == frame.checksum() == reference[product.name]
        if len(products) == len(raws) and all(p.with_suffix(".asdf").exists() for p in products):
            shutil.rmtree(out)  # the batch finished before the kill: start the next try afresh
    assert interrupted >= 3  # the kills did land in the middle of batches
    # complete pairs (a FITS whose sidecar was still pending at a kill is rightly redone)
    done = {p: p.stat().st_mtime_ns for p in out.glob("*.fits") if p.with_suffix(".asdf").exists()}
    final = subprocess.run(command(out), capture_output=True, text=True, env=dict(os.environ))
    assert final.returncode == 0, final.stderr
    products = sorted(out.glob("*.fits"))
    assert {p.name: read_frame(p).checksum() for p in products} == reference
    # what was finished before a kill is not redone; no temporary survives the rerun
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())
    assert _temporaries(out) == []
    assert {p: _sha256(p) for p in [*raws, bias]} == before  # raw files and masters unchanged
