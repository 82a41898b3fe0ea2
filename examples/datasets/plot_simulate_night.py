"""
A simulated iTelescope night and its truth
==========================================

Simulate a small night on iTelescope T20 (binned 2x2, about 7 arcsec per
pixel) around M31, look at one raw light frame, and mark where the truth says
its stars are: real Tycho-2 stars (from the catalogue extract shipped with
astrophot) and faint synthetic ones.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from astropy.visualization import ImageNormalize, SqrtStretch, ZScaleInterval

import astrophot as ap
from astrophot.datasets import simulate_night

outdir = Path(tempfile.mkdtemp())
night = simulate_night(
    outdir,
    telescope="T20",
    target="M31",
    filters=("Red",),
    n_lights=2,
    shape=(300, 400),
    n_bias=3,
    n_darks=3,
    n_flats=3,
    bad_frames=("trailed",),
    seed=42,
)
for path in night.lights:
    print(path.name, "bad:", night.truth_for(path).bad_reason)
print(night.masters["dark"].name)

###############################################################################
# The raw file reads like any iTelescope download: 16-bit data, MaxIm DL
# header, no WCS yet. The truth holds the exact WCS, the PSF and the stars.

raw = ap.read_frame(night.lights[0])
truth = night.truth_for(night.lights[0])
print(raw.exposure_time, raw.filter, raw.binning, raw.date_obs.isot)
print(truth.psf)
print(truth.wcs.pixel_to_world(0, 0))

###############################################################################
# The raw light with the truth stars: circles for Tycho-2 stars, dots for the
# faint synthetic ones.

stars = truth.stars
real = ~stars["synthetic"]
norm = ImageNormalize(raw.data, interval=ZScaleInterval(), stretch=SqrtStretch())
fig, ax = plt.subplots(figsize=(8, 6))
ax.imshow(raw.data, origin="lower", cmap="gray", norm=norm)
ax.scatter(
    stars["x"][real],
    stars["y"][real],
    s=120,
    facecolors="none",
    edgecolors="tab:orange",
    label=f"Tycho-2 ({real.sum()})",
)
ax.scatter(stars["x"][~real], stars["y"][~real], s=4, color="tab:cyan", label=f"synthetic ({(~real).sum()})")
ax.set_xlim(-0.5, raw.shape[1] - 0.5)
ax.set_ylim(-0.5, raw.shape[0] - 0.5)
ax.set_title(f"{night.lights[0].name[:40]}...")
ax.legend(loc="upper right")
plt.show()

###############################################################################
# The camera (``night.detector``) knows its flat fields (vignetting, dust
# shadows), bias structure, hot pixels and bad columns; each light knows its
# PSF. The second light was made trailed on purpose: the same star in both.

trailed = night.truth_for(night.lights[1])
bright = stars[
    real
    & ~stars["saturated"]
    & (stars["x"] > 15)
    & (stars["x"] < 385)
    & (stars["y"] > 15)
    & (stars["y"] < 285)
]
star = bright[np.argmax(bright["flux"])]
x, y = int(round(star["x"])), int(round(star["y"]))
fig, axes = plt.subplots(1, 3, figsize=(11, 3.5))
axes[0].imshow(night.detector.flats["Red"], origin="lower", cmap="magma")
axes[0].set_title("truth flat field (Red)")
for ax, path, label in ((axes[1], night.lights[0], "good"), (axes[2], night.lights[1], "trailed")):
    cut = ap.read_frame(path).data[y - 12 : y + 13, x - 12 : x + 13]
    ax.imshow(cut, origin="lower", cmap="gray")
    psf = night.truth_for(path).psf
    ax.set_title(f"{label}: FWHM {psf.fwhm:.1f} px, e = {psf.ellipticity:.2f}")
print("hot pixels:", len(night.detector.hot_pixels), "bad columns:", night.detector.bad_columns)
print("trailed frame PSF:", trailed.psf)
plt.show()
