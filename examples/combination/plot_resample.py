"""
Resample two frames onto one grid
=================================

Two simulated solved frames (TAN-SIP WCS, pointed a little apart) go onto the one
north-up grid `~astrophot.find_optimal_wcs` finds for both; `~astrophot.resample_frame`
returns each on that grid with a weight plane (the kernel mass from good input pixels).
A bad column in the first frame shows in its weight map only within the kernel's reach.
"""

import matplotlib.pyplot as plt
import numpy as np

from astrophot import DQFlag, SolvedFrame, find_optimal_wcs, resample_frame
from astrophot.datasets import make_solved_frame

first, truth = make_solved_frame(shape=(120, 160), n_stars=15, rotation=20.0, seed=1)
second, _ = make_solved_frame(shape=(120, 160), n_stars=15, rotation=-10.0, offset=(40.0, 25.0), seed=2)
flags = first.flags.copy()
flags[:, 60] |= np.uint32(DQFlag.BAD_COLUMN)
first = SolvedFrame(first, flags=flags)

grid = find_optimal_wcs([first, second])
print("grid shape:", grid[1])
outputs = [resample_frame(frame, grid, kernel="lanczos3") for frame in (first, second)]

fig, axes = plt.subplots(2, 2, figsize=(8, 6.5))
for column, out in enumerate(outputs):
    axes[0, column].imshow(out.data, origin="lower", cmap="gray", vmin=150, vmax=600)
    axes[0, column].set_title(f"frame {column + 1} on the common grid")
    axes[1, column].imshow(out.weight, origin="lower", cmap="viridis", vmin=0, vmax=1)
    axes[1, column].set_title("weight")
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()

# %%
# A star before and after: the brightest star of the first frame, in its own pixels and
# on the rotated output grid (found through its catalogue position and the target WCS).

star = truth.stars[np.argmax(truth.stars["flux"])]
x, y = int(round(star["x"])), int(round(star["y"]))
ox, oy = (int(round(float(v))) for v in grid[0].world_to_pixel_values(star["ra"].value, star["dec"].value))
fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.5))
left.imshow(first.data[y - 8 : y + 9, x - 8 : x + 9], origin="lower", cmap="magma")
left.set_title("input (its own grid)")
right.imshow(outputs[0].data[oy - 8 : oy + 9, ox - 8 : ox + 9], origin="lower", cmap="magma")
right.set_title("resampled (north up)")
fig.tight_layout()
plt.show()
