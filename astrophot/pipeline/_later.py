# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The night-level stages after the per-frame work: select, grid, stack, mosaic,
continuum, colour, report.

A stage whose code is not in this astrophot (the combination family is built
in parallel) is recorded as ``'not available'`` with the reason: never a fake
product.
"""

import logging
import time

__all__ = ["run_later_stages"]

log = logging.getLogger(__name__)


def _combination(name):
    """The combination function ``name``, or None when this astrophot has none."""
    import importlib

    try:
        module = importlib.import_module("astrophot.combination")
    except ImportError:
        return None
    return getattr(module, name, None)


def _stage(result, name, status, reason="", products=()):
    result.stages[name] = {"status": status, "reason": reason, "products": [str(p) for p in products]}


def _select(plan, result):
    from astrophot.analysis import select_frames

    rows = [dict(f["quality"], file=f["file"]) for f in result.frames if f.get("quality")]
    if not plan.config["select"]["enabled"] or not rows:
        _stage(result, "select", "skipped", "disabled" if rows else "no quality records")
        return
    table = select_frames(rows)
    result.selection = table
    rejected = 0
    by_file = {str(row["file"]): row for row in table}
    for frame in result.frames:
        row = by_file.get(frame["file"])
        if row is None:
            continue
        frame["accepted"] = bool(row["accepted"])
        frame["weight"] = float(row["weight"])
        if not row["accepted"]:
            frame["rejection"] = str(row["reason"])
            rejected += 1
    _stage(result, "select", "done", f"{rejected} of {len(table)} rejected")


def _accepted_solved(result):
    """Solved, accepted frames by (target, filter)."""
    groups = {}
    for frame in result.frames:
        solved = frame["products"].get("solved")
        if solved and frame.get("accepted", True) and frame["status"] == "done":
            quality = frame.get("quality") or {}
            key = (quality.get("target"), quality.get("filter"))
            groups.setdefault(key, []).append(solved)
    return groups


_LATER = (
    ("grid", "find_optimal_wcs"),
    ("stack", "stack_frames"),
    ("mosaic", "make_mosaic"),
    ("continuum", "subtract_continuum"),
    ("color", "make_color_composite"),
)


def run_later_stages(plan, result):
    """Run select, grid, stack, mosaic, continuum, colour and the report; record each stage."""
    t0 = time.perf_counter()
    _select(plan, result)
    result.timings["select"] = time.perf_counter() - t0
    groups = _accepted_solved(result)
    for stage, function in _LATER:
        t0 = time.perf_counter()
        if not plan.config[stage]["enabled"]:
            _stage(result, stage, "skipped", "disabled in the configuration")
        elif _combination(function) is None:
            _stage(result, stage, "not available", f"astrophot.{function} is not in this astrophot yet")
        else:
            _run_combination(stage, plan, result, groups)
        result.timings[stage] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if plan.config["report"]["enabled"]:
        from astrophot.pipeline._report import write_night_report

        try:
            result.report = write_night_report(plan, result)
            _stage(result, "report", "done", products=[result.report])
        except Exception as exc:  # the products stay; the report's failure is reported
            log.warning("report failed: %s: %s", type(exc).__name__, exc)
            _stage(result, "report", "failed", f"{type(exc).__name__}: {exc}")
    else:
        _stage(result, "report", "skipped", "disabled in the configuration")
    result.timings["report"] = time.perf_counter() - t0


def _run_combination(stage, plan, result, groups):
    """Call a combination stage that exists; its failure is recorded, the night goes on."""
    try:
        products = _COMBINE[stage](plan, result, groups)
    except Exception as exc:
        log.warning("%s failed: %s: %s", stage, type(exc).__name__, exc)
        _stage(result, stage, "failed", f"{type(exc).__name__}: {exc}")
        return
    if products:
        _stage(result, stage, "done", products=products)
        result.products[stage] = [str(p) for p in products]
    else:
        _stage(result, stage, "skipped", "nothing to combine")


def _grid(plan, result, groups):
    from astrophot.io import read_frame

    find_optimal_wcs = _combination("find_optimal_wcs")
    by_target = {}
    for (target, _), paths in groups.items():
        by_target.setdefault(target, []).extend(paths)
    result.grids = {}
    for target, paths in by_target.items():
        result.grids[target] = find_optimal_wcs([read_frame(p) for p in paths])
    return []


def _stack(plan, result, groups):
    from astrophot.io import read_frame, write_frame

    stack_frames = _combination("stack_frames")
    options = {k: v for k, v in plan.config["stack"].items() if k != "enabled"}
    out = plan.output / "stacks"
    out.mkdir(exist_ok=True)
    made = []
    result.stacks = {}
    for (target, filt), paths in sorted(groups.items(), key=str):
        grid = getattr(result, "grids", {}).get(target)
        kwargs = {"wcs": grid[0], "shape": grid[1]} if grid else {}
        stacked = stack_frames([read_frame(p) for p in paths], **kwargs, **options)
        path = out / f"stack-{target}-{filt}.fits"
        write_frame(stacked, path, overwrite=True)
        result.stacks[filt] = path
        made.append(path)
    return made


def _continuum(plan, result, groups):
    from astrophot.io import read_frame, write_frame

    subtract_continuum = _combination("subtract_continuum")
    section = plan.config["continuum"]
    stacks = getattr(result, "stacks", {})
    if section["narrow"] not in stacks or section["broad"] not in stacks:
        return []
    line = subtract_continuum(read_frame(stacks[section["narrow"]]), read_frame(stacks[section["broad"]]))
    path = plan.output / "stacks" / f"line-{section['narrow']}.fits"
    write_frame(line, path, overwrite=True)
    return [path]


def _color(plan, result, groups):
    from astrophot.io import read_frame

    make_color_composite = _combination("make_color_composite")
    section = plan.config["color"]
    stacks = getattr(result, "stacks", {})
    channels = [section[c] for c in ("red", "green", "blue")]
    if not all(c in stacks for c in channels):
        return []
    picture = make_color_composite(*(read_frame(stacks[c]) for c in channels))
    made = []
    for fmt in section["formats"]:
        path = plan.output / f"color.{fmt}"
        picture.write(path)
        made.append(path)
    return made


_COMBINE = {
    "grid": _grid,
    "stack": _stack,
    "mosaic": lambda plan, result, groups: [],
    "continuum": _continuum,
    "color": _color,
}
