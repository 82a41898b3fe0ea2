# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The headline night benchmark: a simulated iTelescope night (zips + calibration
library) through `astrophot.pipeline.process_night` to the report.

Full size is 50 lights of 4008x2672 in three filters (target: under 10 minutes
on a 2-core machine). ``ASTROPHOT_BENCH_NIGHT="N NY NX"`` runs a smaller night
(say so when reporting). Reported: wall time with 1 and 2 local Dask workers
(speed-up), time per stage, the sum of per-stage floors measured in the same
run (reading the raw bytes, the calibration arithmetic, writing the product
bytes, summing each filter's frames: what no pipeline can avoid), the ratio to it, and peak memory (max RSS
of this process and its children).
"""

import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def _size():
    text = os.environ.get("ASTROPHOT_BENCH_NIGHT", "50 2672 4008")
    n, ny, nx = (int(v) for v in text.split())
    return n, (ny, nx)


def _floors(lights, products, stacks):
    """
    Seconds no pipeline can avoid, measured here: read every raw light, do
    (raw - bias - dark) / flat, write every product's bytes, and for each stack
    the mean of its frames already on one grid (read and added, no resampling).
    """
    from astropy.io import fits

    t0 = time.perf_counter()
    arrays = [fits.getdata(p).astype(np.float32) for p in lights]
    read = time.perf_counter() - t0
    t0 = time.perf_counter()
    for a in arrays:
        (a - 1000.0 - 10.0) / np.float32(1.01)
    arith = time.perf_counter() - t0
    del arrays
    size = sum(Path(p).stat().st_size for p in products)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        block = os.urandom(1 << 22)
        with open(Path(tmp) / "floor.bin", "wb") as handle:
            for _ in range(max(1, size // len(block))):
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        write = time.perf_counter() - t0
    from astrophot.io import read_frame

    t0 = time.perf_counter()
    for members in stacks:
        total = None
        for p in members:
            # read_frame: a solved frame's pixels are in the calibrated frame it refers to (APPIXREF)
            data = np.asarray(read_frame(p).data, dtype=np.float32)
            total = data if total is None else total + data
    stack = time.perf_counter() - t0
    return {"read raw": read, "calibrate arithmetic": arith, "write products": write, "stack sum": stack}


def _run(night, workers, out):
    from astrophot.pipeline import process_night

    t0 = time.perf_counter()
    result = process_night(
        night.download, output=out, library=night.library, overrides=[f"execution.workers={workers}"]
    )
    return time.perf_counter() - t0, result


def bench_night():
    from astrophot.datasets import simulate_itelescope_night

    n, shape = _size()
    per_filter = max(1, n // 3)
    root = Path(tempfile.mkdtemp(prefix="bench_night_"))
    try:
        t0 = time.perf_counter()
        night = simulate_itelescope_night(root / "sim", n_lights=per_filter, shape=shape, seed=50)
        simulate = time.perf_counter() - t0
        runs = {}
        for workers in (1, 2):
            shutil.rmtree(night.download, ignore_errors=True)
            night = simulate_itelescope_night(root / "sim")  # zips again, nothing unzipped
            runs[workers] = _run(night, workers, root / f"out{workers}")
            stages = ", ".join(f"{k} {v:.1f}" for k, v in runs[workers][1].timings.items())
            print(f"  {workers} worker(s): {runs[workers][0]:.1f} s; stages: {stages}", flush=True)
        seconds, result = runs[2]
        lights = [p for p in night.night.lights]
        products = [
            p
            for kind in ("calibrated", "solved", "stack", "continuum")
            for p in result.products.get(kind, [])
        ]
        by_filter = {}
        for path in result.products["solved"]:
            by_filter.setdefault(Path(path).name.split("-")[-5], []).append(path)
        floors = _floors(lights, products, list(by_filter.values()))
        peak = max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        stages = ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items())
        return {
            "name": f"night {len(lights)} lights {shape[1]}x{shape[0]} zips->report",
            "seconds": seconds,
            "floor_seconds": sum(floors.values()),
            "ratio": seconds / sum(floors.values()),
            "target": "under 600 s at 50 x 4008x2672",
            "notes": (
                f"1 worker {runs[1][0]:.1f} s, 2 workers {seconds:.1f} s (speed-up {runs[1][0] / seconds:.2f}); "
                f"stages (s, per-frame stages summed over frames): {stages}; floors: "
                + ", ".join(f"{k} {v:.2f}" for k, v in floors.items())
                + f"; peak RSS {peak / 1024:.0f} MB (largest single process); simulation {simulate:.1f} s; "
                + f"statuses {sorted({f['status'] for f in result.frames})}; "
                + "; ".join(f"{k}: {v['status']}" for k, v in result.stages.items())
            ),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    print(bench_night())
