"""
iTelescope file names, telescopes and downloads
===============================================

Read the fields of iTelescope.net file names, look up the telescope that took a
frame, compare the fields of view of a few telescopes, and prepare a (small,
made-up) download: unzip it, remove the spaces from its names and fix its
permissions.
"""

import datetime
import tempfile
import zipfile
from pathlib import Path

import astropy.units as u
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from astrophot.instruments.itelescope import (
    FilenameError,
    get_telescope,
    make_raw_filename,
    output_name,
    parse_filename,
    prepare_download,
)

###############################################################################
# Parsing names
# -------------
# Raw frames, iTelescope's calibrated frames, astrophot's own ``cal-`` outputs,
# "Premium" sets and calibration-library masters all parse to one record.

names = [
    "raw-T05-davestrickland-NGC_6888-20200716-231744-Ha-BIN1-E-180-001.fit",
    "calibrated-T05-davestrickland-M82-20210219-002600-Red-BIN1-W-300-001.fit",
    "cal-T20-davestrickland-CygnusLoop_x1_y1-20210708-220604-Ha-BIN1-E-300-001.fits",
    "Calibrated-iTelescope-Whale_Galaxy_NGC_55-900s-Red-5.fits",
    "Master_Flat_Ha_1_Ha_2184x1472_Bin1x1_Temp-10C_ExpTime46s.fit",
]
for name in names:
    f = parse_filename(name)
    print(
        f"{f.kind:10s} tel={f.telescope!s:4s} target={f.target!s:20s} panel={f.mosaic_panel!s:7s} "
        f"filter={f.filter!s:5s} bin={f.binning!s:4s} exp={f.exposure:.0f}"
    )

###############################################################################
# The time stamp in a raw name is the telescope computer's **local** time. The
# real T31 frame below was taken at 2021-12-29T15:42:46 UT according to its
# ``DATE-OBS``; its name says 02:42:25. Always use the header for timing.

raw = parse_filename("raw-T31-davestrickland-webb-20211229-024225-Green-BIN1-W-300-001.fit")
print("local time stamp:", raw.local_time, "(no time zone: not UT)")

###############################################################################
# A malformed name gets an error that says what is wrong and what was expected.

try:
    parse_filename("raw-T20-jdoe-M31-20241301-201500-Ha-BIN1-E-60-001.fit")
except FilenameError as exc:
    print(exc)

###############################################################################
# Making names, and the name of a calibrated output.

name = make_raw_filename(
    telescope="T20",
    user="jdoe",
    target="Veil Nebula",
    mosaic_panel=(2, 1),
    local_time=datetime.datetime(2024, 8, 1, 23, 15, 2),
    filter="OIII",
    binning=2,
    pier_side="W",
    exposure=600 * u.s,
    sequence=3,
)
print(name)
print(output_name(name))

###############################################################################
# Telescopes
# ----------
# The telescope table knows the site, the optics and the camera where the facts
# are known (``None`` otherwise), with the source of each fact.

fig, ax = plt.subplots(figsize=(6, 5))
colours = {"T20": "tab:blue", "T33": "tab:orange", "T31": "tab:green"}
for tel_id, colour in colours.items():
    tel = get_telescope(tel_id)
    height, width = (a.to_value(u.deg) for a in tel.field_of_view)
    ax.add_patch(Rectangle((-width / 2, -height / 2), width, height, fill=False, lw=2, color=colour))
    ax.text(width / 2, height / 2, f" {tel.id}: {tel.plate_scale:.2f}", color=colour, va="bottom")
    print(f"{tel.id} at {tel.site.name} ({tel.site.mpc_code}): {tel.camera}, {tel.plate_scale:.3f}")
    print(f"    pixel size from: {tel.sources['pixel_size']}")
ax.set_xlim(-2.5, 3.8)
ax.set_ylim(-1.8, 2.0)
ax.set_aspect("equal")
ax.set_xlabel("degrees")
ax.set_ylabel("degrees")
ax.set_title("Unbinned fields of view")
plt.show()

###############################################################################
# Preparing a download
# --------------------
# A download as it arrives: spaces in names and a zip file per night. A dry run
# says what would happen; the real run does it; a second run changes nothing.

tmp = Path(tempfile.mkdtemp())
night = tmp / "T20" / "Veil Nebula" / "20240801"
night.mkdir(parents=True)
with zipfile.ZipFile(night / "Veil Nebula 20240801.zip", "w") as zf:
    zf.writestr(name, b"pixels would be here")
    zf.writestr("night log.txt", b"clear, seeing 2 arcsec")

print(prepare_download(tmp, dry_run=True))
print(prepare_download(tmp))
print(prepare_download(tmp))
