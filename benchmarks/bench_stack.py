# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Stacking dithered frames (issue 13): ``astrophot stack`` (sigma clipping, lanczos3, whole process)
against the floor of reading the inputs and writing the outputs, and against SWarp
(``COMBINE_TYPE CLIPPED``, ``LANCZOS3``, whole process) on the same pixels.

The frames: one noiseless field (stars and sky, `astrophot.datasets.make_dithered_frames`)
rendered once, cut at ``N_FRAMES`` integer dithers (up to ``DITHER`` pixels), each with fresh
Gaussian noise of the right variance, cosmic rays and (frame 0) a satellite trail, written as
solved frames (data + ``UNCERT``) for astrophot and as plain single-HDU FITS for SWarp (its
weight maps from the same uncertainty). The floor is `read_frame` of every input plus
`write_frame` of the stack (the bytes the command has to move). Peak RSS from ``/usr/bin/time -v``.
Each figure is the best of ``REPEAT`` runs (the machine is shared).

Full size (the issue's figure): ``BENCH_SHAPE=2672,4008 BENCH_FRAMES=20`` (the default); a quick
look: ``BENCH_SHAPE=668,1002``.

Run: ``python benchmarks/bench_stack.py`` (or ``benchmarks/run.py stack``).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = tuple(int(n) for n in os.environ.get("BENCH_SHAPE", "2672,4008").split(","))
N_FRAMES = int(os.environ.get("BENCH_FRAMES", "20"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "1"))
DITHER = 24


def _frames(directory):
    """Write the dithered frames; return the astrophot and the SWarp file names."""
    import astropy.units as u
    from astropy.io import fits
    from astropy.nddata import StdDevUncertainty

    from astrophot import SolvedFrame, write_frame
    from astrophot.datasets import make_dithered_frames

    ny, nx = SHAPE
    big, truth = make_dithered_frames(
        1, shape=(ny + DITHER, nx + DITHER), dither=0.0, rotation=0.0, cosmic_rays=0.0, satellite=None, seed=3
    )
    expected, wcs = truth.expected[0], big[0].wcs
    del big
    rng = np.random.default_rng(5)
    ours, theirs = [], []
    for i in range(N_FRAMES):
        dx, dy = rng.integers(0, DITHER, 2)
        clean = expected[dy : dy + ny, dx : dx + nx]
        sigma = np.sqrt(clean + truth.read_noise**2).astype(np.float32)
        data = (clean + sigma * rng.standard_normal(clean.shape, dtype=np.float32)).astype(np.float32)
        hits = rng.integers(0, data.size, 60 * (data.size // 10**6 + 1))
        data.flat[hits] += rng.uniform(200, 5000, hits.size).astype(np.float32)
        if i == 0:
            rows = np.clip((np.arange(nx) * 0.3 + ny / 3).astype(int), 0, ny - 1)
            data[rows, np.arange(nx)] += 50 * float(np.median(sigma))
        w = wcs.deepcopy()
        w.wcs.crpix = [w.wcs.crpix[0] - dx, w.wcs.crpix[1] - dy]
        header = w.to_header(relax=True)
        header["EXPTIME"], header["FILTER"], header["OBJECT"] = 60.0, "Luminance", "M42"
        frame = SolvedFrame(data, unit=u.electron, uncertainty=StdDevUncertainty(sigma), wcs=w, meta=header)
        write_frame(frame, directory / f"f{i:02d}.fits")
        fits.PrimaryHDU(data, header=header).writeto(directory / f"s{i:02d}.fits")
        fits.PrimaryHDU((1.0 / sigma**2).astype(np.float32), header=header).writeto(
            directory / f"s{i:02d}.weight.fits"
        )
        ours.append(f"f{i:02d}.fits")
        theirs.append(f"s{i:02d}.fits")
    return ours, theirs


def _timed(command, cwd):
    """Wall seconds, peak RSS (MiB) and CPU seconds (user + system) of a command, through /usr/bin/time -v."""
    t0 = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], cwd=cwd, capture_output=True, text=True, env=os.environ
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    cpu = sum(float(v) for v in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", done.stderr))
    return seconds, (int(rss.group(1)) / 1024 if rss else float("nan")), cpu


def _floor(directory, ours, stack_path):
    """Reading every input and writing the stack (data and its six planes): best wall and CPU seconds."""
    from astrophot import read_frame, write_frame

    stack = read_frame(stack_path)
    best, best_cpu = np.inf, np.inf
    for i in range(REPEAT):
        t0, c0 = time.perf_counter(), time.process_time()
        for name in ours:
            frame = read_frame(directory / name)
            np.asarray(frame.data).sum()  # touch the pixels
            del frame
        write_frame(stack, directory / f"floor_{i}.fits")
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu


def _swarp(directory, theirs, swarp):
    command = [
        swarp,
        *theirs,
        "-IMAGEOUT_NAME",
        "swarp.fits",
        "-WEIGHTOUT_NAME",
        "swarp.weight.fits",
        "-COMBINE_TYPE",
        "CLIPPED",
        "-CLIP_SIGMA",
        "3.0",
        "-RESAMPLING_TYPE",
        "LANCZOS3",
        "-WEIGHT_TYPE",
        "MAP_WEIGHT",
        "-SUBTRACT_BACK",
        "N",
        "-RESAMPLE_DIR",
        ".",
        "-VERBOSE_TYPE",
        "QUIET",
        "-WRITE_XML",
        "N",
        "-NTHREADS",
        "0",
    ]
    return min(_timed(command, directory) for _ in range(REPEAT))


def bench_stack_whole_process():
    """``astrophot stack --rejection sigma`` vs the I/O floor and SwARP CLIPPED (whole processes)."""
    swarp = shutil.which("swarp") or shutil.which("SWarp")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        tmp = Path(tmp)
        ours, theirs = _frames(tmp)
        command = [sys.executable, "-m", "astrophot.cli.main", "stack", *ours, "--rejection", "sigma"]
        runs = [_timed([*command, "-o", f"stack_{i}.fits"], tmp) for i in range(REPEAT)]
        seconds, peak, cpu = min(runs)
        floor, floor_cpu = _floor(tmp, ours, tmp / "stack_0.fits")
        output_mib = SHAPE[0] * SHAPE[1] * 4 / 2**20
        row = {
            "name": f"astrophot stack sigma, {N_FRAMES} x {SHAPE[1]}x{SHAPE[0]} (whole process)",
            "seconds": seconds,
            "floor_seconds": floor,
            "ratio": seconds / floor,
            "cpu_seconds": cpu,
            "floor_cpu_seconds": floor_cpu,
            "cpu_ratio": cpu / floor_cpu,
            "peak_mib": peak,
            "peak_over_float32_output": peak / output_mib,
            "target": "<= 2.5x the read+write floor; faster than SWarp CLIPPED",
        }
        if swarp:
            peer, peer_peak, peer_cpu = _swarp(tmp, theirs, swarp)
            row.update(
                peer_seconds=peer,
                peer_peak_mib=peer_peak,
                peer_cpu_seconds=peer_cpu,
                vs_swarp=seconds / peer,
                cpu_vs_swarp=cpu / peer_cpu,
            )
        else:
            row.update(notes="swarp not installed (apt-get install swarp)")
        return [row]


def main():
    for row in bench_stack_whole_process():
        print(
            "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
            flush=True,
        )


if __name__ == "__main__":
    main()
