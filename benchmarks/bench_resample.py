# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Resampling one 4008x2672 TAN+SIP frame onto a rotated grid of the same size (issue 12).

In-process: `resample_frame` (lanczos3, bilinear; one thread and two) against
`reproject.reproject_interp(order="bilinear")` (the peer) and against the floor of one
`scipy.ndimage.affine_transform(order=1)` gather of the same size. Whole process:
``astrophot resample`` against SWarp (Debian package ``swarp``; given the TAN part of the
WCS, since SWarp cannot read SIP) with the same kernel, wall time and peak RSS from
``/usr/bin/time -v``. In-process peak memory from `tracemalloc` (numpy reports its buffers),
against input + output (data, uncertainty, flags in; data, uncertainty, flags, weight out).
Each figure is the best of ``REPEAT`` runs (the machine is shared).

Run: ``python benchmarks/bench_resample.py`` (or through ``benchmarks/run.py resample``).
"""

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

SHAPE = (2672, 4008)
ROTATION = 30.0
REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))


@functools.cache
def _setup():
    from astropy.wcs import WCS

    from astrophot.datasets import make_solved_frame, sip_wcs

    frame, _ = make_solved_frame(shape=SHAPE, scale=1.2, n_stars=400, distortion=3.0, sky=300.0, seed=12)
    center = frame.wcs.pixel_to_world((SHAPE[1] - 1) / 2, (SHAPE[0] - 1) / 2)
    target = sip_wcs(center, SHAPE, 1.2, ROTATION, distortion=0.0, offset=(3.3, -2.7))
    target = WCS(target.to_header(relax=True))
    target.pixel_shape = (SHAPE[1], SHAPE[0])
    return frame, target


def _best(function, repeat=REPEAT):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - t0)
    return best


def _measure(function, repeat=REPEAT):
    """Best wall time of ``repeat`` runs and the peak traced memory (bytes) of the first."""
    best, peak = np.inf, 0
    for i in range(repeat):
        if i == 0:
            tracemalloc.start()
        t0 = time.perf_counter()
        try:
            function()
            best = min(best, time.perf_counter() - t0)
            if i == 0:
                peak = tracemalloc.get_traced_memory()[1]
        finally:
            if i == 0:
                tracemalloc.stop()
    return best, peak


def _floor():
    """One bilinear affine gather of the same size (the rotation only, no masks, no variance)."""
    from scipy import ndimage

    frame, _ = _setup()
    th = np.radians(ROTATION)
    matrix = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    data = np.asarray(frame.data)
    return _best(
        lambda: ndimage.affine_transform(data, matrix, offset=(50.0, 30.0), order=1, output=np.float32)
    )


def _sizes(frame):
    n = frame.data.size
    return n * (4 + 4 + 4), n * (4 + 4 + 4 + 4)


def bench_resample_in_process():
    """resample_frame against reproject_interp and the affine floor (in-process, best of REPEAT)."""
    from reproject import reproject_interp

    from astrophot import resample_frame

    frame, target = _setup()
    floor = _floor()
    data64 = np.asarray(frame.data, dtype=np.float64)
    peer, peer_peak = _measure(
        lambda: reproject_interp((data64, frame.wcs), target, shape_out=SHAPE, order="bilinear"), repeat=1
    )
    inputs, outputs = _sizes(frame)
    results = [
        {
            "name": "affine_transform(order=1) floor",
            "seconds": floor,
            "ratio": 1.0,
            "notes": "one gather, 10.7 Mpx",
        },
        {
            "name": "reproject_interp bilinear (peer)",
            "seconds": peer,
            "ratio": peer / floor,
            "peak_mib": peer_peak / 2**20,
            "notes": "data only, float64, parallel=False",
        },
    ]
    for kernel in ("bilinear", "lanczos3"):
        for threads in (1, 2):
            seconds, peak = _measure(
                lambda k=kernel, t=threads: resample_frame(frame, (target, SHAPE), kernel=k, parallel=t)
            )
            results.append(
                {
                    "name": f"resample_frame {kernel} ({threads} thread{'s' if threads > 1 else ''})",
                    "seconds": seconds,
                    "ratio": seconds / floor,
                    "vs_reproject": peer / seconds,
                    "peak_mib": peak / 2**20,
                    "peak_over_in_out": peak / (inputs + outputs),
                    "target": "bilinear <= 2x floor; >= 5x faster than reproject; peak <= 2x (in + out)",
                    "notes": "data + variance + weight + flags",
                }
            )
    seconds, peak = _measure(
        lambda: resample_frame(frame, (target, SHAPE), kernel="lanczos3", conserve="flux", parallel=2),
        repeat=1,
    )
    results.append(
        {
            "name": "resample_frame lanczos3 conserve=flux (oversampled 2x2, 2 threads, one run)",
            "seconds": seconds,
            "ratio": seconds / floor,
            "vs_reproject": peer / seconds,
            "peak_mib": peak / 2**20,
            "peak_over_in_out": peak / (inputs + outputs),
            "notes": "antialias on: 4 samples per output pixel at this 1:1 scale",
        }
    )
    return results


def _timed(command, cwd):
    """Wall seconds and peak RSS (MiB) of a command, through /usr/bin/time -v."""
    t0 = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], cwd=cwd, capture_output=True, text=True, env=os.environ
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return seconds, (int(rss.group(1)) / 1024 if rss else float("nan"))


def _tan_only(wcs):
    header = wcs.to_header(relax=True)
    for key in list(header):
        if re.match(r"^(A|B|AP|BP)_(\d+_\d+|ORDER)$", key):
            del header[key]
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    return header


def bench_resample_whole_process():
    """``astrophot resample`` against SWarp, same kernel, whole process (best of REPEAT)."""
    from astropy.io import fits

    from astrophot import write_frame

    swarp = shutil.which("swarp") or shutil.which("SWarp")
    frame, target = _setup()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_frame(frame, tmp / "in.fits")
        header = target.to_header(relax=True)
        header["NAXIS"], header["NAXIS1"], header["NAXIS2"] = 2, SHAPE[1], SHAPE[0]
        header.totextfile(tmp / "target.hdr")
        # SWarp: the TAN part of the WCS in a plain FITS file, the target as out.head
        tan = _tan_only(frame.wcs)
        fits.PrimaryHDU(np.asarray(frame.data, np.float32), header=tan).writeto(tmp / "swarp_in.fits")
        for kernel, swarp_kernel in (("bilinear", "BILINEAR"), ("lanczos3", "LANCZOS3")):
            ours = min(
                _timed(
                    [
                        sys.executable,
                        "-m",
                        "astrophot.cli.main",
                        "resample",
                        "in.fits",
                        "--wcs",
                        "target.hdr",
                        "--kernel",
                        kernel,
                        "-o",
                        f"out_{kernel}_{i}",
                    ],
                    tmp,
                )
                for i in range(REPEAT)
            )
            row = {
                "name": f"astrophot resample {kernel} (whole process)",
                "seconds": ours[0],
                "peak_mib": ours[1],
            }
            if swarp:
                fits.Header(header).totextfile(tmp / "swarp_out.head", overwrite=True)
                peer = min(
                    _timed(
                        [
                            swarp,
                            "swarp_in.fits",
                            "-IMAGEOUT_NAME",
                            "swarp_out.fits",
                            "-WEIGHTOUT_NAME",
                            "swarp_out.weight.fits",
                            "-RESAMPLING_TYPE",
                            swarp_kernel,
                            "-COMBINE",
                            "N",
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
                        ],
                        tmp,
                    )
                    for _ in range(REPEAT)
                )
                row.update(
                    peer_seconds=peer[0],
                    peer_peak_mib=peer[1],
                    ratio=ours[0] / peer[0],
                    target="faster than SWarp",
                )
            else:
                row.update(ratio=float("nan"), notes="swarp not installed")
            results.append(row)
    return results


def main():
    for bench in (bench_resample_in_process, bench_resample_whole_process):
        for row in bench():
            print(
                "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                flush=True,
            )


if __name__ == "__main__":
    main()
