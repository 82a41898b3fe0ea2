# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Remake ``docs/_static/quality_report.png``: the demo night's quality report, whole page,
at 1400 px in headless Chromium (the same call as ``tests/analysis/test_report_browser.py``).

Run from the repository root::

    PYTHONPATH=$PWD python docs/_make_report_screenshot.py [OUT.png] [--keep DIR]

It runs ``astrophot demo`` (without plate solving: the quality report needs none) into a
temporary folder (or ``--keep DIR``), writes the quality report of its selection into
``quality/`` there, then photographs ``quality/quality.html``.
"""

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.analysis._browser import CHROMIUM, console_lines, png_size, screenshot  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("out", nargs="?", default=ROOT / "docs" / "_static" / "quality_report.png", type=Path)
    parser.add_argument("--keep", type=Path, help="run the demo into this (new) folder and keep it")
    args = parser.parse_args(argv)
    if CHROMIUM is None:
        parser.error("chromium is not installed (.ci/run installs it)")

    from astrophot.analysis import write_quality_report
    from astrophot.pipeline.demo import run_demo

    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp) / "demo"
        result = run_demo(work, solve=False)
        page = Path(write_quality_report(result.quality, work / "quality", frames=result.calibrated)["html"])
        proc = screenshot(page, args.out.resolve(), Path(tmp) / "profile")
        if proc.returncode != 0 or not args.out.is_file():
            raise SystemExit(f"chromium failed: {proc.stderr[-2000:]}")
        if console_lines(proc):
            raise SystemExit(f"console messages: {console_lines(proc)}")
    width, height = png_size(args.out)
    print(f"{args.out}: {width} x {height} px")


if __name__ == "__main__":
    main()
