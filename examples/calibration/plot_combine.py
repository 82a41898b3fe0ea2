"""
Master bias, dark and flat
==========================

Combine simulated raw bias, dark and flat frames into masters and compare them
with the camera's truth. The combiner reads each input once, band by band,
sorts each pixel's values and rejects outliers (cosmic rays) by sigma
clipping around the median with a robust spread.
"""

import matplotlib.pyplot as plt
import numpy as np

from astrophot.calibration import make_master_bias, make_master_dark, make_master_flat
from astrophot.datasets import make_bias_stack, make_dark_stack, make_flat_stack

shape = (200, 300)
biases, truth = make_bias_stack(12, shape=shape, read_noise=10.0, gain=1.5, seed=7)
camera = truth.detector
darks, _ = make_dark_stack(8, shape=shape, exposure=300, seed=7, detector=camera)
flats, _ = make_flat_stack(6, filter="Ha", exposure=20, shape=shape, seed=7, detector=camera)

bias = make_master_bias(biases)
dark = make_master_dark(darks, bias=bias)
flat = make_master_flat(flats, bias=bias, dark=dark)

###############################################################################
# The master bias recovers the fixed bias pattern; what is left is the read
# noise over the square root of the number of frames.

residual = bias.data - camera.bias
print(f"master bias noise {residual.std():.3f} ADU, expected {camera.read_noise_adu / np.sqrt(12):.3f} ADU")
print(dark.header["CALSTAT"], dark.exposure_time, "values rejected:", int(dark.n_rejected.sum()))

###############################################################################
# Cosmic rays hit single darks; the clipping rejects them, so the master dark
# shows only the hot pixels and the bad columns and row of the camera.

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
axes[0].imshow(residual, origin="lower", cmap="gray", vmin=-3, vmax=3)
axes[0].set_title("master bias - true bias (ADU)")
axes[1].imshow(dark.data, origin="lower", cmap="gray", vmin=0, vmax=40)
axes[1].set_title("master dark, bias removed (ADU)")
ratio = flat.data / camera.flats["Ha"]
axes[2].imshow(ratio / np.median(ratio), origin="lower", cmap="gray", vmin=0.99, vmax=1.01)
axes[2].set_title("master flat / true flat")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()
