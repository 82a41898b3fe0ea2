# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The astrometry.net engine's search, run as a separate program.

`astrophot.astrometry._engine` starts this file with the current Python
interpreter (``python _engine_child.py``: astrophot itself is not imported),
sends the search as one JSON document on standard input and reads the answer,
one JSON document, from standard output. The C search cannot be interrupted
from Python; a separate program can be killed at the time limit from any
caller, including a daemonic Dask worker (where ``multiprocessing`` may not
start children) and a threaded one (where ``fork`` is unsafe).

Protocol: the child writes ``ready`` and a newline once the engine is imported,
then ``{"status": "ok", "result": ...}`` or ``{"status": "error", "message": ...}``.
"""

import json
import logging
import os
import sys
from pathlib import Path


def run_search(index_paths, xy, scale_range, position, sip_order):
    """Solve in this process; returns a plain dict (JSON-able) or None."""
    import astrometry

    logging.getLogger("astrometry").setLevel(logging.WARNING)
    size_hint = None
    if scale_range is not None:
        size_hint = astrometry.SizeHint(
            lower_arcsec_per_pixel=scale_range[0], upper_arcsec_per_pixel=scale_range[1]
        )
    position_hint = None
    if position is not None:
        position_hint = astrometry.PositionHint(
            ra_deg=position[0] % 360.0, dec_deg=position[1], radius_deg=position[2]
        )
    parameters = astrometry.SolutionParameters(
        sip_order=sip_order,
        tune_up_logodds_threshold=None if sip_order == 0 else 14.0,
        logodds_callback=lambda logodds: astrometry.Action.STOP,
    )
    with astrometry.Solver([Path(p) for p in index_paths]) as solver:
        solution = solver.solve(
            stars=xy, size_hint=size_hint, position_hint=position_hint, solution_parameters=parameters
        )
    if not solution.has_match():
        return None
    match = solution.best_match()
    return {
        "wcs_fields": {k: (v[0], v[1]) for k, v in match.wcs_fields.items()},
        "index": str(match.index_path),
        "logodds": float(match.logodds),
        "stars": [(s.ra_deg, s.dec_deg) for s in match.stars],
    }


def main():
    # the answer goes to the original standard output; anything else printed (C code too) to stderr
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        import astrometry  # noqa: F401 - imported before 'ready': its import is not search time

        answer.write("ready\n")
        answer.flush()
        args = json.loads(sys.stdin.read())
        reply = {"status": "ok", "result": run_search(*args)}
    except BaseException as exc:  # every failure is reported to the parent
        reply = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
    answer.write(json.dumps(reply) + "\n")
    answer.flush()


if __name__ == "__main__":
    main()
