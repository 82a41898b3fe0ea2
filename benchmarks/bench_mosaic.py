# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A 4-frame 2x2 mosaic of 4008x2672 frames (issue 13, mosaic half).

In-process: `make_mosaic` (bilinear, plane background matching) against
`reproject.reproject_and_coadd` (``reproject_interp`` bilinear, ``match_background=True``,
``combine_function="mean"``) on the same output grid (`find_optimal_wcs`), wall time and
peak traced memory (`tracemalloc`: numpy reports its buffers) above what the loaded frames
hold, against the float32 output (one plane of the mosaic's shape).
Whole process: ``astrophot mosaic`` (read, match, combine, write) against SWarp
(Debian package ``swarp``, ``RESAMPLING_TYPE BILINEAR``, ``COMBINE_TYPE WEIGHTED``, its own
background subtraction on, the same output grid as ``coadd.head``), wall time and peak RSS
from ``/usr/bin/time -v``.

Targets: >= 5x faster than reproject_and_coadd; faster than SWarp's whole process;
peak memory <= 3x the float32 output. Each figure is the best of ``BENCH_REPEAT`` runs
(default 1: the peer takes minutes; the machine is shared, say so with the figures).

Run: ``python benchmarks/bench_mosaic.py`` (or through ``benchmarks/run.py mosaic``).
"""

import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_resample import _measure, _timed  # the same in-process and whole-process timers

SHAPE = (2672, 4008)
REPEAT = int(os.environ.get("BENCH_REPEAT", "1"))
KERNEL = "bilinear"


@functools.cache
def _setup():
    from astrophot import find_optimal_wcs
    from astrophot.datasets import make_mosaic_frames

    # the simulator's default gradients are for 160-pixel frames: scaled down to stay planes (not clipped at 0)
    slopes = np.array(((0.0, 0.0), (0.004, -0.002), (-0.003, 0.003), (0.002, 0.004))) * 160 / SHAPE[1]
    frames, truth = make_mosaic_frames(
        shape=SHAPE, scale=1.2, nebula=False, star_density=2000.0, sky_slopes=slopes, rotation=0.3, seed=13
    )
    wcs, shape = find_optimal_wcs(frames)
    return frames, truth, wcs, shape


def bench_mosaic_in_process():
    """make_mosaic against reproject_and_coadd (in-process, same grid, best of REPEAT)."""
    from reproject import reproject_interp
    from reproject.mosaicking import reproject_and_coadd

    from astrophot import make_mosaic

    frames, _, wcs, shape = _setup()
    output = shape[0] * shape[1] * 4
    ours, ours_peak = _measure(lambda: make_mosaic(frames, wcs=(wcs, shape), kernel=KERNEL), repeat=REPEAT)
    inputs = [(np.asarray(f.data, dtype=np.float64), f.wcs) for f in frames]
    peer, peer_peak = _measure(
        lambda: reproject_and_coadd(
            inputs,
            wcs,
            shape_out=shape,
            reproject_function=reproject_interp,
            order="bilinear",
            combine_function="mean",
            match_background=True,
        ),
        repeat=REPEAT,
    )
    notes = f"output {shape[1]}x{shape[0]} ({output / 2**20:.0f} MiB as float32); loaded machine: see uptime"
    return [
        {
            "name": "reproject_and_coadd bilinear, match_background (peer)",
            "seconds": peer,
            "ratio": 1.0,
            "peak_mib": peer_peak / 2**20,
            "peak_over_output": peer_peak / output,
            "notes": "float64 inputs, every reprojected array in memory",
        },
        {
            "name": "make_mosaic bilinear, plane matching",
            "seconds": ours,
            "ratio": ours / peer,
            "vs_reproject": peer / ours,
            "peak_mib": ours_peak / 2**20,
            "peak_over_output": ours_peak / output,
            "target": ">= 5x faster than reproject_and_coadd; peak <= 3x the float32 output",
            "notes": notes,
        },
    ]


def _write_inputs(tmp, frames, wcs, shape):
    """astrophot frames, plain FITS for SWarp (data + TAN header, weight = 1/variance), the grid."""
    from astropy.io import fits

    from astrophot import write_frame

    names = []
    for k, frame in enumerate(frames):
        write_frame(frame, tmp / f"in_{k}.fits")
        header = frame.wcs.to_header(relax=True)
        header["EXPTIME"] = frame.header["EXPTIME"]
        fits.PrimaryHDU(np.asarray(frame.data, np.float32), header=header).writeto(tmp / f"swarp_{k}.fits")
        weight = 1.0 / np.square(np.asarray(frame.uncertainty.array, np.float32))
        fits.PrimaryHDU(weight, header=header).writeto(tmp / f"swarp_{k}.weight.fits")
        names.append(f"in_{k}.fits")
    grid = wcs.to_header(relax=True)
    grid["NAXIS"], grid["NAXIS1"], grid["NAXIS2"] = 2, shape[1], shape[0]
    grid.totextfile(tmp / "grid.hdr")
    grid.totextfile(tmp / "swarp_out.head")
    return names


def _swarp(swarp, tmp, n):
    command = [swarp, *[f"swarp_{k}.fits" for k in range(n)]]
    command += ["-IMAGEOUT_NAME", "swarp_out.fits", "-WEIGHTOUT_NAME", "swarp_out.weight.fits"]
    command += ["-WEIGHT_TYPE", "MAP_WEIGHT", "-RESAMPLING_TYPE", "BILINEAR", "-COMBINE_TYPE", "WEIGHTED"]
    command += ["-SUBTRACT_BACK", "Y", "-RESAMPLE_DIR", ".", "-VERBOSE_TYPE", "QUIET"]
    command += ["-WRITE_XML", "N", "-NTHREADS", "0", "-FSCALASTRO_TYPE", "NONE"]
    return min(_timed(command, tmp) for _ in range(REPEAT))


def bench_mosaic_whole_process():
    """``astrophot mosaic`` against SWarp, bilinear, whole process (best of REPEAT)."""
    swarp = shutil.which("swarp") or shutil.which("SWarp")
    frames, _, wcs, shape = _setup()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        names = _write_inputs(tmp, frames, wcs, shape)
        ours = min(
            _timed(
                [sys.executable, "-m", "astrophot.cli.main", "mosaic", *names, "--wcs", "grid.hdr"]
                + ["--kernel", KERNEL, "-o", f"mosaic_{i}.fits"],
                tmp,
            )
            for i in range(REPEAT)
        )
        row = {"name": "astrophot mosaic bilinear (whole process)", "seconds": ours[0], "peak_mib": ours[1]}
        if swarp:
            peer = _swarp(swarp, tmp, len(frames))
            row.update(
                peer_seconds=peer[0],
                peer_peak_mib=peer[1],
                ratio=ours[0] / peer[0],
                target="faster than SWarp (ratio < 1)",
                notes="SWarp with its background subtraction, weight maps, same grid",
            )
        else:
            row.update(ratio=float("nan"), notes="swarp not installed (apt-get install -y swarp)")
    return [row]


def main():
    print(f"load average {os.getloadavg()}", flush=True)
    for bench in (bench_mosaic_in_process, bench_mosaic_whole_process):
        for row in bench():
            print(
                "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                flush=True,
            )


if __name__ == "__main__":
    main()
