#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Run astrophot's benchmarks and print, for each, its time and the ratio against
its floor or peer tool measured in the same run.

Each ``benchmarks/bench_<topic>.py`` defines functions ``bench_*()`` that return
a dict (or a list of dicts) with at least ``name``, ``seconds`` and ``ratio``
(and usually ``floor_seconds`` or ``peer_seconds``, ``target`` and ``notes``).

Usage::

    python benchmarks/run.py                 # all
    python benchmarks/run.py combine astro   # only files/functions matching
    python benchmarks/run.py --json out.json

Benchmarks are run on demand, never in CI.
"""

import argparse
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("select", nargs="*", help="substrings of benchmark file or function names")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    results = []
    for path in sorted(HERE.glob("bench_*.py")):
        module = _load(path)
        for name in sorted(dir(module)):
            if not name.startswith("bench_") or not callable(getattr(module, name)):
                continue
            label = f"{path.stem}.{name}"
            if args.select and not any(s in label for s in args.select):
                continue
            print(f"running {label} ...", flush=True)
            t0 = time.perf_counter()
            try:
                out = getattr(module, name)()
            except Exception as exc:
                traceback.print_exc()
                out = {"name": label, "error": f"{type(exc).__name__}: {exc}"}
            for record in out if isinstance(out, list) else [out]:
                record.setdefault("name", label)
                record["wall_seconds"] = round(time.perf_counter() - t0, 3)
                results.append(record)

    print()
    print(f"{'benchmark':58s} {'seconds':>9s} {'ratio':>8s} {'target':>8s}  notes")
    for r in results:
        if "error" in r:
            print(f"{r['name']:58s} {'ERROR':>9s} {'':>8s} {'':>8s}  {r['error']}")
            continue
        ratio = r.get("ratio")
        ratio_text = f"{ratio:8.2f}" if isinstance(ratio, (int, float)) else f"{'-':>8s}"
        seconds = r.get("seconds")
        sec_text = f"{seconds:9.3f}" if isinstance(seconds, (int, float)) else f"{'-':>9s}"
        print(f"{r['name']:58s} {sec_text} {ratio_text} {str(r.get('target', '')):>8s}  {r.get('notes', '')}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
