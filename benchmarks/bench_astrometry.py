# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Plate solving a simulated 4008 x 2672 light of 1.5 x 1.0 degrees (1.35"/px, the
Cygnus Loop, real Tycho-2 stars) with the Debian Tycho-2 index files:

- hinted: `solve_astrometry` given the star table (``find_stars``, timed apart),
  with the header's position and the pixel scale, ``backend="auto"`` and each
  backend alone; median of five runs (the first, which reads the Tycho-2
  catalogue from the index file, is reported apart). Target: median under 1 s.
  The peer is ``solve-field`` on the same FITS file doing its own extraction
  with the same hints (a whole process, as a user runs it); the floor is the
  astrometry.net engine alone on the prepared star list (the PyPI
  ``astrometry`` package in-process: no fork, no refinement, no verification).
- blind (no position, scale known to 20%): the engine and ``solve-field`` on
  the star list. Target: under 30 s.
"""

import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (2672, 4008)
SCALE = 1.35
_CACHE = {}


def _setup():
    if _CACHE:
        return _CACHE
    from astrophot.analysis import find_stars
    from astrophot.datasets import make_raw_frame
    from astrophot.io import write_frame

    frame, truth = make_raw_frame(
        target="Cygnus Loop",
        shape=SHAPE,
        scale=SCALE,
        rotation=30.0,
        fwhm=3.0,
        synthetic_density=1000.0,
        seed=4,
    )
    t0 = time.perf_counter()
    stars = find_stars(frame)
    detect = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp(prefix="astrophot-bench-astrometry-"))
    path = write_frame(frame, tmp / "light.fits")
    _CACHE.update(frame=frame, truth=truth[0], stars=stars, detect=detect, path=path, tmp=tmp)
    return _CACHE


def _grid_error(wcs, truth):
    ny, nx = SHAPE
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
    px, py = wcs.world_to_pixel(truth.wcs.pixel_to_world(gx, gy))
    return float(np.max(np.hypot(px - gx, py - gy)))


def _solve_times(backend, repeats=5, **kwargs):
    from astrophot.astrometry import solve_astrometry

    data = _setup()
    times, solved = [], None
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        solved = solve_astrometry(data["frame"], stars=data["stars"], backend=backend, scale=SCALE, **kwargs)
        times.append(time.perf_counter() - t0)
    return times[0], statistics.median(times[1:]), solved


def _solve_field_image(extra=()):
    """solve-field on the FITS file, doing its own extraction (hinted like astrophot)."""
    data = _setup()
    frame = data["frame"]
    center = frame.coordinates
    out = data["tmp"] / "sf"
    command = [
        "solve-field", str(data["path"]), "--dir", str(out), "--overwrite", "--no-plots", "--new-fits", "none",
        "--scale-units", "arcsecperpix", "--scale-low", str(0.8 * SCALE), "--scale-high", str(1.2 * SCALE),
        "--ra", f"{center.ra.deg:.5f}", "--dec", f"{center.dec.deg:.5f}", "--radius", "1.8", *extra,
    ]  # fmt: skip
    t0 = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    solved = (out / "light.solved").exists()
    return seconds, solved, run


def _engine_floor():
    """The astrometry.net engine alone, in-process, on the prepared star list."""
    import astrometry

    from astrophot.astrometry import find_index_files, select_index_files
    from astrophot.astrometry._solve import _star_list

    data = _setup()
    frame = data["frame"]
    _, _, star_list = _star_list(frame, data["stars"], n_stars=200, name="bench")
    sel = star_list.selected
    xy = np.c_[star_list.x[sel] + 1, star_list.y[sel] + 1].tolist()
    ny, nx = SHAPE
    indexes = select_index_files(
        find_index_files(), short_side=ny * 0.8 * SCALE / 60, diagonal=np.hypot(nx, ny) * 1.2 * SCALE / 60
    )
    center = frame.coordinates
    times = []
    with astrometry.Solver([Path(i.path) for i in indexes]) as solver:
        for _ in range(5):
            t0 = time.perf_counter()
            solution = solver.solve(
                stars=xy,
                size_hint=astrometry.SizeHint(0.8 * SCALE, 1.2 * SCALE),
                position_hint=astrometry.PositionHint(center.ra.deg, center.dec.deg, 1.8),
                solution_parameters=astrometry.SolutionParameters(
                    logodds_callback=lambda logodds: astrometry.Action.STOP
                ),
            )
            times.append(time.perf_counter() - t0)
            assert solution.has_match()
    return statistics.median(times)


def bench_hinted():
    """Hinted solve given the star table, backend auto, against solve-field on the FITS file."""
    if shutil.which("solve-field") is None:
        return {"name": "astrometry.hinted", "error": "solve-field is not installed"}
    data = _setup()
    first, median, solved = _solve_times("auto")
    peer, peer_ok, _ = _solve_field_image()
    try:
        floor = _engine_floor()
    except ImportError:
        floor = None
    return {
        "name": "astrometry.hinted (auto, star table given)",
        "seconds": round(median, 3),
        "peer_seconds": round(peer, 3),
        "floor_seconds": None if floor is None else round(floor, 3),
        "ratio": round(median / peer, 3),
        "target": "< 1 s",
        "notes": (
            f"backend {solved.solution['backend']}, first call {first:.2f} s (reads the catalogue), "
            f"grid error {_grid_error(solved.wcs, data['truth']):.3f} px, {solved.solution['n_matched']} stars; "
            f"solve-field on the image {peer:.2f} s (solved: {peer_ok}); engine alone "
            f"{'n/a' if floor is None else f'{floor:.3f} s'}; find_stars {data['detect']:.2f} s (not counted)"
        ),
    }


def bench_backends():
    """Each local backend alone, hinted, given the star table."""
    data = _setup()
    records = []
    for backend in ("engine", "solve-field", "matcher"):
        try:
            first, median, solved = _solve_times(backend)
        except Exception as exc:
            records.append({"name": f"astrometry.hinted.{backend}", "error": str(exc)[:200]})
            continue
        records.append(
            {
                "name": f"astrometry.hinted.{backend}",
                "seconds": round(median, 3),
                "ratio": None,
                "target": "< 1 s",
                "notes": f"first {first:.2f} s, grid error {_grid_error(solved.wcs, data['truth']):.3f} px",
            }
        )
    return records


def bench_blind():
    """Blind (no position; scale known to 20%) with the engine and solve-field on the star list."""
    from astrophot.astrometry import solve_astrometry

    data = _setup()
    records = []
    for backend in ("engine", "solve-field"):
        t0 = time.perf_counter()
        try:
            solved = solve_astrometry(
                data["frame"], stars=data["stars"], backend=backend, blind=True, scale=SCALE, time_limit=120
            )
        except Exception as exc:
            records.append({"name": f"astrometry.blind.{backend}", "error": str(exc)[:200]})
            continue
        seconds = time.perf_counter() - t0
        records.append(
            {
                "name": f"astrometry.blind.{backend}",
                "seconds": round(seconds, 3),
                "ratio": round(seconds / 30.0, 3),
                "target": "< 30 s",
                "notes": f"grid error {_grid_error(solved.wcs, data['truth']):.3f} px, "
                f"index {solved.solution['index']}",
            }
        )
    return records
