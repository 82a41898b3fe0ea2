"""
Read noise from two bias frames
===============================

The difference of two bias frames cancels the fixed bias pattern; its spread,
after clipping outliers, is sqrt(2) times the read noise.
"""

import matplotlib.pyplot as plt

from astrophot.calibration import measure_read_noise
from astrophot.datasets import make_bias_stack

biases, truth = make_bias_stack(2, shape=(300, 400), read_noise=11.0, gain=1.4, seed=3)
result = measure_read_noise(biases[0], biases[1], gain=1.4, plot=True)
print(result)
print(f"truth: {truth.detector.read_noise} electron")

###############################################################################
# Without a gain (none given, no GAIN/EGAIN card) the result is in ADU.

print(measure_read_noise(biases[0], biases[1]).read_noise)

###############################################################################
# The histogram of the difference, with the Gaussian of the measured noise.

result.figure.set_dpi(80)
plt.show()
