"""
Calibrating a light frame, with its uncertainty
===============================================

`~astrophot.calibrate_frame` removes the bias and the scaled dark, divides by
the normalised flat and converts to electrons. Each pixel gets an uncertainty
(Poisson, read noise and the masters' own uncertainties) and data-quality
flags. With a simulated camera the truth is known, so the calibration can be
checked: (calibrated - true electrons) / uncertainty should be a unit normal.
"""

import matplotlib.pyplot as plt
import numpy as np

from astrophot import calibrate_frame
from astrophot.calibration import find_bad_pixels, make_master_bias, make_master_dark, make_master_flat
from astrophot.datasets import make_bias_stack, make_dark_stack, make_flat_stack, make_raw_frame

shape, seed = (200, 300), 3
bias = make_master_bias(make_bias_stack(9, shape=shape, seed=seed)[0])
dark = make_master_dark(make_dark_stack(9, shape=shape, seed=seed, exposure=300)[0])  # bias left in: 'M'
flat = make_master_flat(make_flat_stack(9, shape=shape, seed=seed, filter="Red")[0], bias=bias, dark=dark)
bad_pixels = find_bad_pixels(
    make_master_dark(make_dark_stack(9, shape=shape, seed=seed, exposure=300)[0], bias=bias)
)
raw, truth = make_raw_frame(shape=shape, seed=seed, exposure=300, filter="Red")

calibrated = calibrate_frame(
    raw, bias=bias, dark=dark, flat=flat, bad_pixels=bad_pixels, gain=truth.gain, read_noise=truth.read_noise
)
print(dark.header["CALSTAT"], calibrated.header["CALSTAT"], calibrated.unit)
print({k: v for k, v in calibrated.provenance.steps[-1].outcome.items() if k.startswith("n_")})

###############################################################################
# The truth: sky and stars in electrons, as the normalised flat leaves them.

camera = truth.detector
true_flat = camera.flats["Red"]
true_electrons = (truth.noiseless - camera.dark_current * 300) / true_flat * np.median(true_flat)
good = ~calibrated.mask & ~truth.cosmic_rays & ~camera.bad_line_mask
pull = (calibrated.data - true_electrons) / calibrated.uncertainty.array
print(f"pull: mean {pull[good].mean():+.3f}, std {pull[good].std():.3f} over {good.sum()} pixels")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
low, high = np.percentile(raw.data, [1, 99.5])
axes[0].imshow(raw.data, origin="lower", cmap="gray", vmin=low, vmax=high)
axes[0].set_title("raw (ADU)")
low, high = np.percentile(calibrated.data, [1, 99.5])
axes[1].imshow(calibrated.data, origin="lower", cmap="gray", vmin=low, vmax=high)
axes[1].contour(calibrated.mask, levels=[0.5], colors="red", linewidths=0.5)
axes[1].set_title("calibrated (electrons), masked in red")
bins = np.linspace(-5, 5, 81)
axes[2].hist(pull[good], bins=bins, density=True, histtype="step", label="(calibrated - truth) / uncertainty")
axes[2].plot(bins, np.exp(-0.5 * bins**2) / np.sqrt(2 * np.pi), label="unit normal")
axes[2].legend(fontsize="small")
axes[2].set_title("pulls")
plt.show()
