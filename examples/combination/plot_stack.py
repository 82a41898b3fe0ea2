"""
Stack a simulated night with a satellite trail
==============================================

Eight dithered 60-second lights of one field (`~astrophot.datasets.make_dithered_frames`:
known stars, sky and noise), with cosmic rays in every frame and a satellite trail across
the first, go through `~astrophot.stack_frames` with its defaults: the first frame's grid,
``rejection="auto"`` (winsorized sigma clipping for 7-14 frames), sky and transparency
normalisation, noise weights. The trail and the cosmic rays are gone from the stack and
show in its rejection map (``REJHIGH``: how many values each pixel lost above the limits);
the coverage map counts the frames each pixel kept.
"""

import matplotlib.pyplot as plt
import numpy as np

from astrophot import stack_frames
from astrophot.datasets import make_dithered_frames

frames, truth = make_dithered_frames(8, shape=(120, 150), star_density=8000.0, seed=7)
stack = stack_frames(frames)
print(
    stack.header["NCOMBINE"],
    "frames,",
    stack.header["EXPTIME"],
    "s; rejection:",
    stack.combination["rejection"],
)
for record in stack.combination["frames"][:3]:
    print(
        f"{record['file']}: weight {record['weight']:.2f}, rejected {100 * record['rejected_fraction']:.2f} %"
    )

first = frames[0].data / truth.exposure[0]  # electrons per second, as the stack
limits = np.nanpercentile(stack.data, [5, 99.5])
fig, axes = plt.subplots(2, 2, figsize=(8, 6.6))
panels = [
    (first, "frame 1 (trail, cosmic rays)", "gray", limits),
    (stack.data, "stack of 8", "gray", limits),
    (stack.rejected_high, "REJHIGH: values rejected high", "magma", (0, 2)),
    (stack.coverage, "COVERAGE: frames kept", "viridis", (0, 8)),
]
for ax, (image, title, cmap, (lo, hi)) in zip(axes.flat, panels, strict=True):
    shown = ax.imshow(image, origin="lower", cmap=cmap, vmin=lo, vmax=hi)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(shown, ax=ax, shrink=0.8)
fig.tight_layout()
plt.show()

# %%
# The noise of the stack: one frame's sky noise on the grid against the stack's, which
# the weights predict (about 1/sqrt(8) of one frame's for nearly equal weights).

sky = (truth.expected[0] / truth.exposure[0] - truth.sky_rate[0] < 0.02) & (stack.coverage == 8)
one = np.std(first[sky])
print(
    f"sky noise: one frame {one:.3f}, stack {np.std(stack.data[sky]):.3f} e-/s, "
    f"predicted {np.sqrt(np.mean(stack.uncertainty.array[sky] ** 2)):.3f} e-/s"
)
plt.show()
