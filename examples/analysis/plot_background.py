"""
Sky background, with a nebula protected
=======================================

`~astrophot.analysis.estimate_background` models the smooth sky with the stars
masked. Extended emission is not sky: given as ``protect`` (a mask or a ds9
region file), it is interpolated over instead of measured, so that
`~astrophot.analysis.subtract_background` keeps it.
"""

import matplotlib.pyplot as plt
import numpy as np

from astrophot import CalibratedFrame
from astrophot.analysis import estimate_background, subtract_background
from astrophot.datasets import make_raw_frame
from astrophot.datasets._model import sky_image

raw, truth = make_raw_frame(shape=(400, 600), fwhm=3.0, sky_slope=(0.08, 0.04), seed=9)
camera = truth.detector
electrons = (raw.data - camera.expected_dark(truth.exposure)) * camera.gain / camera.flats[truth.filter]
sky = sky_image(raw.shape, truth.sky_level, truth.sky_slope)

# add a faint nebula (60 e- at its centre)
yy, xx = np.mgrid[0 : raw.shape[0], 0 : raw.shape[1]]
nebula = 60.0 * np.exp(-0.5 * (((xx - 380) / 60.0) ** 2 + ((yy - 220) / 50.0) ** 2))
frame = CalibratedFrame(electrons + nebula, unit="electron", meta=raw.meta)

plain, rms = estimate_background(frame)
region = "image\nellipse(381,221,200,170,0)\n"  # ds9 region, 1-based pixels
protected, _ = estimate_background(frame, protect=region)
print(
    f"sky noise {np.median(rms.data):.1f} e-; background error: "
    f"max {np.abs(protected.data - sky).max():.2f} e- with the nebula protected, "
    f"{np.abs(plain.data - sky).max():.1f} e- without"
)

cleaned = subtract_background(frame, protected)

###############################################################################
# The nebula survives the subtraction only when protected.

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
for ax, image, title in zip(
    axes,
    (frame.data, plain.data - sky, cleaned.data),
    ("frame", "unprotected model - true sky", "frame - protected model"),
):
    low, high = np.percentile(image, [2, 99])
    ax.imshow(image, origin="lower", cmap="gray", vmin=low, vmax=high)
    ax.set_title(title)
