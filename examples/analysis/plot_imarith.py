"""
Arithmetic between frames
=========================

`~astrophot.analysis.image_arithmetic` adds, subtracts, multiplies and divides
frames (or a frame and a number or `~astropy.units.Quantity`), propagating the
uncertainties, combining masks and data-quality flags, and recording the step
in the result's provenance. Here: the difference of two exposures of the same
scene, whose noise is the quadrature sum of theirs.
"""

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
from astropy.nddata import StdDevUncertainty

from astrophot import CalibratedFrame
from astrophot.analysis import image_arithmetic
from astrophot.datasets import make_raw_frame

raw, truth = make_raw_frame(shape=(200, 300), fwhm=2.8, seed=1)
camera = truth.detector
flat = camera.flats[truth.filter]
sigma = np.sqrt(np.clip(truth.noiseless, 0, None) + camera.read_noise**2) / flat
first = CalibratedFrame(
    (raw.data - camera.expected_dark(truth.exposure)) * camera.gain / flat,
    unit="electron",
    uncertainty=StdDevUncertainty(sigma),
    meta=raw.meta,
)
# a second exposure of the same scene: another draw of the same expected electrons
rng = np.random.default_rng(7)
again = rng.poisson(np.clip(truth.noiseless, 0, None)) + rng.normal(0, camera.read_noise, raw.shape)
dark = camera.expected_dark(truth.exposure, include_bias=False) * camera.gain
second = CalibratedFrame((again - dark) / flat, unit="electron", uncertainty=StdDevUncertainty(sigma))

difference = image_arithmetic(first, "-", second)
rate = image_arithmetic(first, "/", 300 * u.s)

pulls = difference.data / difference.uncertainty.array
spread = 1.4826 * np.median(np.abs(pulls - np.median(pulls)))  # robust: cosmic rays hit only the first
print(f"difference: median {np.median(difference.data):.2f} e-, pull spread {spread:.3f} (1 expected)")
print(f"rate unit: {rate.unit}; last step: {difference.provenance.steps[-1].function}")

###############################################################################
# The difference and its pulls (difference over propagated uncertainty).

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
axes[0].imshow(difference.data, origin="lower", cmap="gray", vmin=-60, vmax=60)
axes[0].set_title("first - second (e-)")
axes[1].hist(pulls.ravel(), bins=100, range=(-5, 5), density=True)
grid = np.linspace(-5, 5, 200)
axes[1].plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi))
axes[1].set_title("pulls and a unit Gaussian")
plt.show()
