# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Command-line start-up: ``astrophot --help`` and ``astrophot info FILE`` with
``python -X importtime``.

"astrophot's own imports" are the import time of everything below the
``astrophot`` entries of the importtime report (the modules the CLI and what it
needs import), measured against the floor ``python -c pass`` in the same run.
Each figure is the best of ``REPEAT`` runs (the machine may be loaded).
Set ``ASTROPHOT_BEFORE=/path/to/old/tree`` to measure an older tree (for
"before" figures) in the same run.

    python benchmarks/run.py cli
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEAT = 5
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _run(args, tree):
    # run outside every tree: ``python -m`` puts the working directory first on the path, so
    # run from a checkout it would import that checkout, not ``tree``
    env = dict(os.environ, PYTHONPATH=str(tree))
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tempfile.gettempdir(),
    )
    wall = time.perf_counter() - start
    own = 0
    for match in _LINE.finditer(proc.stderr):
        cumulative, indent, name = int(match.group(2)), len(match.group(3)), match.group(4)
        if indent == 1 and (name == "astrophot" or name.startswith("astrophot.")):
            own += cumulative
        elif indent == 1 and name not in ("site", "encodings", "_frozen_importlib_external"):
            own += cumulative if _after_astrophot(proc.stderr, match.start()) else 0
    return wall, own / 1e6, proc


def _after_astrophot(text, position):
    """A top-level import that happened after astrophot started (lazily, inside a command)."""
    first = re.search(r"\|\s+astrophot[.\n]", text)
    return first is not None and position > first.start()


def _frame(directory):
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from astrophot import CalibratedFrame, write_frame
    from astrophot.provenance import start_step

    frame = CalibratedFrame(np.ones((100, 150), dtype=np.float32), meta={"EXPTIME": 60.0, "FILTER": "Red"})
    frame = start_step("calibrate_frame", parameters={}).finish(frame)
    return write_frame(frame, Path(directory) / "cal-bench.fits")


def imported_from(tree):
    """The ``astrophot`` package a run with ``tree`` on the path imports (as `_run` runs it)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import astrophot; print(astrophot.__file__)"],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(tree)),
        check=True,
        cwd=tempfile.gettempdir(),
    )
    return Path(proc.stdout.strip()).resolve().parents[1]


def _best(args, tree):
    runs = [_run(args, tree) for _ in range(REPEAT)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def bench_cli_startup():
    """``astrophot --help`` and ``astrophot info FILE``: wall time and astrophot's own imports."""
    here = Path(__file__).resolve().parents[1]
    trees = {"after": here}
    if os.environ.get("ASTROPHOT_BEFORE"):
        trees["before"] = Path(os.environ["ASTROPHOT_BEFORE"])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = _frame(tmp)
        floor_wall, _, _ = _best(["-c", "pass"], here)
        for label, tree in trees.items():
            assert imported_from(tree) == Path(tree).resolve(), f"{label}: not measuring {tree}"
            for name, args in (
                ("--help", ["-m", "astrophot.cli.main", "--help"]),
                ("info FILE", ["-m", "astrophot.cli.main", "info", str(path)]),
            ):
                wall, own, proc = _best(args, tree)
                assert proc.returncode == 0, proc.stderr[-500:]
                results.append(
                    {
                        "name": f"astrophot {name} ({label})",
                        "seconds": wall,
                        "floor_seconds": floor_wall,
                        "ratio": wall / floor_wall,
                        "own_import_seconds": own,
                        "target": "astrophot's own imports well under 1 s",
                        "notes": f"best of {REPEAT}; own imports {own:.3f} s; python -c pass {floor_wall:.3f} s",
                    }
                )
    return results


if __name__ == "__main__":  # pragma: no cover
    for row in bench_cli_startup():
        print(
            f"{row['name']:32s} wall {row['seconds']:.3f} s  own imports {row['own_import_seconds']:.3f} s  ({row['notes']})"
        )
