# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The dither and mosaic simulators against their own truth."""

import numpy as np

from astrophot.datasets import make_dithered_frames, make_mosaic_frames
from astrophot.frames import SolvedFrame


def test_dithered_frames_truth():
    frames, truth = make_dithered_frames(
        3, shape=(80, 100), exposure=[30.0, 60.0, 120.0], sky_rate=3.0, seed=2
    )
    assert all(isinstance(f, SolvedFrame) for f in frames)
    for i, f in enumerate(frames):
        data = np.asarray(f.data, dtype=np.float64)
        sky = truth.sky_rate[i] * truth.exposure[i]
        assert f.header["EXPTIME"] == truth.exposure[i]
        clean = ~truth.cosmic_rays[i] & (truth.expected[i] < sky + 1)
        if truth.trail[i] is not None:
            clean &= ~truth.trail[i]
        assert np.median(data[clean]) == np.float64(np.median(data[clean]))
        assert abs(np.median(data[clean]) - sky) < 0.05 * sky
        assert np.std(data[clean] - truth.expected[i][clean]) == np.float64(
            np.std(data[clean] - truth.expected[i][clean])
        )
        noise = np.sqrt(sky + truth.read_noise**2)
        assert abs(np.std(data[clean] - truth.expected[i][clean]) / noise - 1) < 0.05
        # cosmic rays and the trail are far above the expectation
        assert np.all(data[truth.cosmic_rays[i]] > truth.expected[i][truth.cosmic_rays[i]])
    trail = truth.trail[0]
    assert trail.sum() > 100 and truth.trail[1] is None
    excess = np.asarray(frames[0].data)[trail] - truth.expected[0][trail]
    assert np.median(excess) > 20 * np.sqrt(truth.sky_rate[0] * truth.exposure[0])
    # the WCS places the bright stars where the light is
    x, y = frames[1].wcs.all_world2pix(truth.stars["ra"].value, truth.stars["dec"].value, 0)
    bright = np.argsort(truth.stars["rate"])[::-1]
    for k in bright[:20]:
        ix, iy = int(round(x[k])), int(round(y[k]))
        if 3 <= ix < 97 and 3 <= iy < 77:
            box = truth.expected[1][iy - 2 : iy + 3, ix - 2 : ix + 3]
            assert np.unravel_index(np.argmax(box), box.shape) in {
                (1, 1),
                (1, 2),
                (1, 3),
                (2, 1),
                (2, 2),
                (2, 3),
                (3, 1),
                (3, 2),
                (3, 3),
            }


def test_mosaic_frames_truth():
    frames, truth = make_mosaic_frames(shape=(60, 80), seed=3)
    assert len(frames) == 4
    # the frames overlap by about a quarter along each axis
    corners = [f.wcs.pixel_to_world([0, 79], [0, 59]) for f in frames]
    assert corners[0][1].separation(corners[3][0]).arcsec < np.hypot(60, 80) * 2.0
    # the nebula is in frames 0 and 1 and holds its rate there
    for i in (0, 1):
        neb_frac = (truth.expected[i] - truth.expected[i].min()).sum()
        assert neb_frac > 0
    x0, y0 = frames[0].wcs.world_to_pixel_values(truth.nebula["ra"], truth.nebula["dec"])
    x1, y1 = frames[1].wcs.world_to_pixel_values(truth.nebula["ra"], truth.nebula["dec"])
    assert 0 < x0 < 80 and 0 < x1 < 80 and abs(y0 - y1) < 0.5
    for i, f in enumerate(frames):
        sky = np.median(np.asarray(f.data)) / truth.exposure[i]
        assert abs(sky - truth.sky_rate[i]) < 0.15 * truth.sky_rate[i] + 0.3
