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
    stages = [
        ("stack", _combine_tasks(plan, "stack", groups, {t: g for t, g in grids.items() if t not in panels}))
    ]
    if panels:
        stages.append(("mosaic", _combine_tasks(plan, "mosaic", groups, {t: grids[t] for t in panels})))
    # the line image and the colour picture combine a target's stacks, or its mosaics
    planned = {task["key"]: task["outputs"][0] for _, tasks in stages for task in tasks}
    stages += [("continuum", _line_tasks(plan, planned)), ("color", _color_tasks(plan, planned))]
    _run_combinations(plan, result, client, stages)
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


def _after(task, *needed):
    """``task``'s product once the products it needs are made; None when one of them failed."""
    from astrophot.pipeline._combine import run_product

    if any(outcome is None or outcome["status"] != "done" for outcome in needed):
        return None
    return run_product(task)


def _run_combinations(plan, result, client, stages):
    """
    Run the combination stages (stack, mosaic, continuum, colour) and record each.

    A task needs the products of earlier tasks that are among its inputs; one whose
    needed product failed is left out (as the line image of a failed stack always was).
    Locally the stages run in turn. On Dask every task is submitted at once and waits
    only for the products it needs: the line image is made while a stack it does not
    need is still running. A stage's time is the wall time from its first task's start
    to its last task's end (stages may overlap on Dask).
    """
    runnable = []
    for stage, tasks in stages:
        blocked = _blocked(plan, stage, _STAGE_FUNCTIONS[stage])
        if blocked or not tasks:
            why = {
                "stack": "no solved, accepted frames on a grid, or every target a mosaic",
            }.get(stage, "the stacks it needs are missing")
            _stage(result, stage, *(blocked or ("skipped", f"nothing to combine ({why})")))
            result.timings[stage] = 0.0
            continue
        for task in tasks:
            task["resume"] = plan.resume
        runnable.append((stage, tasks))
    run = _run_local if client is None else _run_dask
    outcomes, ends = run(client, runnable, plan.progress or _none)
    for stage, tasks in runnable:
        kept = [(task, outcome) for task, outcome in zip(tasks, outcomes[stage]) if outcome is not None]
        ran = [(end, outcome["seconds"]) for end, outcome in zip(ends[stage], outcomes[stage]) if outcome]
        wall = max(e for e, _ in ran) - min(e - sec for e, sec in ran) if ran else 0.0
        _record(result, stage, kept, wall)


def _run_local(client, runnable, progress):
    made, outcomes, ends = {}, {}, {}
    for stage, tasks in runnable:
        outcomes[stage], ends[stage] = [], []
        for i, task in enumerate(tasks, 1):
            needed = [made[p] for p in task["inputs"] if p in made]
            outcome = _after(task, *needed)
            made[task["outputs"][0]] = outcome
            outcomes[stage].append(outcome)
            ends[stage].append(time.perf_counter())
            progress(stage, i, len(tasks))
    return outcomes, ends


def _run_dask(client, runnable, progress):
    from dask.distributed import as_completed

    producer, where = {}, {}
    for stage, tasks in runnable:
        for i, task in enumerate(tasks):
            needed = [producer[p] for p in task["inputs"] if p in producer]
            future = client.submit(_after, task, *needed, pure=False)
            producer[task["outputs"][0]] = future
            where[future.key] = (stage, i)
    outcomes = {stage: [None] * len(tasks) for stage, tasks in runnable}
    ends = {stage: [0.0] * len(tasks) for stage, tasks in runnable}
    counts = dict.fromkeys(outcomes, 0)
    for future in as_completed(list(producer.values())):
        stage, i = where[future.key]
        outcomes[stage][i] = future.result()
        ends[stage][i] = time.perf_counter()
        counts[stage] += 1
        progress(stage, counts[stage], len(outcomes[stage]))
    return outcomes, ends


def _record(result, stage, kept, seconds):
    """Record one combination stage from its ``(task, outcome)`` pairs (the tasks that ran)."""
    result.timings[stage] = seconds
    if not kept:
        _stage(result, stage, "skipped", "nothing to combine (the stacks it needs are missing)")
        return
    failed = [o for _, o in kept if o["status"] != "done"]
    products = [p for task, o in kept if o["status"] == "done" for p in task["outputs"]]
    made = sum(o["made"] for _, o in kept)
    reason = f"{made} made, {len(kept) - len(failed) - made} up to date"
    if failed:
        reason += "; " + "; ".join(f"{o['name']}: {o['reason']}" for o in failed)
    _stage(result, stage, "failed" if failed else "done", reason, products)
    result.stages[stage]["made"] = [o["name"] for _, o in kept if o["made"]]
    result.products[stage] = [str(p) for p in products]
