# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The work of the night runner, as functions of paths and small plans.

Each task takes a `dict` of paths and config sections (what a Dask worker
receives: never pixel arrays), reads its inputs, runs the stages, writes its
products atomically with their recipe, and returns a small `dict`: status,
reason, products, seconds per stage. A task never raises for a bad frame.
"""

import json
import logging
import time
from pathlib import Path

from astrophot.pipeline._state import is_current, record_recipe

__all__ = ["build_master", "process_light"]

log = logging.getLogger(__name__)

CALIBRATE_FUNCTION = "astrophot.pipeline.calibrate_light"
SOLVE_FUNCTION = "astrophot.pipeline.analyse_and_solve"


def _calibrate(task, timings):
    """Calibrate, fix bad pixels, reject cosmic rays, add metadata."""
    import astrophot as ap
    from astrophot.io import read_frame

    config = task["config"]
    inputs = task["inputs"]
    t0 = time.perf_counter()
    raw = read_frame(inputs["raw"])
    # the stage-contract plan: masters given as paths, read, checked and hashed once
    plan = ap.prepare_calibration(
        **{k: inputs.get(k) for k in ("bias", "dark", "flat", "bad_pixels")}, unit=config["calibrate"]["unit"]
    )
    timings["read"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    frame = ap.calibrate_frame(raw, plan=plan)
    timings["calibrate"] = time.perf_counter() - t0
    for stage, function in (
        ("fix_bad_pixels", ap.fix_bad_pixels),
        ("cosmic_rays", ap.reject_cosmic_rays),
        ("metadata", ap.add_metadata),
    ):
        if config[stage]["enabled"]:
            t0 = time.perf_counter()
            frame = function(frame)
            timings[stage] = time.perf_counter() - t0
    return frame


def _calibration_parameters(config):
    return {k: config[k] for k in ("calibrate", "fix_bad_pixels", "cosmic_rays", "metadata")}


def _solve_parameters(config):
    return {k: config[k] for k in ("stars", "solve")}


def _write(frame, path, **recipe):
    from astrophot.io import write_frame

    write_frame(frame, path, overwrite=True)
    record_recipe(path, **recipe)


def _analyse(frame, task, timings):
    """Stars, quality record and plate solution; writes the star list and the record."""
    import astrophot as ap
    from astrophot.exceptions import AstrometryError
    from astrophot.io._atomic import atomic_path, write_text_atomic

    config = task["config"]
    out = task["outputs"]
    t0 = time.perf_counter()
    stars = ap.find_stars(frame)
    record = ap.assess_quality(frame, stars=stars)
    timings["stars"] = time.perf_counter() - t0
    with atomic_path(out["stars"]) as tmp:
        stars.write(tmp, format="ascii.ecsv", overwrite=True)
    record = record.to_dict()
    write_text_atomic(out["quality"], json.dumps(record, default=str))
    if not config["solve"]["enabled"]:
        return record, None, None
    t0 = time.perf_counter()
    try:
        solved = ap.solve_astrometry(
            frame, stars=stars, backend=config["solve"]["backend"], time_limit=config["solve"]["time_limit"]
        )
    except AstrometryError as exc:
        timings["solve"] = time.perf_counter() - t0
        return record, None, f"not solved: {exc}"
    timings["solve"] = time.perf_counter() - t0
    return record, solved, None


def _load_quality(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _calibrated(task, result):
    """The calibrated frame (None when up to date on disk) and whether it was kept."""
    out = task["outputs"]
    recipe = {"inputs": task["inputs"], "function": CALIBRATE_FUNCTION}
    params = _calibration_parameters(task["config"])
    if task["resume"] and is_current(out["calibrated"], parameters=params, **recipe):
        result["skipped"].append("calibrated")
        return None, True
    frame = _calibrate(task, result["seconds"])
    _write(frame, out["calibrated"], parameters=params, **recipe)
    result["made"].append("calibrated")
    return frame, False


def process_light(task):
    """
    Run the per-frame stages on one light.

    Parameters
    ----------
    task : dict
        ``inputs`` (role to path: ``raw``, ``bias``, ``dark``, ``flat``,
        ``bad_pixels``), ``outputs`` (``calibrated``, ``solved``, ``stars``,
        ``quality``), ``config`` (the run's configuration) and ``resume``.

    Returns
    -------
    dict
        ``file``, ``status`` (``'done'``, ``'failed'``, ``'unsolved'``),
        ``reason``, ``products`` (kind to path), ``made`` and ``skipped``
        (product kinds), ``seconds`` (stage to seconds), ``quality`` (the
        quality record as a dict, or None).
    """
    result = {
        "file": str(task["inputs"]["raw"]),
        "status": "done",
        "reason": "",
        "products": {},
        "made": [],
        "skipped": [],
        "seconds": {},
        "quality": None,
    }
    t_all = time.perf_counter()
    try:
        _run_light(task, result)
    except Exception as exc:  # one bad frame never stops the night
        log.warning("%s: failed: %s: %s", Path(result["file"]).name, type(exc).__name__, exc)
        result["status"] = "failed"
        result["reason"] = f"{type(exc).__name__}: {exc}"
    result["seconds"]["total"] = time.perf_counter() - t_all
    return result


def _run_light(task, result):
    from astrophot.io import read_frame

    out = task["outputs"]
    config = task["config"]
    frame, _ = _calibrated(task, result)
    result["products"]["calibrated"] = str(out["calibrated"])
    if not config["stars"]["enabled"]:
        return
    inputs = {"calibrated": out["calibrated"]}
    params = _solve_parameters(config)
    solved_current = (
        task["resume"]
        and config["solve"]["enabled"]
        and is_current(out["solved"], inputs=inputs, function=SOLVE_FUNCTION, parameters=params)
    )
    quality = _load_quality(out["quality"]) if task["resume"] else None
    if solved_current and quality is not None:
        result["skipped"].append("solved")
        result["products"]["solved"] = str(out["solved"])
        result["quality"] = quality
        return
    if frame is None:
        frame = read_frame(out["calibrated"])
    record, solved, problem = _analyse(frame, task, result["seconds"])
    result["quality"] = record
    result["products"]["stars"] = str(out["stars"])
    if problem:
        result["status"] = "unsolved"
        result["reason"] = problem
        Path(out["solved"]).unlink(missing_ok=True)
        return
    if solved is not None:
        _write(solved, out["solved"], inputs=inputs, function=SOLVE_FUNCTION, parameters=params)
        result["made"].append("solved")
        result["products"]["solved"] = str(out["solved"])


def build_master(task):
    """
    Make one master from raw calibration frames of the night.

    Parameters
    ----------
    task : dict
        ``kind`` (``'bias'``, ``'dark'``, ``'flat'``, ``'bad_pixels'``),
        ``inputs`` (``frames``: list of paths; ``bias``/``dark``: master
        paths), ``output`` and ``resume``.

    Returns
    -------
    dict
        ``kind``, ``output``, ``status``, ``reason``, ``made`` (bool), ``seconds``.
    """
    import astrophot as ap
    from astrophot.io import read_frame

    t0 = time.perf_counter()
    kind, output = task["kind"], task["output"]
    inputs = {f"frame{i:03d}": p for i, p in enumerate(task["inputs"].get("frames", ()))}
    inputs.update({k: v for k, v in task["inputs"].items() if k != "frames" and v})
    function = f"astrophot.pipeline.build_master.{kind}"
    result = {"kind": kind, "output": str(output), "status": "done", "reason": "", "made": False}
    try:
        if task["resume"] and is_current(output, inputs=inputs, function=function, parameters={}):
            result["seconds"] = time.perf_counter() - t0
            return result
        bias = read_frame(task["inputs"]["bias"]) if task["inputs"].get("bias") else None
        dark = read_frame(task["inputs"]["dark"]) if task["inputs"].get("dark") else None
        frames = list(task["inputs"].get("frames", ()))
        if kind == "bias":
            master = ap.make_master_bias(frames)
        elif kind == "dark":
            master = ap.make_master_dark(frames, bias=bias)
        elif kind == "flat":
            master = ap.make_master_flat(frames, bias=bias, dark=dark)
        else:
            master = ap.find_bad_pixels(dark)
        _write(master, output, inputs=inputs, function=function, parameters={})
        result["made"] = True
    except Exception as exc:
        result["status"] = "failed"
        result["reason"] = f"{type(exc).__name__}: {exc}"
    result["seconds"] = time.perf_counter() - t0
    return result
