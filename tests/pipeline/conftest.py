# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Fixtures of the night-runner tests, built once per test session.

A simulated night and one ``astrophot run`` of it are what most tests read;
under ``pytest -n 2`` each worker would build its own module fixture, so they
are made once under a lock in the session's shared temporary folder (the
recipe pytest-xdist documents) and every worker reads them.
"""

import fcntl
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from astrophot.datasets import simulate_itelescope_night

SHAPE = (160, 240)
#: The options of every full run in these tests (cosmic rays on; no name resolution: no network).
RUN = ["cosmic_rays.enabled=true", "metadata.enabled=false"]


def env():
    """The environment for subprocesses: this tree first on the path."""
    environ = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    environ["PYTHONPATH"] = os.pathsep.join([root, environ.get("PYTHONPATH", "")])
    return environ


def cli(*args):
    """The command line of ``astrophot ARGS`` in a fresh interpreter."""
    code = "import sys; from astrophot.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, *args]


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory):
    """A folder shared by every xdist worker of this session."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    root = base / "pipeline-shared"
    root.mkdir(exist_ok=True)
    return root


@contextmanager
def _locked(path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def once(root, name, build):
    """``build(folder)`` once per session (across workers); returns its JSON-able result."""
    folder = root / name
    done = root / f"{name}.done.json"
    with _locked(root / f"{name}.lock"):
        if not done.exists():
            folder.mkdir(exist_ok=True)
            done.write_text(json.dumps(build(folder)))
    return folder, json.loads(done.read_text())


@pytest.fixture(scope="session")
def night(shared_root):
    """Three filters (Ha, Red, V), one light each, zipped; a calibration library."""

    def build(folder):
        simulate_itelescope_night(folder / "night", n_lights=1, shape=SHAPE, seed=5)
        return {}

    folder, _ = once(shared_root, "night", build)
    # a night simulated before is loaded, not simulated again
    return simulate_itelescope_night(folder / "night", n_lights=1, shape=SHAPE, seed=5)


def copy_download(night, folder):
    """A private copy of the zipped download (a run extracts its zips in place)."""
    import shutil

    download = Path(folder) / "download"
    shutil.copytree(night.download, download)
    return download


@pytest.fixture(scope="session")
def cli_run(night, shared_root):
    """
    One ``astrophot run`` of the zipped night in a real process.

    Returns ``(proc, out, seconds)``: ``proc`` has ``returncode``, ``stdout``
    and ``stderr``.
    """

    def build(folder):
        download = copy_download(night, folder)
        sets = sum((["--set", s] for s in RUN), [])
        t0 = time.perf_counter()
        proc = subprocess.run(
            cli("run", str(download), "-o", str(folder / "out"), "--library", str(night.library), *sets),
            capture_output=True,
            text=True,
            env=env(),
            timeout=900,
        )
        seconds = time.perf_counter() - t0
        return {
            "returncode": proc.returncode,
            "stdout": proc.stdout,
            "stderr": proc.stderr,
            "seconds": seconds,
        }

    folder, done = once(shared_root, "cli-run", build)
    proc = subprocess.CompletedProcess([], done["returncode"], done["stdout"], done["stderr"])
    return proc, folder / "out", done["seconds"]
