"""
Repairing bad pixels and columns
================================

`~astrophot.fix_bad_pixels` replaces flagged pixels by the median of their
good neighbours in a small box, and pixels of bad columns by interpolation
along their row. Repaired pixels get the ``REPAIRED`` bit and are no longer
masked; those with too few good neighbours stay flagged and masked.
"""

import matplotlib.pyplot as plt
import numpy as np
from astropy.nddata import StdDevUncertainty

from astrophot import CalibratedFrame, DQFlag, fix_bad_pixels

rng = np.random.default_rng(5)
y, x = np.mgrid[:60, :80]
truth = 200 + 2.0 * x + 5000 * np.exp(-((x - 40.3) ** 2 + (y - 30.6) ** 2) / (2 * 1.6**2))
data = rng.poisson(truth).astype(np.float32)
flags = np.zeros(data.shape, dtype=np.uint32)
data[:, 22] += 3000  # a hot column
flags[:, 22] = DQFlag.BAD_COLUMN
hot = rng.integers(0, data.size, 40)
data.flat[hot] += 20000
flags.flat[hot] |= np.uint32(DQFlag.HOT)
flags[5:12, 60:67] |= np.uint32(DQFlag.USER)  # a 7x7 region marked by the user: its centre is out of reach
frame = CalibratedFrame(data, unit="electron", flags=flags, uncertainty=StdDevUncertainty(np.sqrt(truth)))

fixed = fix_bad_pixels(frame, box=5, min_good=4)
outcome = fixed.provenance.steps[-1].outcome
print(outcome)
repaired = (fixed.flags & DQFlag.REPAIRED) != 0
error = (fixed.data - truth)[repaired] / np.sqrt(truth[repaired])
print(f"repaired pixels: median |error| {np.median(np.abs(error)):.2f} sigma")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), layout="constrained")
for ax, image, title in zip(
    axes, (frame.data, fixed.data, fixed.mask), ("flagged", "repaired", "still masked")
):
    ax.imshow(
        image,
        origin="lower",
        cmap="gray",
        vmin=None if image.dtype == bool else 150,
        vmax=None if image.dtype == bool else 600,
    )
    ax.set_title(title)
plt.show()
