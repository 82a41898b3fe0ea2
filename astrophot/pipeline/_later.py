# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The night-level stages after the per-frame work: select, grid, stack, mosaic,
continuum, colour, report.

A target whose frames are on several pointings (`~astrophot.pipeline._combine.pointings`)
gets a mosaic per filter (`~astrophot.make_mosaic`, backgrounds matched) instead of
stacks; its line image and colour picture are made from the mosaics.

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


def _none(stage, done, total):
    pass


def run_later_stages(plan, result, client=None):
    """
    Run select, grid, stack, mosaic, continuum, colour and the report; record
    each stage. The stacks, line images and colour pictures are tasks mapped
    like the frames (on Dask when ``client`` is given).
    """
    progress = plan.progress or _none
    t0 = time.perf_counter()
    _select(plan, result)
    result.timings["select"] = time.perf_counter() - t0
    progress("select", 1, 1)
    groups = _accepted_solved(result)
    t0 = time.perf_counter()
    grids = _grids(plan, result, groups)
    result.timings["grid"] = time.perf_counter() - t0
    panels = _mosaic_targets(plan, result, groups, grids)
    stack_tasks = _combine_tasks(plan, "stack", groups, {t: g for t, g in grids.items() if t not in panels})
    stacks = _run_products(plan, result, client, "stack", stack_tasks)
    if panels:
        tasks = _combine_tasks(plan, "mosaic", groups, {t: grids[t] for t in panels})
        stacks.update(_run_products(plan, result, client, "mosaic", tasks))
    # the line image and the colour picture combine a target's stacks, or its mosaics
    _run_products(plan, result, client, "continuum", _line_tasks(plan, stacks))
    _run_products(plan, result, client, "color", _color_tasks(plan, stacks))
    t0 = time.perf_counter()
    if plan.config["report"]["enabled"]:
        from astrophot.pipeline._report import write_night_report

        try:
            result.report = write_night_report(plan, result)
            _stage(result, "report", "done", products=[result.report])
        except Exception as exc:  # the products stay; the report's failure is reported
            log.warning("report failed: %s: %s", type(exc).__name__, exc)
            _stage(result, "report", "failed", f"{type(exc).__name__}: {exc}")
        progress("report", 1, 1)
    else:
        _stage(result, "report", "skipped", "disabled in the configuration")
    result.timings["report"] = time.perf_counter() - t0


def _blocked(plan, stage, function):
    """``(status, reason)`` when ``stage`` cannot run (disabled, or not in this astrophot), else None."""
    if not plan.config[stage]["enabled"]:
        return "skipped", "disabled in the configuration"
    if _combination(function) is None:
        return "not available", f"astrophot.{function} is not in this astrophot yet"
    return None


def _mosaic_targets(plan, result, groups, grids):
    """
    The targets on a grid whose frames (of all filters) are on several pointings, with
    their number of pointings; the mosaic stage recorded when it has nothing to do.
    """
    from astrophot.pipeline._combine import pointings

    blocked = _blocked(plan, "mosaic", "make_mosaic")
    if blocked:
        _stage(result, "mosaic", *blocked)
        return {}
    by_target = {}
    for (target, _), paths in groups.items():
        if target in grids:
            by_target.setdefault(target, []).extend(paths)
    panels = {}
    for target, paths in sorted(by_target.items(), key=str):
        n = len(pointings(paths))
        if n > 1:
            panels[target] = n
    if panels:
        log.info("mosaics: %s", ", ".join(f"{t} ({n} pointings)" for t, n in panels.items()))
    else:
        _stage(result, "mosaic", "skipped", "every target is on one pointing (its stacks are the products)")
    return panels


_STAGE_FUNCTIONS = {
    "stack": "stack_frames",
    "mosaic": "make_mosaic",
    "continuum": "subtract_continuum",
    "color": "make_color_composite",
}


def _grids(plan, result, groups):
    """One grid per target over all its filters (header text and shape), or none."""
    from astrophot.pipeline._combine import grid_header

    if not plan.config["grid"]["enabled"] or _combination("find_optimal_wcs") is None:
        _stage(result, "grid", "skipped", "disabled in the configuration")
        return {}
    by_target = {}
    for (target, _), paths in groups.items():
        by_target.setdefault(target, []).extend(paths)
    grids = {}
    for target, paths in sorted(by_target.items(), key=str):
        try:
            grids[target] = grid_header(paths)
        except Exception as exc:
            log.warning("grid of %s failed: %s: %s", target, type(exc).__name__, exc)
            _stage(result, "grid", "failed", f"{target}: {type(exc).__name__}: {exc}")
            return grids
    if grids:
        sizes = ", ".join(f"{t}: {g[1][1]}x{g[1][0]}" for t, g in grids.items())
        _stage(result, "grid", "done", f"one grid per target for all filters ({sizes})")
        result.grids = grids
    else:
        _stage(result, "grid", "skipped", "no solved, accepted frames")
    return grids


def _options(plan, stage, exclude=()):
    return {k: v for k, v in plan.config[stage].items() if k != "enabled" and k not in exclude}


_FOLDERS = {"stack": "stacks", "mosaic": "mosaics"}


def _combine_tasks(plan, kind, groups, grids):
    """A stack (or mosaic) task per target and filter of the targets in ``grids``."""
    out = plan.output / _FOLDERS[kind]
    options = _options(plan, kind)
    tasks = []
    for (target, filt), paths in sorted(groups.items(), key=str):
        if target not in grids:
            continue
        name = f"{kind}-{target}-{filt}"
        tasks.append(
            {
                "kind": kind,
                "name": name,
                "key": (target, filt),
                "inputs": sorted(paths),
                "outputs": [str(out / f"{name}.fits")],
                "options": options,
                "grid": grids[target],
            }
        )
    return tasks


def _line_tasks(plan, stacks):
    section = plan.config["continuum"]
    tasks = []
    for target in sorted({t for t, _ in stacks}, key=str):
        narrow, broad = stacks.get((target, section["narrow"])), stacks.get((target, section["broad"]))
        if narrow and broad:
            name = f"line-{target}-{section['narrow']}"
            tasks.append(
                {
                    "kind": "line",
                    "name": name,
                    "key": target,
                    "inputs": [narrow, broad],
                    "outputs": [str(plan.output / "stacks" / f"{name}.fits")],
                    "options": _options(plan, "continuum", exclude=("narrow", "broad")),
                }
            )
    return tasks


def _color_tasks(plan, stacks):
    section = plan.config["color"]
    channels = [section[c] for c in ("red", "green", "blue")]
    tasks = []
    for target in sorted({t for t, _ in stacks}, key=str):
        paths = [stacks.get((target, c)) for c in channels]
        if all(paths):
            name = f"color-{target}"
            tasks.append(
                {
                    "kind": "color",
                    "name": name,
                    "key": target,
                    "inputs": paths,
                    "outputs": [str(plan.output / f"{name}.{fmt}") for fmt in section["formats"]],
                    "sidecar": str(plan.output / f"{name}.asdf"),
                    "options": _options(plan, "color", exclude=("red", "green", "blue", "formats")),
                }
            )
    return tasks


def _run_products(plan, result, client, stage, tasks):
    """Map the tasks of one combination stage; record the stage; return key -> first output of those done."""
    from astrophot.pipeline._combine import run_product
    from astrophot.pipeline._night import _map

    t0 = time.perf_counter()
    done = {}
    blocked = _blocked(plan, stage, _STAGE_FUNCTIONS[stage])
    if blocked or not tasks:
        why = {
            "stack": "no solved, accepted frames on a grid, or every target a mosaic",
        }.get(stage, "the stacks it needs are missing")
        _stage(result, stage, *(blocked or ("skipped", f"nothing to combine ({why})")))
        result.timings[stage] = time.perf_counter() - t0
        return done
    for task in tasks:
        task["resume"] = plan.resume
    outcomes = _map(client, run_product, tasks, stage, plan.progress or _none)
    failed = [o for o in outcomes if o["status"] != "done"]
    for task, outcome in zip(tasks, outcomes):
        if outcome["status"] == "done":
            done[task["key"]] = task["outputs"][0]
    products = [p for task, o in zip(tasks, outcomes) if o["status"] == "done" for p in task["outputs"]]
    made = sum(o["made"] for o in outcomes)
    reason = f"{made} made, {len(outcomes) - len(failed) - made} up to date"
    if failed:
        reason += "; " + "; ".join(f"{o['name']}: {o['reason']}" for o in failed)
    _stage(result, stage, "failed" if failed else "done", reason, products)
    result.stages[stage]["made"] = [o["name"] for o in outcomes if o["made"]]
    result.products[stage] = [str(p) for p in products]
    result.timings[stage] = time.perf_counter() - t0
    return done
