"""
A bad-pixel map from a master dark and user regions
===================================================

Hot and cold pixels stand out from the level of their column and row in the
master dark; whole bad columns and rows stand out from their neighbours; the
user adds regions in a YAML file, 1-based and inclusive as ds9 shows them.
"""

import matplotlib.pyplot as plt
import numpy as np

from astrophot import DQFlag
from astrophot.calibration import BadPixelRegions, find_bad_pixels, make_master_bias, make_master_dark
from astrophot.datasets import make_bias_stack, make_dark_stack

biases, truth = make_bias_stack(8, shape=(200, 300), seed=11)
camera = truth.detector
darks, _ = make_dark_stack(8, shape=(200, 300), exposure=300, seed=11, detector=camera)
dark = make_master_dark(darks, bias=make_master_bias(biases))

regions = BadPixelRegions.from_yaml(
    """
# dust seen in the Ha frames
bad_rectangles:
  - [150, 170, 40, 60]   # rows 150-170, columns 40-60 (1-based, inclusive)
"""
)
bpm = find_bad_pixels(dark, user_regions=regions)
print(bpm.provenance.steps[-1].outcome)
print("true hot pixels found:", np.mean(bpm.data[camera.hot_pixel_mask] != 0))
print("true bad columns:", [c + 1 for c in camera.bad_columns], "rows:", [r + 1 for r in camera.bad_rows])

###############################################################################
# The map, one colour per flag.

fig, ax = plt.subplots(figsize=(7, 4.6), layout="constrained")
ax.imshow(dark.data, origin="lower", cmap="gray", vmin=0, vmax=40)
layers = ((DQFlag.HOT, "red"), (DQFlag.BAD_COLUMN | DQFlag.BAD_ROW, "orange"), (DQFlag.USER, "cyan"))
for flag, colour in layers:
    y, x = np.nonzero(bpm.data & flag)
    ax.scatter(x, y, s=2, color=colour, label=" / ".join(DQFlag.describe(int(flag))))
ax.legend(loc="upper right", markerscale=4, fontsize="small")
ax.set_title("master dark and its bad-pixel map")
plt.show()
