# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The work of the night runner, as functions of paths and small plans.

Each task takes a `dict` of paths and config sections (what a Dask worker
receives: never pixel arrays), reads its inputs, runs the stages, writes its
products atomically (`~astrophot.write_frame`: FITS and provenance sidecar),
and returns a small `dict`: status, reason, products, seconds per stage. A
task never raises for a bad frame.

Whether a product is up to date is read from its provenance by
`astrophot.io.up_to_date_reason` against the recipe the configuration asks
for (`calibration_recipe`, `solve_recipe`, `master_recipe`): the functions
of its last steps, their parameters from the configuration, the input
checksums and the astrophot version.
"""

import json
import logging
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

__all__ = ["build_master", "calibration_recipe", "current", "master_recipe", "process_light", "solve_recipe"]

log = logging.getLogger(__name__)

#: The per-frame stages after calibrate_frame: config section and function, in order.
_CHAIN = (
    ("fix_bad_pixels", "fix_bad_pixels"),
    ("cosmic_rays", "reject_cosmic_rays"),
    ("metadata", "add_metadata"),
)
_MASTER_FUNCTIONS = {
    "bias": "make_master_bias",
    "dark": "make_master_dark",
    "flat": "make_master_flat",
    "bad_pixels": "find_bad_pixels",
}


def calibration_recipe(config, inputs):
    """What a calibrated light must record: calibrate_frame then the enabled stages, from these inputs."""
    functions = ["calibrate_frame"] + [name for stage, name in _CHAIN if config[stage]["enabled"]]
    parameters = [{"unit": config["calibrate"]["unit"]}] + [None] * (len(functions) - 1)
    return {"inputs": [p for p in inputs.values() if p], "function": functions, "parameters": parameters}


def solve_recipe(config, calibrated):
    """What a solved light must record: solve_astrometry of the calibrated file with these options."""
    section = config["solve"]
    parameters = {"backend": section["backend"], "time_limit": section["time_limit"]}
    return {"inputs": [calibrated], "function": "solve_astrometry", "parameters": parameters}


def master_recipe(task):
    """What a master built from the night's raw frames must record."""
    inputs = list(task["inputs"].get("frames", ())) + [
        v for k, v in task["inputs"].items() if k != "frames" and v
    ]
    return {"inputs": inputs, "function": _MASTER_FUNCTIONS[task["kind"]], "parameters": None}


def current(path, recipe):
    """True when the product at ``path`` is complete and made by ``recipe`` (the reason is logged)."""
    from astrophot.io import up_to_date_reason

    reason = up_to_date_reason(path, **recipe)
    if reason is not None:
        log.debug("%s: redone: %s", Path(path).name, reason)
    return reason is None


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


def _write(frame, path, **options):
    from astrophot.io import write_frame

    write_frame(frame, path, overwrite=True, **options)


def _analyse(frame, task, timings):
    """Stars, quality record and plate solution; writes the star list and the record."""
    import astrophot as ap
    from astrophot.exceptions import AstrometryError
    from astrophot.io._atomic import atomic_path, write_text_atomic

    config = task["config"]
    out = task["outputs"]
    t0 = time.perf_counter()
    background = ap.estimate_background(frame)  # the sky once, for the stars and the quality record
    stars = ap.find_stars(frame, background=background)
    record = ap.assess_quality(frame, stars=stars, background=background)
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
    if task["resume"] and current(out["calibrated"], calibration_recipe(task["config"], task["inputs"])):
        result["skipped"].append("calibrated")
        return None, True
    frame = _calibrate(task, result["seconds"])
    _write(frame, out["calibrated"])
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
        "warnings": [],
    }
    t_all = time.perf_counter()
    with _recorded_warnings(result, Path(result["file"]).name):
        try:
            _run_light(task, result)
        except Exception as exc:  # one bad frame never stops the night
            log.warning("%s: failed: %s: %s", Path(result["file"]).name, type(exc).__name__, exc)
            result["status"] = "failed"
            result["reason"] = f"{type(exc).__name__}: {exc}"
    result["seconds"]["total"] = time.perf_counter() - t_all
    return result


@contextmanager
def _recorded_warnings(result, name):
    """
    The warnings of a task, logged once each with the file's name and kept in
    ``result['warnings']`` (the report shows them): a warning never fails a
    frame, whatever filter the caller set.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = []
    for item in caught:
        text = f"{item.category.__name__}: {item.message}"
        if text not in seen:
            seen.append(text)
            log.warning("%s: %s", name, text)
    result["warnings"] = seen


def _run_light(task, result):
    from astrophot.io import read_frame

    out = task["outputs"]
    config = task["config"]
    frame, _ = _calibrated(task, result)
    result["products"]["calibrated"] = str(out["calibrated"])
    _thumbnail(frame, task, result)
    if not config["stars"]["enabled"]:
        return
    solved_current = (
        task["resume"]
        and config["solve"]["enabled"]
        and current(out["solved"], solve_recipe(config, out["calibrated"]))
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
        # the calibrated frame is kept beside it: the solved one refers to its pixels (path + sha256)
        _write(solved, out["solved"], pixels_from=out["calibrated"])
        result["made"].append("solved")
        result["products"]["solved"] = str(out["solved"])


def _thumbnail(frame, task, result):
    """
    The report's thumbnail of the light, made here while its pixels are in memory (the
    report then reads a few kilobytes instead of every frame); kept when the frame is
    up to date and its thumbnail is there.
    """
    from astrophot.analysis.report import make_thumbnail
    from astrophot.io._atomic import write_bytes_atomic

    report = task["config"]["report"]
    base = task["outputs"].get("thumbnail")
    if not base or not report["enabled"]:
        return
    size = int(report["thumbnail_size"])
    path = Path(base).with_name(f"{Path(base).stem}-{size}px.png")  # another size: another file
    if frame is not None or not path.exists():
        try:
            source = frame if frame is not None else task["outputs"]["calibrated"]
            write_bytes_atomic(path, make_thumbnail(source, size=size))
        except Exception as exc:  # the report makes it from the product instead
            log.debug("%s: no thumbnail: %s", Path(path).name, exc)
            return
    result["thumbnail"] = str(path)


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
    t0 = time.perf_counter()
    kind, output = task["kind"], task["output"]
    result = {"kind": kind, "output": str(output), "status": "done", "reason": "", "made": False}
    with _recorded_warnings(result, Path(output).name):
        try:
            if not (task["resume"] and current(output, master_recipe(task))):
                _write(_make_master(kind, task["inputs"]), output)
                result["made"] = True
        except Exception as exc:
            result["status"] = "failed"
            result["reason"] = f"{type(exc).__name__}: {exc}"
    result["seconds"] = time.perf_counter() - t0
    return result


def _make_master(kind, inputs):
    import astrophot as ap
    from astrophot.io import read_frame

    bias = read_frame(inputs["bias"]) if inputs.get("bias") else None
    dark = read_frame(inputs["dark"]) if inputs.get("dark") else None
    frames = list(inputs.get("frames", ()))
    if kind == "bias":
        return ap.make_master_bias(frames)
    if kind == "dark":
        return ap.make_master_dark(frames, bias=bias)
    if kind == "flat":
        return ap.make_master_flat(frames, bias=bias, dark=dark)
    return ap.find_bad_pixels(dark)
