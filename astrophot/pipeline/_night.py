# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""`process_night`: one call from a downloaded night to every product and a report."""

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from astrophot.exceptions import AstrophotError

__all__ = ["NightResult", "plan_night", "process_night"]

log = logging.getLogger(__name__)

_MASTER_WAVES = (("bias",), ("dark",), ("bad_pixels", "flat"))


@dataclass
class NightResult:
    """
    What `process_night` made.

    Attributes
    ----------
    output : `~pathlib.Path`
    frames : list of dict
        One per light: ``file``, ``status`` (``done``, ``unsolved``,
        ``failed``, ``uncalibrated``, ``rejected``), ``reason``, ``products``,
        ``made``, ``skipped``, ``seconds``, ``quality``.
    masters : dict
        Name to (path, reason).
    stages : dict
        Night-level stage to ``{'status': ..., 'reason': ..., 'products': [...]}``;
        a stage whose code is not in this astrophot is ``'not available'``.
    products : dict
        Kind to list of paths.
    timings : dict
        Stage to seconds (summed over frames for per-frame stages).
    config : dict
    report : `~pathlib.Path` or None
    selection : `~astropy.table.Table` or None
        The quality table of `~astrophot.analysis.select_frames` (accepted,
        reason, weight per frame).
    seconds : float
    """

    output: Path
    frames: list = field(default_factory=list)
    masters: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)
    products: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    report: Path | None = None
    selection: object = None
    seconds: float = 0.0

    @property
    def failed(self):
        """The frames that did not make it (failed, unsolved, uncalibrated)."""
        return [f for f in self.frames if f["status"] in ("failed", "unsolved", "uncalibrated")]

    @property
    def ok(self):
        """True when nothing failed."""
        return not self.failed and not any(s["status"] == "failed" for s in self.stages.values())

    def summary(self):
        """A one-screen summary."""
        counts = {}
        for frame in self.frames:
            counts[frame["status"]] = counts.get(frame["status"], 0) + 1
        lines = [f"astrophot run -> {self.output} ({self.seconds:.1f} s)"]
        lines.append("lights: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"))
        for frame in self.failed:
            lines.append(f"  {frame['status']}: {Path(frame['file']).name}: {frame['reason']}")
        for name, stage in self.stages.items():
            extra = f" ({stage['reason']})" if stage.get("reason") else ""
            lines.append(f"{name}: {stage['status']}{extra}")
        if self.report is not None:
            lines.append(f"report: {self.report}")
        return "\n".join(lines)


def _source_dirs(source, config_path):
    source = Path(source)
    if source.is_file() and source.suffix.lower() in (".yaml", ".yml"):
        import yaml

        doc = yaml.safe_load(source.read_text()) or {}
        night = doc.pop("night", None) if isinstance(doc, dict) else None
        if not night:
            raise AstrophotError(f"{source}: a configuration used as SOURCE needs a 'night: <folder>' entry")
        return (source.parent / night).resolve(), source
    if not source.is_dir():
        raise AstrophotError(f"{source}: the night is neither a folder nor a configuration file")
    return source, config_path


def _load(source, config, overrides):
    from astrophot.pipeline._config import load_config

    if isinstance(config, dict):
        return load_config(overrides=overrides or (), base=load_config(overrides=config))
    if config is not None and Path(config).suffix.lower() in (".yaml", ".yml"):
        import yaml

        doc = yaml.safe_load(Path(config).read_text()) or {}
        if isinstance(doc, dict) and "night" in doc:  # a SOURCE config: the night key is not a section
            doc.pop("night")
            return load_config(overrides=overrides or (), base=load_config(overrides=doc))
    return load_config(config, overrides=overrides or ())


#: The folders the runner writes its products into, below the output folder.
_PRODUCT_DIRS = ("calibrated", "solved", "stars", "quality", "stacks", "mosaics", "masters", "report")


def _not_searched(source, output, library):
    """
    The folders discovery leaves out: the output folder and the library.

    When the night itself lies inside the output folder (``astrophot run night -o .``, or the
    products beside the night's folder), only the runner's own product folders are left out:
    leaving out the whole output folder found no lights at all.
    """
    output = Path(output).resolve()
    if Path(source).resolve().is_relative_to(output):
        excluded = [output / name for name in _PRODUCT_DIRS]
    else:
        excluded = [output]
    return excluded + ([library] if library else [])


def plan_night(source, *, output, config=None, library=None, overrides=(), resume=True, prepare=True):
    """
    Discover and plan a night without running anything.

    Parameters are those of `process_night`.

    Returns
    -------
    NightPlan
        ``describe()`` gives the text ``astrophot run --plan`` prints.
    """
    from astrophot.calibration import CalibrationLibrary
    from astrophot.pipeline._discover import discover_files
    from astrophot.pipeline._plan import make_plan

    source, config = _source_dirs(source, config)
    config = _load(source, config, overrides)
    output = Path(output)
    if prepare and any(source.rglob("*.zip")):
        from astrophot.instruments.itelescope import prepare_download

        report = prepare_download(source)
        for problem in getattr(report, "errors", ()) or ():
            log.warning("prepare: %s", problem)
    files = discover_files(source, exclude=_not_searched(source, output, library))
    lib = CalibrationLibrary(library) if library else None
    return make_plan(source, files, output=output, config=config, library=lib, resume=resume)


def process_night(
    source, *, output, config=None, library=None, client=None, resume=True, overrides=(), progress=None
):
    """
    Process a night: from the downloaded folder (zips included) to calibrated
    and solved frames, stacks, line and colour images, and a report.

    Parameters
    ----------
    source : path-like
        A night folder as iTelescope delivers it (zips are extracted first with
        `~astrophot.instruments.itelescope.prepare_download`), a folder of FITS
        files, or a YAML configuration with a ``night:`` entry.
    output : path-like
        The output folder (created). Two runs on one folder are refused.
    config : path-like or dict, optional
        A YAML configuration (see ``astrophot run --print-config``) or a dict
        of sections.
    library : path-like, optional
        A calibration library (`~astrophot.CalibrationLibrary`); masters are
        built from the night's raw calibration frames where it has none.
    client : `dask.distributed.Client`, optional
        Run the per-frame work on this cluster (inputs and outputs must be on
        a filesystem its workers share). Without it the configuration's
        ``execution`` section decides (in this process by default).
    resume : bool, optional
        Keep products that are up to date (same inputs, function, parameters
        and version); False redoes everything.
    overrides : sequence of str, optional
        ``"stage.option=value"`` overrides (they win over ``config``).
    progress : callable or bool, optional
        Called as ``progress(stage, done, total)`` as work finishes; False
        reports nothing; None (default) follows ``execution.progress``: one
        bar per stage on a terminal (tqdm), log lines otherwise.

    Returns
    -------
    NightResult

    Raises
    ------
    astrophot.pipeline.OutputLockedError
        Another run holds the output folder.
    astrophot.pipeline.ConfigError
        A bad configuration.

    Examples
    --------
    >>> from astrophot.datasets import simulate_itelescope_night
    >>> from astrophot.pipeline import process_night
    >>> tmp = getfixture("tmp_path")
    >>> night = simulate_itelescope_night(tmp / "night", n_lights=1, shape=(96, 128),
    ...                                   filters=("Red",), seed=3)
    >>> result = process_night(night.download, output=tmp / "out", library=night.library,
    ...                        overrides=["solve.enabled=false", "report.enabled=false"])
    >>> [f["status"] for f in result.frames]
    ['done']
    """
    from astrophot.pipeline._progress import make_progress
    from astrophot.pipeline._state import OutputLock, remove_stale

    t0 = time.perf_counter()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    with OutputLock(output):
        handler = _log_file(output)
        try:
            remove_stale(output)
            plan = plan_night(
                source, output=output, config=config, library=library, overrides=overrides, resume=resume
            )
            plan.started = t0
            plan.progress = make_progress(progress, plan.config["execution"]["progress"])
            result = _execute(plan, client=client)
        finally:
            logging.getLogger("astrophot").removeHandler(handler)
            handler.close()
    result.seconds = time.perf_counter() - t0
    return result


def _log_file(output):
    handler = logging.FileHandler(Path(output) / "astrophot-run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("astrophot")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


def _runner(client, config):
    """A map function: local in this process, or on Dask (given or a local cluster)."""
    workers = config["execution"]["workers"]
    address = config["execution"]["scheduler"]
    owned = None
    if client is None and address:
        from dask.distributed import Client

        client = owned = Client(address)
    elif client is None and workers:
        from dask.distributed import Client, LocalCluster

        # one thread per worker process: the stages inside run single-threaded (astrophot._concurrency)
        cluster = LocalCluster(
            n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = owned = Client(cluster)
    if client is not None:
        log.info("Dask dashboard: %s", getattr(client, "dashboard_link", "n/a"))
    return client, owned


def _map(client, function, tasks, stage, progress):
    results = []
    if client is None:
        for i, task in enumerate(tasks, 1):
            results.append(function(task))
            progress(stage, i, len(tasks))
        return results
    from dask.distributed import as_completed

    futures = client.map(function, tasks, pure=False)
    index = {f.key: i for i, f in enumerate(futures)}
    results = [None] * len(tasks)
    for done, future in enumerate(as_completed(futures), 1):
        results[index[future.key]] = future.result()
        progress(stage, done, len(tasks))
    return results


def _masters(plan, client, result):
    """Build the night's masters in waves (bias, then dark, then flats and bad pixels); return failures."""
    from astrophot.pipeline._tasks import build_master

    t0 = time.perf_counter()
    failed = {}
    for wave in _MASTER_WAVES:
        tasks = [t for t in plan.master_tasks if t["kind"] in wave]
        for done in _map(client, build_master, tasks, "masters " + "/".join(wave), plan.progress):
            if done["status"] != "done":
                failed[done["output"]] = done["reason"]
    result.timings["masters"] = time.perf_counter() - t0
    return failed


def _frames(plan, client, result, failed_masters):
    from astrophot.pipeline._tasks import process_light

    tasks = []
    for task in plan.light_tasks:
        bad = [failed_masters[p] for p in task["inputs"].values() if p in failed_masters]
        if bad:
            plan.uncalibrated[task["inputs"]["raw"]] = f"the master built for it failed: {bad[0]}"
        else:
            tasks.append(task)
    t0 = time.perf_counter()
    if plan.config["calibrate"]["enabled"]:
        result.frames = _map(client, process_light, tasks, "frames", plan.progress)
    result.timings["frames (wall)"] = time.perf_counter() - t0
    for path, reason in plan.uncalibrated.items():
        result.frames.append(_not_run(path, "uncalibrated", f"no usable calibration: {reason}"))
    for path, reason in plan.corrupt.items():
        if not any(f["file"] == path for f in result.frames):
            result.frames.append(_not_run(path, "failed", f"unreadable: {reason}"))
    for frame in result.frames:
        for stage, seconds in frame.get("seconds", {}).items():
            if stage != "total":
                result.timings[stage] = result.timings.get(stage, 0.0) + seconds
    for kind in ("calibrated", "solved"):
        result.products[kind] = [f["products"][kind] for f in result.frames if kind in f["products"]]


def _execute(plan, *, client):
    from astrophot.pipeline._later import run_later_stages

    result = NightResult(output=plan.output, config=plan.config, masters=dict(plan.masters))
    for sub in ("calibrated", "solved", "stars", "quality", "masters", "stacks", "mosaics", "report/thumbs"):
        (plan.output / sub).mkdir(parents=True, exist_ok=True)
    _save_config(plan.output, plan.config)
    client, owned = _runner(client, plan.config)
    try:
        failed_masters = _masters(plan, client, result)
        _frames(plan, client, result, failed_masters)
        run_later_stages(plan, result, client)
    finally:
        if owned is not None:
            cluster = getattr(owned, "cluster", None)
            owned.close()
            if cluster is not None:
                cluster.close()
    _write_summary(plan.output, result)
    return result


def _not_run(path, status, reason):
    return {
        "file": str(path),
        "status": status,
        "reason": reason,
        "products": {},
        "made": [],
        "skipped": [],
        "seconds": {},
        "quality": None,
    }


def _save_config(output, config):
    import yaml

    from astrophot.io._atomic import write_text_atomic

    write_text_atomic(Path(output) / "config-used.yaml", yaml.safe_dump(config, sort_keys=False))


def _write_summary(output, result):
    from astrophot.io._atomic import write_text_atomic

    doc = {
        "frames": result.frames,
        "stages": result.stages,
        "masters": {k: list(v) for k, v in result.masters.items()},
        "timings": result.timings,
        "products": result.products,
    }
    write_text_atomic(Path(output) / "night.json", json.dumps(doc, indent=1, default=str))
