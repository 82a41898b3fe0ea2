"""
A 2x2 mosaic, before and after background matching
===================================================

Four simulated pointings of one field overlap by a quarter of a frame along each
axis. Each frame has its own sky: an offset of up to 0.9 electrons per second per
pixel (several sigma of the sky noise) and a gradient, as a night's changing Moon and
twilight give. A nebula sits in the overlap of the first two frames.

`~astrophot.combination.match_backgrounds` fits each frame's star-masked sky model
(the nebula protected: left out and interpolated under), fits the difference of every
overlapping pair by a plane and solves all the overlaps at once for one plane per
frame; `~astrophot.make_mosaic` subtracts those planes while it combines the frames.
Without matching the seams show; with it they are below the noise.
"""

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.stats import mad_std

from astrophot import find_optimal_wcs, make_mosaic
from astrophot.combination import match_backgrounds
from astrophot.datasets import make_mosaic_frames

frames, truth = make_mosaic_frames(seed=0)
grid = find_optimal_wcs(frames)
nebula = (SkyCoord(truth.nebula["ra"] * u.deg, truth.nebula["dec"] * u.deg), 40 * u.arcsec)

match = match_backgrounds(frames, *grid, protect=nebula)
print(match)
for overlap in match.overlaps:
    print(
        "{} / {}: sky difference {:.1f} e- before, {:.2f} e- after ({:.2f} sigma)".format(
            *overlap["frames"], overlap["before"], overlap["after"], overlap["after_sigma"]
        )
    )

plain = make_mosaic(frames, wcs=grid, match_background=None, kernel="bilinear")
matched = make_mosaic(frames, wcs=grid, match_background=match, kernel="bilinear")

# %%
# The two mosaics on one stretch: the unmatched one shows the frames' outlines.

noise = mad_std(matched.data, ignore_nan=True)  # electrons per second, like the mosaics
fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
for ax, image, title in zip(axes, (plain, matched), ("no matching", "planes matched")):
    level = np.nanmedian(image.data)
    ax.imshow(image.data - level, origin="lower", cmap="gray", vmin=-4 * noise, vmax=6 * noise)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()

# %%
# The seam maps (the spread of the frames' sky models where they overlap, in sigma of
# the sky noise) before and after: what the report shows.

sky_noise = float(np.median(match.sky_rms))  # the match is in the frames' electrons
fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
extent = (match.x[0], match.x[-1], match.y[0], match.y[-1])
for ax, corrected, title in zip(axes, (False, True), ("seams before", "seams after")):
    shown = ax.imshow(
        match.seam_map(corrected) / sky_noise, origin="lower", cmap="magma", vmin=0, vmax=3, extent=extent
    )
    ax.set_title(title)
fig.colorbar(shown, ax=axes, label="sigma of the sky noise")
plt.show()
