"""
Stars and the PSF of a frame
============================

`~astrophot.analysis.find_stars` finds the stars of a calibrated frame and fits
each with an elliptical Moffat profile; `~astrophot.analysis.measure_psf`
summarises the PSF and how it varies across the field. The frame is simulated
(real Tycho-2 stars, a Moffat PSF of known FWHM and ellipticity), so the
result can be compared with the truth.
"""

import matplotlib.pyplot as plt
import numpy as np

from astrophot import CalibratedFrame
from astrophot.analysis import StarFlag, find_stars, measure_psf
from astrophot.datasets import make_raw_frame

raw, truth = make_raw_frame(shape=(400, 600), fwhm=3.2, ellipticity=0.15, theta=35.0, seed=4)

# A perfect calibration from the simulation's truth keeps this example short
# (see astrophot.reduction.calibrate_frame for the real thing).
camera = truth.detector
electrons = (raw.data - camera.expected_dark(truth.exposure)) * camera.gain / camera.flats[truth.filter]
frame = CalibratedFrame(electrons, unit="electron", meta=raw.meta)

stars = find_stars(frame)
psf = measure_psf(frame, stars=stars)
print(stars["id", "x", "y", "flux", "snr", "fwhm", "ellipticity", "flags"][:8])
print(
    f"{len(stars)} stars; PSF FWHM {psf.fwhm:.2f} px = {psf.fwhm_arcsec:.1f} arcsec "
    f"(truth {truth.psf.fwhm}), ellipticity {psf.ellipticity:.3f} (truth {truth.psf.ellipticity}), "
    f"angle {psf.theta:.1f} deg (truth {truth.psf.theta}), beta {psf.beta:.2f}"
)

###############################################################################
# The stars on the image (flagged ones in red) and the FWHM across the field.

fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained", width_ratios=[3, 1.2])
low, high = np.percentile(frame.data, [5, 99.5])
axes[0].imshow(frame.data, origin="lower", cmap="gray", vmin=low, vmax=high)
clean = stars["flags"] == 0
axes[0].scatter(stars["x"][clean], stars["y"][clean], s=30, facecolors="none", edgecolors="lime", lw=0.6)
axes[0].scatter(stars["x"][~clean], stars["y"][~clean], s=30, facecolors="none", edgecolors="red", lw=0.6)
axes[0].set_title("find_stars: unflagged (green), flagged (red)")
im = axes[1].imshow(psf.fwhm_grid, origin="lower", cmap="viridis")
for (row, col), value in np.ndenumerate(psf.fwhm_grid):
    axes[1].text(col, row, f"{value:.2f}\n({psf.n_grid[row, col]})", ha="center", va="center", color="w")
axes[1].set_title("median FWHM per cell (stars)")
fig.colorbar(im, ax=axes[1], shrink=0.8)
plt.show()

###############################################################################
# Flags tell why a star is not used for the PSF.

for flag in StarFlag:
    print(f"{flag.name:12s} {int(np.sum(stars['flags'] & flag != 0)):4d}")
