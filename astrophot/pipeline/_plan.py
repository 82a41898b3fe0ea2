# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Planning a night: masters for every light (library or built), tasks, products."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from astrophot.pipeline._discover import group_lights

__all__ = ["NightPlan", "make_plan"]

log = logging.getLogger(__name__)


@dataclass
class NightPlan:
    """
    What a run will do: the files found, the masters chosen (and why), the
    per-light tasks, the lights that cannot be calibrated (and why).
    """

    source: Path
    output: Path
    config: dict
    files: list = field(default_factory=list)
    groups: dict = field(default_factory=dict)
    master_tasks: list = field(default_factory=list)
    light_tasks: list = field(default_factory=list)
    uncalibrated: dict = field(default_factory=dict)
    corrupt: dict = field(default_factory=dict)
    masters: dict = field(default_factory=dict)
    started: float | None = None
    progress: object = None
    resume: bool = True

    def describe(self):
        """The plan as text (``astrophot run --plan``)."""
        from astrophot.pipeline._tasks import calibration_recipe, current

        kinds = {}
        for info in self.files:
            kinds[info.kind] = kinds.get(info.kind, 0) + 1
        lines = [f"night {self.source} -> {self.output}"]
        lines.append("files: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
        for key, members in sorted(self.groups.items(), key=lambda kv: str(kv[0])):
            telescope, target, filt, binning, exposure = key
            lines.append(
                f"group {telescope} {target} {filt} bin{binning} {exposure:g}s: {len(members)} light(s)"
            )
        for task in self.master_tasks:
            lines.append(f"build master {task['kind']} from {len(task['inputs'].get('frames', ()))} frame(s)")
        lines.append("masters:")
        for name, (path, reason) in sorted(self.masters.items()):
            lines.append(f"  {name}: {Path(path).name if path else 'none'} ({reason})")
        n_current = 0
        for task in self.light_tasks:
            inputs = task["inputs"]
            if current(task["outputs"]["calibrated"], calibration_recipe(self.config, inputs)):
                n_current += 1
        lines.append(
            f"lights to process: {len(self.light_tasks)} ({n_current} already calibrated and up to date)"
        )
        for path, reason in sorted(self.uncalibrated.items()):
            lines.append(f"  no calibration: {Path(path).name}: {reason}")
        for path, reason in sorted(self.corrupt.items()):
            lines.append(f"  unreadable: {Path(path).name}: {reason}")
        stages = [s for s in _STAGES if self.config[s]["enabled"]]
        lines.append("stages: " + " -> ".join(stages))
        return "\n".join(lines)


_STAGES = (
    "calibrate",
    "fix_bad_pixels",
    "cosmic_rays",
    "metadata",
    "stars",
    "solve",
    "select",
    "grid",
    "stack",
    "mosaic",
    "continuum",
    "color",
    "report",
)


def _fits(raws, light):
    """Raw calibration frames that fit a light (telescope, binning, shape)."""
    return [
        r
        for r in raws
        if r.shape == light.shape
        and (r.binning or 1) == (light.binning or 1)
        and r.telescope == light.telescope
    ]


def _night_masters(files, light, output, tasks):
    """Plan masters built from the night's raw calibration frames; returns paths and reasons, or a reason."""
    raws = {k: _fits([f for f in files if f.kind == k], light) for k in ("bias", "dark", "flat")}
    flats = [f for f in raws["flat"] if (f.filter or "").lower() == (light.filter or "").lower()]
    if not raws["bias"] or not raws["dark"] or not flats:
        missing = [k for k, v in (("bias", raws["bias"]), ("dark", raws["dark"]), ("flat", flats)) if not v]
        return (
            None,
            f"no master in the library fits and the night has no raw {'/'.join(missing)} frames for it",
        )
    ny, nx = light.shape
    tag = f"{light.telescope}_bin{light.binning}_{nx}x{ny}"
    masters = Path(output) / "masters"
    paths = {
        "bias": masters / f"master_bias_{tag}.fits",
        "dark": masters / f"master_dark_{tag}.fits",
        "bad_pixels": masters / f"master_badpix_{tag}.fits",
        "flat": masters / f"master_flat_{light.filter}_{tag}.fits",
    }
    specs = (
        ("bias", {"frames": [str(f.path) for f in raws["bias"]]}),
        ("dark", {"frames": [str(f.path) for f in raws["dark"]], "bias": str(paths["bias"])}),
        ("bad_pixels", {"dark": str(paths["dark"])}),
        (
            "flat",
            {"frames": [str(f.path) for f in flats], "bias": str(paths["bias"]), "dark": str(paths["dark"])},
        ),
    )
    for kind, inputs in specs:
        if str(paths[kind]) not in {t["output"] for t in tasks}:
            tasks.append({"kind": kind, "inputs": inputs, "output": str(paths[kind])})
    reasons = {
        k: f"built from {len(raws[k] if k != 'flat' else flats)} raw frame(s) of the night"
        for k in ("bias", "dark", "flat")
    }
    reasons["bad_pixels"] = "found from the built master dark"
    return {k: (str(v), reasons[k]) for k, v in paths.items()}, None


def _library_masters(library, light):
    from astrophot.exceptions import CalibrationError

    if library is None:
        return None, "no calibration library given"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            choice = library.select(light.path)
        except CalibrationError as exc:
            return None, str(exc)
    paths = choice.paths()
    return {k: (str(p) if p else None, choice.reasons.get(k, "")) for k, p in paths.items()}, None


def _outputs(output, light):
    from astrophot.instruments.itelescope import output_name

    try:
        cal_name = output_name(light.path.name, prefix="cal")
    except Exception:
        cal_name = f"cal-{light.path.stem}.fits"
    stem = Path(cal_name).stem
    nav_name = cal_name.replace("cal-", "nav-", 1) if cal_name.startswith("cal-") else f"nav-{cal_name}"
    output = Path(output)
    return {
        "calibrated": str(output / "calibrated" / cal_name),
        "solved": str(output / "solved" / nav_name),
        "stars": str(output / "stars" / f"{stem}_stars.ecsv"),
        "quality": str(output / "quality" / f"{stem}.quality.json"),
        "thumbnail": str(output / "report" / "thumbs" / f"{stem}.png"),
    }


def make_plan(source, files, *, output, config, library=None, resume=True):
    """
    Plan a night.

    Parameters
    ----------
    source : path-like
    files : list of FileInfo
        From `discover_files`.
    output : path-like
    config : dict
    library : `~astrophot.CalibrationLibrary`, optional
    resume : bool

    Returns
    -------
    NightPlan
    """
    plan = NightPlan(source=Path(source), output=Path(output), config=config, files=files, resume=resume)
    plan.groups = group_lights(files)
    plan.corrupt = {str(f.path): f.problem for f in files if f.kind == "corrupt" or f.problem}
    for members in plan.groups.values():
        for light in members:
            chosen, why = _library_masters(library, light)
            if chosen is None and config["calibrate"]["build_masters"]:
                chosen, why_night = _night_masters(files, light, output, plan.master_tasks)
                why = why if chosen is not None else f"{why}; {why_night}"
            if chosen is None:
                plan.uncalibrated[str(light.path)] = why
                continue
            for kind, (path, reason) in chosen.items():
                key = f"{kind} {light.filter}" if kind == "flat" else kind
                plan.masters.setdefault(key, (path, reason))
            inputs = {"raw": str(light.path), **{k: p for k, (p, _) in chosen.items()}}
            plan.light_tasks.append(
                {"inputs": inputs, "outputs": _outputs(output, light), "config": config, "resume": resume}
            )
    for task in plan.master_tasks:
        task["resume"] = resume
    return plan
