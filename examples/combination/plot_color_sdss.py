"""
A colour picture of SDSS g, r, i frames
=======================================

`~astrophot.make_color_composite` on three real SDSS frames of NGC 6976
(already on one grid, from ``../shared/data/sdss_gri``): the sky of each
channel made neutral, the median star made white, an automatic asinh stretch
that keeps the colour of star cores, and the picture turned north up from the
WCS. The Lupton et al. stretch (as astropy's ``make_lupton_rgb``) for
comparison.
"""

from pathlib import Path

import matplotlib.pyplot as plt

import astrophot
from astrophot import make_color_composite, read_frame
from astrophot.datasets import make_rgb_field

# the real frames live beside the project (../shared/data), never inside it
folder = Path(astrophot.__file__).resolve().parents[2] / "shared" / "data" / "sdss_gri"
if folder.is_dir():
    i, r, g = (read_frame(folder / f"reprojected_sdss_{band}.fits.bz2") for band in "irg")
else:  # a fresh clone without the shared data: a simulated field instead
    (i, r, g), _ = make_rgb_field(seed=1)

auto = make_color_composite(i, r, g)
lupton = make_color_composite(
    i, r, g, stretch="lupton", stretch_options={"Q": 10, "stretch": 0.5}, white_balance=None
)
print(auto.meta["factors"], auto.meta["orientation"])

fig, axes = plt.subplots(1, 2, figsize=(9, 6.5), layout="constrained")
for ax, picture, title in zip(axes, (auto, lupton), ("auto (balanced on stars)", "lupton Q=10, stretch=0.5")):
    ax.imshow(picture.rgb)
    ax.set_title(title)
    ax.set_axis_off()
