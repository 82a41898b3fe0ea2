# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The README's stage-by-stage command sequence, read from README.rst and run as written (in
bash, on a simulated night) gives right numbers: the FWHM of the simulation's PSF (not that of
cosmic rays), a finite airmass, every frame solved, the defocused frame rejected.
"""

import csv
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[2] / "README.rst"


def readme_commands():
    """The ``astrophot ...`` lines of the README's "same by hand" block (continuations joined)."""
    text = README.read_text()
    start = text.index("The same by hand")
    block = text[text.index(".. code-block:: bash", start) :].split("\n\n", 2)[1]
    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in joined.splitlines():
        line = line.split("  #")[0].strip()
        if line.startswith("astrophot "):
            commands.append(line)
    return commands


def test_the_readme_block_is_found():
    commands = readme_commands()
    assert [c.split()[1] for c in commands] == [
        "prepare",
        "calibrate",
        "add-metadata",
        "find-stars",
        "solve",
        "quality",
        "info",
    ]


def test_the_readme_first_command_is_one_line_installing_and_running_the_demo():
    text = README.read_text()
    block = text[text.index(".. code-block:: bash") :].split("\n\n", 2)[1]
    first = block.splitlines()[0].split("  #")[0].strip()
    assert first == 'pip install -e ".[test]" && astrophot demo demo-output'
    assert "demo-output/products/report/night.html" in text  # where the demo's report is, said


@pytest.mark.slow
def test_readme_sequence_gives_right_numbers(tmp_path):
    from astrophot import read_frame
    from astrophot.datasets import simulate_night

    night = simulate_night(
        tmp_path / "night",
        filters=("Red",),
        n_lights=3,
        shape=(300, 400),
        bad_frames=("defocused",),
        n_bias=3,
        n_darks=3,
        n_flats=3,
        seed=11,
    )
    night_dir = night.lights[0].parent
    script = [f'astrophot() {{ {shlex.quote(sys.executable)} -m astrophot.cli.main "$@"; }}', "set -e"]
    for command in readme_commands():
        command = command.replace("NIGHT_DIR", str(night_dir)).replace("CAL_LIBRARY", str(night.library))
        script.append(command.replace("FILE...", "solved/*.fits"))
    proc = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr

    solved = sorted((tmp_path / "solved").glob("nav-*.fits"))
    assert len(solved) == len(night.lights)
    with open(tmp_path / "quality" / "quality.csv") as handle:
        rows = {Path(row["file"]).name: row for row in csv.DictReader(handle)}
    assert len(rows) == len(night.lights)
    for path in night.lights:
        truth = night.truth_for(path)
        name = next(n for n in rows if n.endswith(path.stem + ".fits") or path.stem[4:] in n)
        row = rows[name]
        assert np.isfinite(float(row["airmass"])) and float(row["airmass"]) >= 1.0, row
        if truth.bad_reason is None:
            # the PSF's FWHM, not the cosmic rays' (the README's sequence cleans them first)
            assert float(row["fwhm"]) == pytest.approx(truth.psf.fwhm, rel=0.15), row
            assert row["accepted"] == "True", row
        else:
            assert row["accepted"] == "False", row
    frame = read_frame(solved[0])
    assert np.isfinite(frame.header["AIRMASS"])
