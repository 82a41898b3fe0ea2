"""
Grading a night: which frames to stack
======================================

From raw files as a night gives them: master bias, dark and flat from the raw
calibration frames, every light calibrated and cleaned of cosmic rays, then
`~astrophot.analysis.assess_quality` measures each frame (FWHM, ellipticity,
stars, background, transparency, limiting magnitude),
`~astrophot.analysis.select_frames` rejects the outliers of the night with the
reason and weights the rest, and `~astrophot.analysis.write_quality_report`
writes a CSV, plots and an HTML page with a thumbnail of every frame. With your
own night, replace the simulated file lists by your own paths (``sorted(glob(...))``).
The simulated night has a defocused, a trailed and a clouded frame.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from astrophot import calibrate_frame, prepare_calibration, read_frame, reject_cosmic_rays, write_frame
from astrophot.analysis import assess_quality, select_frames, write_quality_report
from astrophot.calibration import make_master_bias, make_master_dark, make_master_flat
from astrophot.datasets import simulate_night

workdir = Path(tempfile.mkdtemp())
night = simulate_night(
    workdir / "night",
    filters=("Red",),
    n_lights=7,
    shape=(200, 300),
    n_bias=5,
    n_darks=5,
    n_flats=5,
    bad_frames=("defocused", "trailed", "clouded"),
    seed=3,
)

# the raw files: night.biases, night.darks, night.flats["Red"], night.lights (lists of paths)
bias = make_master_bias([read_frame(p) for p in night.biases])
dark = make_master_dark([read_frame(p) for p in night.darks], bias=bias)
flat = make_master_flat([read_frame(p) for p in night.flats["Red"]], bias=bias, dark=dark)
plan = prepare_calibration(bias=bias, dark=dark, flat=flat)

(workdir / "cal").mkdir()
calibrated = []
for path in night.lights:
    frame = reject_cosmic_rays(calibrate_frame(read_frame(path), plan=plan))
    calibrated.append(write_frame(frame, workdir / "cal" / f"cal-{path.stem}.fits"))

records = [assess_quality(read_frame(path)) for path in calibrated]
table = select_frames(records)
for row, path in zip(table, night.lights):
    reason = night.truth_for(path).bad_reason or "good"  # the simulation's truth, to compare
    verdict = "accepted" if row["accepted"] else f"REJECTED: {row['reason']}"
    print(f"{reason:10s} fwhm {row['fwhm']:5.2f}  stars {row['n_stars']:3d}  {verdict}")

paths = write_quality_report(table, workdir / "report", frames=calibrated)
print("report:", paths["html"].name)

###############################################################################
# The same from the command line, for a folder of raw files::
#
#     astrophot combine --help                # masters from the raw bias/dark/flat frames
#     astrophot calibrate raw-*.fit --bias ... --dark ... --flat ... --cosmic-rays -o cal
#     astrophot quality cal -o report
#
# The night at a glance.

hours = (table["mjd"] - table["mjd"].min()) * 24
fig, axes = plt.subplots(1, 3, figsize=(10, 3), layout="constrained")
for ax, column in zip(axes, ("fwhm", "ellipticity", "transparency")):
    ok = np.asarray(table["accepted"])
    ax.plot(hours[ok], table[column][ok], "o", label="accepted")
    ax.plot(hours[~ok], table[column][~ok], "x", color="red", ms=9, label="rejected")
    ax.set_xlabel("hours")
    ax.set_title(column)
axes[0].legend()
plt.show()
