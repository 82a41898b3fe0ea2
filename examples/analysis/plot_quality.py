"""
Grading a night: which frames to stack
======================================

`~astrophot.analysis.assess_quality` measures each frame (FWHM, ellipticity,
stars, background, transparency, limiting magnitude);
`~astrophot.analysis.select_frames` rejects the outliers of the night with the
reason and weights the rest; `~astrophot.analysis.write_quality_report` writes
a CSV, plots and an HTML page with a thumbnail of every frame. The night is
simulated with a defocused, a trailed and a clouded frame.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from astrophot import CalibratedFrame, read_frame
from astrophot.analysis import assess_quality, select_frames, write_quality_report
from astrophot.datasets import simulate_night

workdir = Path(tempfile.mkdtemp())
night = simulate_night(
    workdir / "night",
    filters=("Red",),
    n_lights=7,
    shape=(200, 300),
    n_bias=2,
    n_darks=2,
    n_flats=2,
    bad_frames=("defocused", "trailed", "clouded"),
    seed=3,
)
camera = night.detector
frames = []
for path in night.lights:
    raw = read_frame(path)
    truth = night.truth_for(path)
    electrons = (raw.data - camera.expected_dark(truth.exposure)) * camera.gain / camera.flats[truth.filter]
    frames.append(CalibratedFrame(electrons, unit="electron", meta=raw.meta, source_path=str(path)))

records = [assess_quality(frame) for frame in frames]
table = select_frames(records)
for row, path in zip(table, night.lights):
    reason = night.truth_for(path).bad_reason or "good"
    verdict = "accepted" if row["accepted"] else f"REJECTED: {row['reason']}"
    print(
        f"{reason:10s} fwhm {row['fwhm']:5.2f}  stars {row['n_stars']:3d}  weight {row['weight']:.2f}  {verdict}"
    )

paths = write_quality_report(table, workdir / "report", frames=frames)
print("report:", paths["html"])

###############################################################################
# The night at a glance.

hours = (table["mjd"] - table["mjd"].min()) * 24
fig, axes = plt.subplots(1, 3, figsize=(12, 3), layout="constrained")
for ax, column in zip(axes, ("fwhm", "ellipticity", "transparency")):
    ok = np.asarray(table["accepted"])
    ax.plot(hours[ok], table[column][ok], "o", label="accepted")
    ax.plot(hours[~ok], table[column][~ok], "x", color="red", ms=9, label="rejected")
    ax.set_xlabel("hours")
    ax.set_title(column)
axes[0].legend()
