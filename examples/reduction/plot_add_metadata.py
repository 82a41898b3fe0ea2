"""
Airmass, Moon and Sun, offline
==============================

`~astrophot.add_metadata` fills ``OBJECT``, the target coordinates, the site,
``DATE-AVG`` and, at mid-exposure, the airmass, altitude, azimuth, hour angle,
Moon phase, separation and altitude, and the Sun's altitude. It needs no
network: the site comes from the header (``SITELAT``/``SITELONG``) or the
iTelescope table and astropy's bundled Earth-orientation tables are used.

The header below holds the values of a real frame of M17 taken with
iTelescope's T33 at Siding Spring, whose ``AIRMASS`` (1.0416) MaxIm DL wrote
for the start of the exposure.
"""

import datetime

import matplotlib.pyplot as plt
import numpy as np

from astrophot import CalibratedFrame, add_metadata

header = {
    "DATE-OBS": "2018-07-04T14:03:03",
    "EXPTIME": 300.0,
    "OBJECT": "m17",
    "OBJCTRA": "18 20 48.12",
    "OBJCTDEC": "-16 10 58.8",
    "SITELAT": "-31 16 24",
    "SITELONG": "149 03 52",
    "ALT-OBS": 1165.0,
    "AIRMASS": 1.04162552350,
}
frame = CalibratedFrame(np.zeros((8, 8), dtype=np.float32), meta=header)
out = add_metadata(frame)
outcome = out.provenance.steps[-1].outcome
for key in (
    "DATE-AVG",
    "AIRMASS",
    "OBJCTALT",
    "OBJCTAZ",
    "OBJCTHA",
    "MOONPHAS",
    "MOONSEP",
    "MOONALT",
    "SUNALT",
):
    print(f"{key:9s} {out.header[key]}")
print(f"start of exposure: {outcome['airmass_start']:.5f} (iTelescope wrote {header['AIRMASS']:.5f})")

###############################################################################
# The same frame at other times of the night.

start = datetime.datetime.fromisoformat(header["DATE-OBS"])
hours = np.linspace(-4, 4, 33)
airmass, moon = [], []
for dt in hours:
    when = (start + datetime.timedelta(hours=float(dt))).isoformat()
    frame = CalibratedFrame(np.zeros((8, 8), dtype=np.float32), meta={**header, "DATE-OBS": when})
    values = add_metadata(frame).header
    airmass.append(values.get("AIRMASS", np.nan))
    moon.append(values["MOONALT"])

fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
ax.plot(hours, airmass, label="M17 airmass (mid-exposure)")
ax.plot([0], [header["AIRMASS"]], "o", label="iTelescope's AIRMASS (start)")
ax.set_xlabel("hours from the real exposure")
ax.set_ylabel("airmass")
ax.set_ylim(3, 1)
ax2 = ax.twinx()
ax2.plot(hours, moon, color="gray", ls=":", label="Moon altitude")
ax2.set_ylabel("Moon altitude (deg)")
ax.legend(loc="lower left", fontsize="small")
plt.show()
