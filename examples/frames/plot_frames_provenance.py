"""
Frames, files and provenance
============================

Make a frame, write it (FITS pixels plus an ASDF provenance sidecar), read it
back, and look at where it came from.
"""

import tempfile
from pathlib import Path

import asdf
import matplotlib.pyplot as plt
import numpy as np

import astrophot as ap
from astrophot.provenance import start_step

rng = np.random.default_rng(1)
pixels = rng.normal(1000, 10, (64, 96)).astype(np.uint16)
raw = ap.RawFrame(pixels, meta={"EXPTIME": 300.0, "FILTER": "Ha", "IMAGETYP": "Light Frame"})
print(repr(raw), raw.exposure_time, raw.filter)

###############################################################################
# A transform records one provenance step. Here a toy "transform" turns the raw
# frame into a calibrated frame by subtracting a constant bias; real stages such
# as :func:`astrophot.reduction.calibrate_frame` do the same bookkeeping.

recorder = start_step("example_subtract_bias", parameters={"bias_level": 1000.0}, inputs={"raw": raw})
calibrated = ap.CalibratedFrame(raw.data.astype(np.float32) - 1000.0, unit="adu", meta=raw.meta)
calibrated = recorder.finish(calibrated, primary=raw, outcome={"mean": float(calibrated.data.mean())})

###############################################################################
# Write the frame: ``example.fits`` plus ``example.asdf``, atomically.

outdir = Path(tempfile.mkdtemp())
ap.write_frame(calibrated, outdir / "example.fits")
print(sorted(p.name for p in outdir.iterdir()))

back = ap.read_frame(outdir / "example.fits")
print(type(back).__name__, back.unit)
for step in back.provenance.steps:
    print(step.function, step.parameters, [ref.role for ref in step.inputs], step.software["astrophot"])

###############################################################################
# The sidecar is an ordinary ASDF file with tagged records.

with asdf.open(outdir / "example.asdf") as af:
    print(af.tree["provenance"].last.outcome)

fig, ax = plt.subplots(figsize=(6, 4))
ax.imshow(back.data, origin="lower", cmap="gray")
ax.set_title(f"{back.frame_type}: {back.provenance.last.function}")
plt.show()
