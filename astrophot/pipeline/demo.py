# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The demo: a simulated iTelescope night through the night runner, checked against its truth.

``astrophot demo OUTDIR`` calls `run_demo`. It simulates a night as iTelescope
delivers it (one zip of lights per filter and a calibration library) in
``OUTDIR/night``, runs `~astrophot.pipeline.process_night` on it into
``OUTDIR/products`` (calibrated and solved frames, quality, a stack per filter,
the continuum-subtracted line image, the colour picture and the night report
``OUTDIR/products/report/night.html``) and compares what it measured with the
simulation's truth.
"""

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DemoCheck", "DemoResult", "run_demo"]

log = logging.getLogger(__name__)

#: The demo's filters: H-alpha, its continuum filter (R) and a second broad band (V) for the colour picture.
FILTERS = ("Ha", "Red", "V")


@dataclass
class DemoCheck:
    """
    One comparison of a demo measurement with the simulation's truth.

    Attributes
    ----------
    name : str
        What is compared (``'read noise'``, ``'quality'``, ``'astrometry'``,
        ``'stack Ha'``, ``'continuum scale'``, ``'line image'``, ``'colour balance'`` ...).
    measured, truth : object
        The measured value and the true one (numbers, or sets of file names).
    ok : bool
        Whether they agree within the check's tolerance (given in ``text``).
    text : str
        The line the summary prints.
    """

    name: str
    measured: object
    truth: object
    ok: bool
    text: str

    def __str__(self):
        return f"[{'ok' if self.ok else 'OFF'}] {self.text}"


@dataclass
class DemoResult:
    """
    What the demo made and measured.

    Attributes
    ----------
    outdir : `~pathlib.Path`
    night : `~astrophot.datasets.Night`
        The simulated night and its truth (``OUTDIR/night``).
    download : `~astrophot.datasets.DownloadedNight`
        The zipped download and the calibration library the night ran on.
    run : `~astrophot.pipeline.NightResult`
        What `process_night` returned.
    masters : dict
        Master name (``'bias'``, ``'dark'``, ``'flat Ha'`` ...) to the library file used.
    calibrated, solved, star_lists : list of `~pathlib.Path`
    quality : `~astropy.table.Table` or None
        The selection table (accepted, reason, weight per light).
    stacks : dict
        Filter to the stack's path.
    line : `~pathlib.Path` or None
        The continuum-subtracted line image.
    color : list of `~pathlib.Path`
        The colour picture (PNG, TIFF).
    report : `~pathlib.Path` or None
        The night report (HTML).
    checks : list of `DemoCheck`
    seconds : float
    """

    outdir: Path
    night: object = None
    download: object = None
    run: object = None
    masters: dict = field(default_factory=dict)
    calibrated: list = field(default_factory=list)
    solved: list = field(default_factory=list)
    star_lists: list = field(default_factory=list)
    quality: object = None
    stacks: dict = field(default_factory=dict)
    line: Path | None = None
    color: list = field(default_factory=list)
    report: Path | None = None
    checks: list = field(default_factory=list)
    seconds: float = 0.0

    # a property, documented as an attribute: no Returns section (RT01 ignored)
    @property
    def ok(self):  # numpydoc ignore=RT01
        """True when every check agrees with the truth."""
        return all(check.ok for check in self.checks)

    def summary(self):
        """
        A short text report, ending with where the night report is.

        Returns
        -------
        str
            One line per product (night, products folder, lights, masters,
            frames, stacks, line image, colour picture), the stages that made
            nothing, the checks and the night report's path.
        """
        night = self.night
        lines = [f"astrophot demo in {self.outdir} ({self.seconds:.1f} s)"]
        if night is not None:
            lines.append(
                f"  simulated night:   {night.root} ({len(night.lights)} lights in {', '.join(night.filters)};"
                f" truth in {Path(night.truth_path).name if night.truth_path else 'truth.yaml'})"
            )
        if self.run is not None:
            lines.append(f"  products:          {self.run.output}")
            lines.append("  lights:            " + _statuses(self.run.frames))
        for name, path in self.masters.items():
            lines.append(f"  master {name:11s}  {Path(path).name}")
        lines.append(f"  calibrated frames: {len(self.calibrated)}")
        lines.append(f"  solved frames:     {len(self.solved)}")
        for filt, path in self.stacks.items():
            lines.append(f"  stack {filt:12s} {Path(path).name}")
        if self.line is not None:
            lines.append(f"  line image:        {Path(self.line).name}")
        if self.color:
            lines.append(f"  colour picture:    {', '.join(Path(p).name for p in self.color)}")
        lines.extend(_not_made(self.run))
        if self.checks:
            lines.append("  checks against the simulation's truth:")
            lines.extend(f"    {check}" for check in self.checks)
        if self.report is not None:
            lines.append(f"night report: {self.report}")
        return "\n".join(lines)


def _statuses(frames):
    counts = {}
    for frame in frames:
        status = "rejected" if frame.get("accepted") is False else frame["status"]
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"


def _not_made(run):
    """The night-level stages that made nothing, and why."""
    if run is None:
        return []
    lines = []
    for name in ("stack", "continuum", "color", "report"):
        stage = run.stages.get(name)
        if stage is not None and stage["status"] != "done":
            lines.append(f"  {name}: {stage['status']} ({stage['reason']})")
    return lines


def run_demo(
    outdir,
    *,
    seed=0,
    shape=(400, 600),
    n_lights=3,
    filters=FILTERS,
    solve=True,
    overrides=(),
    progress=None,
):
    """
    Simulate an iTelescope night, run `process_night` on it and check the results against the truth.

    Parameters
    ----------
    outdir : str or path-like
        Where to write: the simulated night in ``outdir/night`` (reused when
        it is already there), the products in ``outdir/products`` (a rerun
        keeps what is up to date).
    seed : int, optional
        Seed of the simulation.
    shape : tuple of int, optional
        Frame shape (ny, nx): small by default so the demo takes well under a minute.
    n_lights : int, optional
        Lights per filter; the second light of the night is deliberately
        defocused (the quality step should reject it).
    filters : tuple of str, optional
        H-alpha, R and V by default: the line image is Ha minus its R
        continuum and the colour picture is Ha, R and V (the configuration's
        ``continuum`` and ``color`` sections).
    solve : bool, optional
        Plate-solve the frames; without it there is nothing on the sky to
        stack, so no stacks, line image or colour picture.
    overrides : sequence of str, optional
        ``"stage.option=value"`` for `process_night` (e.g.
        ``"execution.workers=2"`` for a local Dask cluster: then call this
        under ``if __name__ == "__main__":``).
    progress : callable or bool, optional
        Passed to `process_night`.

    Returns
    -------
    DemoResult
        The night, the products made and the checks against the truth.
    """
    from astrophot.pipeline._demo_checks import truth_checks
    from astrophot.pipeline._night import process_night

    t0 = time.perf_counter()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    result = DemoResult(outdir=outdir)
    result.download = _simulate(outdir / "night", n_lights=n_lights, filters=filters, shape=shape, seed=seed)
    result.night = result.download.night
    settings = [] if solve else ["solve.enabled=false"]
    result.run = process_night(
        result.download.download,
        output=outdir / "products",
        library=result.download.library,
        overrides=[*settings, *overrides],
        progress=progress,
    )
    _collect(result, result.run)
    result.checks = truth_checks(result.night, result.run, solve=solve)
    result.seconds = time.perf_counter() - t0
    return result


def _simulate(night_dir, *, n_lights, filters, shape, seed):
    from astrophot.datasets import simulate_itelescope_night

    if (night_dir / "truth.yaml").exists():
        log.info("reusing the simulated night in %s", night_dir)
    else:
        log.info("simulating a night of %d light(s) per filter in %s", n_lights, night_dir)
    return simulate_itelescope_night(
        night_dir,
        telescope="T20",
        target="M31",
        filters=tuple(filters),
        n_lights=n_lights,
        shape=tuple(shape),
        seed=seed,
        bad_frames=("defocused",),
    )


def _collect(result, run):
    """The products of the run, by kind."""
    result.masters = {name: Path(path) for name, (path, _) in run.masters.items() if path}
    for frame in run.frames:
        products = frame["products"]
        for kind, target in (("calibrated", result.calibrated), ("solved", result.solved)):
            if kind in products:
                target.append(Path(products[kind]))
        if "stars" in products:
            result.star_lists.append(Path(products["stars"]))
    result.quality = run.selection
    for path in run.products.get("stack", []):
        result.stacks[Path(path).stem.split("-")[-1]] = Path(path)
    lines = run.products.get("continuum", [])
    result.line = Path(lines[0]) if lines else None
    result.color = [Path(p) for p in run.products.get("color", [])]
    result.report = run.report
