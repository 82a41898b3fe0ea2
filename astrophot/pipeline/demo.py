# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The demo: simulate a small iTelescope night and run every stage that exists on it.

``astrophot demo OUTDIR`` calls `run_demo`. It writes real products (FITS +
ASDF sidecars, star lists, a quality report) and compares what it measured with
the simulation's truth.
"""

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from astrophot.exceptions import AstrometryError
from astrophot.io import read_frame, write_frame

__all__ = ["DemoResult", "run_demo"]

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What the demo made and measured."""

    outdir: Path
    night: object = None
    masters: dict = field(default_factory=dict)
    calibrated: list = field(default_factory=list)
    solved: list = field(default_factory=list)
    star_lists: list = field(default_factory=list)
    quality: object = None
    report: Path | None = None
    checks: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self):
        """A short text report."""
        lines = [f"astrophot demo in {self.outdir} ({self.seconds:.1f} s)"]
        for name, path in self.masters.items():
            lines.append(f"  master {name:12s} {Path(path).name}")
        lines.append(f"  calibrated frames: {len(self.calibrated)}")
        lines.append(f"  star lists:        {len(self.star_lists)}")
        lines.append(f"  solved frames:     {len(self.solved)}")
        if self.report is not None:
            report = self.report.get("html", self.report) if isinstance(self.report, dict) else self.report
            lines.append(f"  quality report:    {report}")
        if self.checks:
            lines.append("  checks against the simulation's truth:")
            lines.extend(f"    {check}" for check in self.checks)
        return "\n".join(lines)


def _write(frame, path, **options):
    write_frame(frame, path, overwrite=True, **options)
    return path


def run_demo(outdir, *, seed=0, shape=(400, 600), n_lights=4, filters=("Ha", "Red"), solve=True):
    """
    Simulate a night and run the pipeline on it.

    Parameters
    ----------
    outdir : str or path-like
        Where to write the night and the products (created; reused if it exists).
    seed : int, optional
        Seed of the simulation.
    shape : tuple of int, optional
        Frame shape (ny, nx): small by default so the demo takes seconds.
    n_lights : int, optional
        Lights per filter.
    filters : tuple of str, optional
    solve : bool, optional
        Plate-solve the calibrated frames.

    Returns
    -------
    DemoResult
    """
    t0 = time.perf_counter()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    result = DemoResult(outdir=outdir)
    result.night = night = _night(outdir / "night", n_lights, filters, shape, seed)
    masters = _demo_masters(night, outdir / "masters", result)
    frames = _reduce(night, masters, outdir, result)
    _grade(night, frames, outdir, result)
    if solve:
        _solve(night, frames, outdir / "solved", result)
    result.seconds = time.perf_counter() - t0
    return result


def _night(night_dir, n_lights, filters, shape, seed):
    from astrophot.datasets import load_night, simulate_night

    if (night_dir / "truth.yaml").exists():
        log.info("reusing the simulated night in %s", night_dir)
        return load_night(night_dir)
    log.info("simulating a night of %d light(s) per filter in %s", n_lights, night_dir)
    return simulate_night(
        night_dir,
        telescope="T20",
        target="M31",
        filters=tuple(filters),
        n_lights=n_lights,
        shape=tuple(shape),
        seed=seed,
        bad_frames=("defocused",),
    )


def _demo_masters(night, masters_dir, result):
    """The calibration products, written; the read noise checked against the truth."""
    import astrophot as ap

    masters_dir.mkdir(exist_ok=True)
    bias = ap.make_master_bias(night.biases)
    result.masters["bias"] = _write(bias, masters_dir / "master_bias.fits")
    dark = ap.make_master_dark(night.darks, bias=bias)
    result.masters["dark"] = _write(dark, masters_dir / "master_dark.fits")
    flats = {}
    for filt, paths in night.flats.items():
        flats[filt] = ap.make_master_flat(paths, bias=bias, dark=dark)
        result.masters[f"flat {filt}"] = _write(flats[filt], masters_dir / f"master_flat_{filt}.fits")
    bad_pixels = ap.find_bad_pixels(dark)
    result.masters["bad pixels"] = _write(bad_pixels, masters_dir / "master_badpix.fits")
    read_noise = ap.measure_read_noise(read_frame(night.biases[0]), read_frame(night.biases[1]))
    true_rn = night.detector.read_noise_adu
    result.checks.append(
        f"read noise {_value(read_noise.read_noise_adu):.2f} ADU vs truth {_value(true_rn):.2f} ADU"
    )
    return {"bias": bias, "dark": dark, "flats": flats, "bad_pixels": bad_pixels}


def _reduce(night, masters, outdir, result):
    """Calibrate, clean and measure every light; returns (frame, stars, path, light) per light."""
    import astrophot as ap
    from astrophot.instruments.itelescope import output_name

    cal_dir = outdir / "calibrated"
    cal_dir.mkdir(exist_ok=True)
    stars_dir = outdir / "stars"
    stars_dir.mkdir(exist_ok=True)
    frames = []
    plans = {}  # one calibration plan per filter: the masters are prepared once
    for light in night.lights:
        raw = read_frame(light)
        if raw.filter not in plans:
            plans[raw.filter] = ap.prepare_calibration(
                bias=masters["bias"],
                dark=masters["dark"],
                flat=masters["flats"][raw.filter],
                bad_pixels=masters["bad_pixels"],
            )
        cal = ap.calibrate_frame(raw, plan=plans[raw.filter])
        cal = ap.add_metadata(ap.reject_cosmic_rays(ap.fix_bad_pixels(cal)))
        path = cal_dir / output_name(light.name, prefix="cal")
        _write(cal, path)
        result.calibrated.append(path)
        background = ap.estimate_background(cal)  # the sky once, for the stars and the grade
        stars = ap.find_stars(cal, background=background)
        star_path = stars_dir / (path.stem + "_stars.ecsv")
        stars.write(star_path, format="ascii.ecsv", overwrite=True)
        result.star_lists.append(star_path)
        frames.append((cal, stars, path, light, background))
    return frames


def _grade(night, frames, outdir, result):
    import astrophot as ap
    from astrophot.analysis import write_quality_report
    from astrophot.instruments.itelescope import output_name

    records = [ap.assess_quality(f[0], stars=f[1], background=f[4]) for f in frames]
    selection = ap.select_frames(records)
    result.quality = selection
    result.report = write_quality_report(selection, outdir / "quality", frames=[f[0] for f in frames])
    truth_bad = {output_name(Path(p).name, prefix="cal") for p in night.bad_lights}
    rejected = {Path(str(row["file"])).name for row in selection if not row["accepted"]}
    result.checks.append(
        f"quality: rejected {sorted(rejected) or 'none'}; deliberately bad {sorted(truth_bad) or 'none'}"
    )


def _solve(night, frames, solved_dir, result):
    import astrophot as ap

    solved_dir.mkdir(exist_ok=True)
    offsets = []
    for cal, stars, path, light, _ in frames:
        try:
            solved = ap.solve_astrometry(cal, stars=stars)
        except AstrometryError as exc:
            log.warning("%s: not solved: %s", path.name, exc)
            continue
        out = solved_dir / path.name.replace("cal-", "nav-", 1)
        _write(solved, out, pixels_from=path)  # the calibrated frame's pixels, not a second copy
        result.solved.append(out)
        truth = night.truth_for(light)
        offsets.append(_wcs_offset(solved.wcs, truth.wcs, cal.data.shape))
    if offsets:
        result.checks.append(
            f"astrometry: {len(offsets)} frame(s) solved, max offset from the true WCS "
            f"{max(offsets):.3f} px over a 5x5 grid"
        )


def _value(quantity):
    return float(getattr(quantity, "value", quantity))


def _wcs_offset(wcs, truth_wcs, shape):
    ny, nx = shape
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
    sky = truth_wcs.pixel_to_world(gx.ravel(), gy.ravel())
    x, y = wcs.world_to_pixel(sky)
    return float(np.max(np.hypot(x - gx.ravel(), y - gy.ravel())))
