"""
Rejecting cosmic rays
=====================

`~astrophot.reject_cosmic_rays` runs L.A.Cosmic (astroscrappy) with
parameters taken from the frame: the gain (1 for a frame in electrons), the
read noise (``RDNOISE`` written by `~astrophot.calibrate_frame`) and the PSF
FWHM measured on the stars (which sets how strictly star cores are spared).
The simulator records every cosmic-ray hit, so the result can be checked.
"""

import matplotlib.pyplot as plt
import numpy as np

from astrophot import BadPixelMap, DQFlag, calibrate_frame, reject_cosmic_rays
from astrophot.datasets import make_raw_frame

raw, truth = make_raw_frame(shape=(200, 300), seed=8, exposure=300, cosmic_ray_rate=300.0)
camera = truth.detector
# no masters here: the camera's true bias, dark and bad pixels stand in for them
bits = np.where(camera.hot_pixel_mask, np.uint32(DQFlag.HOT), np.uint32(0))
bits |= np.where(camera.bad_line_mask, np.uint32(DQFlag.BAD_COLUMN), np.uint32(0))
frame = calibrate_frame(raw, gain=truth.gain, read_noise=truth.read_noise, bad_pixels=BadPixelMap(bits))
frame.data[...] -= (camera.expected_dark(300) * truth.gain).astype(np.float32)

cleaned = reject_cosmic_rays(frame)
flagged = (cleaned.flags & DQFlag.COSMIC_RAY) != 0
strong = truth.cosmic_rays & (truth.cosmic_ray_electrons > 5 * frame.uncertainty.array)
outcome = cleaned.provenance.steps[-1].outcome
print(
    f"FWHM {outcome['fwhm']:.2f} px ({outcome['fwhm_source']}; true {truth.psf.fwhm}), objlim {outcome['objlim']:.1f}"
)
print(
    f"{flagged.sum()} pixels flagged; {np.mean(flagged[strong]):.1%} of the {strong.sum()} injected above 5 sigma"
)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
low, high = np.percentile(frame.data, [1, 99.5])
for ax, image, title in zip(axes[:2], (frame.data, cleaned.data), ("calibrated", "cosmic rays replaced")):
    ax.imshow(image, origin="lower", cmap="gray", vmin=low, vmax=high)
    ax.set_title(title)
axes[2].imshow(
    truth.cosmic_rays.astype(int) + 2 * flagged, origin="lower", cmap="viridis", interpolation="nearest"
)
axes[2].set_title("injected (1), flagged (2), both (3)")
plt.show()
