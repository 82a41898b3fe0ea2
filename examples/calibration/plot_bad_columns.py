"""
Bad columns and rows of a calibrated frame
==========================================

Bad columns whose extra charge changes from frame to frame survive dark
subtraction. `~astrophot.calibration.find_bad_columns` compares the median of
each column (and row) with its neighbours and prints YAML to paste into the
user's bad-pixel file, as in the seed's iterative workflow.
"""

import matplotlib.pyplot as plt
import numpy as np

from astrophot import CalibratedFrame
from astrophot.calibration import find_bad_columns, make_master_bias, make_master_dark
from astrophot.datasets import make_bias_stack, make_dark_stack, make_raw_frame

shape = (300, 400)
biases, truth = make_bias_stack(6, shape=shape, seed=5)
camera = truth.detector
bias = make_master_bias(biases)
dark = make_master_dark(make_dark_stack(6, shape=shape, exposure=300, seed=5, detector=camera)[0], bias=bias)
raw, light = make_raw_frame(shape=shape, exposure=300, seed=5, detector=camera)

calibrated = CalibratedFrame((raw.data - bias.data - dark.data) / camera.flats["Red"], unit="adu")
regions = find_bad_columns(calibrated)
print(regions.to_yaml())
print("truth (1-based): columns", [c + 1 for c in camera.bad_columns])
print("                 rows", [r + 1 for r in camera.bad_rows])

###############################################################################
# The column profile and its running median: the bad columns stand out.

profile = np.median(calibrated.data, axis=0)
fig, axes = plt.subplots(2, 1, figsize=(8, 5), layout="constrained")
low, high = np.percentile(calibrated.data, [5, 99])
axes[0].imshow(calibrated.data, origin="lower", cmap="gray", vmin=low, vmax=high)
axes[0].set_title("calibrated light")
axes[1].plot(np.arange(1, shape[1] + 1), profile, lw=0.8)
for column in regions.columns:
    axes[1].axvline(column, color="C3", lw=0.8, ls=":")
axes[1].set_xlabel("column (1-based, as ds9)")
axes[1].set_ylabel("median (ADU)")
plt.show()
