"""
Plate-solving a frame, and checking the answer
==============================================

`~astrophot.astrometry.solve_astrometry` finds a frame's celestial WCS from
its stars. Here a simulated light of the M31 field (real Tycho-2 stars, known
WCS) is solved by astrophot's own matcher against the Tycho-2 extract shipped
with astrophot, so it runs anywhere, offline, without astrometry.net
installed. With astrometry.net's ``solve-field`` or the optional ``astrometry``
package and their index files, ``backend="auto"`` tries those first.

Every solution is verified before it is returned: the catalogue stars,
projected through the new WCS, must land on detected stars far more often
than chance allows.
"""

import matplotlib.pyplot as plt
import numpy as np

from astrophot import calibrate_frame
from astrophot.analysis import find_stars
from astrophot.astrometry import solve_astrometry
from astrophot.datasets import load_demo_catalog, make_raw_frame

raw, truth = make_raw_frame(target="M31", shape=(500, 700), scale=6.0, rotation=25.0, seed=3)
# solving needs a calibrated frame: without masters, calibrate_frame keeps ADU
light = calibrate_frame(raw, unit="adu", gain=1.0, read_noise=8.0)
stars = find_stars(light)

# The header gives the pointing (OBJCTRA/OBJCTDEC); the simulated pixel scale is not
# the T20 one its FOCALLEN/XPIXSZ imply, so it is given.
solved = solve_astrometry(light, stars=stars, backend="matcher", scale=6.0, catalog="demo")
solution = solved.solution
print(
    f"solved by {solution['backend']}: centre {solution['center'][0]:.4f} {solution['center'][1]:+.4f}, "
    f"{solution['pixel_scale']:.3f} arcsec/pix, rotation {solution['rotation']:.2f} deg, "
    f"{solution['n_matched']} catalogue stars matched, rms {solution['rms_arcsec']:.2f} arcsec"
)

###############################################################################
# Against the truth: the largest difference over a 5 x 5 grid of the frame.

ny, nx = raw.shape
gx, gy = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
px, py = solved.wcs.world_to_pixel(truth.wcs.pixel_to_world(gx, gy))
print(f"largest WCS error: {np.max(np.hypot(px - gx, py - gy)):.3f} px")

###############################################################################
# The catalogue through the solved WCS lands on the stars.

catalog = load_demo_catalog("M31", 1.0)
cx, cy = solved.wcs.world_to_pixel_values(catalog["ra"].value, catalog["dec"].value)
inside = (cx > 0) & (cx < nx - 1) & (cy > 0) & (cy < ny - 1)
image = raw.data.astype(float)
low, high = np.percentile(image, [5, 99.5])
fig, ax = plt.subplots(figsize=(8, 6), layout="constrained")
ax.imshow(image, origin="lower", cmap="gray", vmin=low, vmax=high)
ax.scatter(
    cx[inside], cy[inside], s=120, facecolors="none", edgecolors="tab:orange", label="Tycho-2 through the WCS"
)
ax.set_title(f"{solution['n_matched']} Tycho-2 stars matched")
ax.legend(loc="upper right")
plt.show()
