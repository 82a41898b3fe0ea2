# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A night whose target is on two pointings: one mosaic per filter instead of the
stacks, the line image and the colour picture made from the mosaics.

Truth: the simulator's panels (two pointings 0.8 field widths apart: an overlap
of a fifth of the field), the true stars of each light, and every raw light's
checksum.
"""

from pathlib import Path

import numpy as np
import pytest
from astropy.stats import sigma_clipped_stats

from astrophot.datasets import simulate_itelescope_night
from astrophot.frames import data_checksum
from astrophot.io import read_frame
from astrophot.pipeline import process_night
from astrophot.pipeline._combine import pointings
from tests.pipeline.conftest import RUN
from tests.pipeline.test_night import _bright_stars, _centroid, _same_grid

pytestmark = pytest.mark.slow

SHAPE = (160, 240)
PANELS = ((-0.4, 0.0), (0.4, 0.0))


@pytest.fixture(scope="module")
def mosaic_night(tmp_path_factory):
    root = tmp_path_factory.mktemp("mosaic-night")
    night = simulate_itelescope_night(root / "sim", n_lights=2, shape=SHAPE, seed=7, pointings=PANELS)
    out = root / "out"
    result = process_night(night.download, output=out, library=night.library, overrides=RUN)
    return night, out, result


def _pointing_of(night, name):
    """0 or 1: which panel the light was taken on (the simulator goes round them in turn)."""
    return (int(Path(name).stem.split("-")[-1]) - 1) % len(PANELS)


def _true_coverage(night, lights, wcs, shape):
    """Lights whose true footprint holds each pixel of ``wcs``, and the pixels within 4 px of an edge."""
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    sky = wcs.celestial.pixel_to_world(x, y)
    count = np.zeros(shape, dtype=int)
    near = np.zeros(shape, dtype=bool)
    for light in lights:
        px, py = night.night.truth_for(light).wcs.world_to_pixel(sky)
        inside = (px > -0.5) & (px < SHAPE[1] - 0.5) & (py > -0.5) & (py < SHAPE[0] - 0.5)
        edge = np.minimum.reduce([px + 0.5, SHAPE[1] - 0.5 - px, py + 0.5, SHAPE[0] - 0.5 - py])
        count += inside
        near |= np.abs(edge) < 4
    return count, near


def _seam_steps(data, coverage, margin=20, width=6):
    """The sky step at the overlap's left and right edges (inside minus outside, median over rows)."""
    steps = ([], [])
    for row in range(margin, data.shape[0] - margin):
        two = np.flatnonzero(coverage[row] == 2)
        lo, hi = two.min(), two.max()
        steps[0].append(
            np.nanmedian(data[row, lo + 1 : lo + 1 + width])
            - np.nanmedian(data[row, lo - 1 - width : lo - 1])
        )
        steps[1].append(
            np.nanmedian(data[row, hi - width : hi]) - np.nanmedian(data[row, hi + 2 : hi + 2 + width])
        )
    return [float(np.median(s)) for s in steps]


def test_mosaics_instead_of_stacks_then_line_and_colour(mosaic_night):
    night, out, result = mosaic_night
    stages = result.stages
    assert stages["mosaic"]["status"] == "done", stages["mosaic"]
    assert stages["stack"]["status"] == "skipped", stages["stack"]
    assert sorted(Path(p).name for p in result.products["mosaic"]) == [
        "mosaic-M31-Ha.fits",
        "mosaic-M31-Red.fits",
        "mosaic-M31-V.fits",
    ]
    # the frames of the night fall into the simulator's two pointings, whatever their filter
    groups = pointings(sorted(f["products"]["solved"] for f in result.frames))
    assert len(groups) == 2
    for group in groups:
        assert len({_pointing_of(night, Path(p).name.replace("sol-", "raw-")) for p in group}) == 1
    mosaics = {Path(p).name: read_frame(p) for p in result.products["mosaic"]}
    first = mosaics["mosaic-M31-Ha.fits"]
    ny, nx = first.data.shape
    # the grid spans both panels: 240 px + 2 x 96 px of offset (a margin for rotation and jitter)
    assert 432 <= nx <= 432 + 40 and SHAPE[0] <= ny <= SHAPE[0] + 40
    for name, mosaic in mosaics.items():
        _same_grid(mosaic, first)  # one grid for every filter: line and colour need no resampling
        assert type(mosaic).__name__ == "StackedFrame"
        assert mosaic.header["NCOMBINE"] == 2
        # coverage: the count of lights whose true footprint holds the pixel (away from the frame
        # edges, where the kernel's reach decides), two in the overlap: a fifth of the field in the middle
        lights = [p.name for p in night.night.lights if f"-{name.split('-')[-1][:-5]}-" in p.name]
        expected, near_edge = _true_coverage(night, lights, mosaic.wcs, mosaic.data.shape)
        assert np.array_equal(mosaic.coverage[~near_edge], expected[~near_edge]), name
        both = np.flatnonzero((expected == 2).any(axis=0))
        assert abs(np.median(np.count_nonzero(expected == 2, axis=1)[20:-20]) - 48) <= 2
        assert abs(both.mean() - (nx - 1) / 2) < 4, (name, both.mean())
        # true stars of both panels lie where the mosaic's WCS puts them
        for panel in (0, 1):
            light = next(
                p
                for p in night.night.lights
                if f"-{name.split('-')[-1][:-5]}-" in p.name and _pointing_of(night, p.name) == panel
            )
            xs, ys = _bright_stars(night, light.name, mosaic.wcs, mosaic.data.shape)
            assert len(xs) >= 3, (name, panel)
            offsets = [np.hypot(*np.subtract(_centroid(mosaic.data, x, y), (x, y))) for x, y in zip(xs, ys)]
            assert np.median(offsets) < 0.5, (name, panel, offsets)
        # no seam: across each edge of the overlap the sky steps by less than 0.5 sigma (row by row,
        # 6 columns either side; the median over the rows); the true sky has no step there
        _, _, noise = sigma_clipped_stats(mosaic.data[20:-20, 20 : int(both.min()) - 5], sigma=2.5)
        for step in _seam_steps(mosaic.data, mosaic.coverage):
            assert abs(step) < 0.5 * noise, (name, step / noise)
        assert mosaic.combination["background"]["worst_seam_sigma"] < 0.5
    # the line image and the colour picture are made from the mosaics, on their grid
    (line_path,) = result.products["continuum"]
    line = read_frame(line_path)
    _same_grid(line, first)
    assert [Path(ref.path).name for ref in line.provenance.steps[-1].inputs] == [
        "mosaic-M31-Ha.fits",
        "mosaic-M31-Red.fits",
    ]
    from astrophot.io._sidecar import read_sidecar

    provenance = read_sidecar(out / "color-M31.asdf")
    reached = {a.reference.sha256 for a in provenance.ancestors()}
    raws = {p.name: data_checksum(read_frame(p).data) for p in night.night.lights}
    assert set(raws.values()) <= reached


def test_mosaic_resume_and_changed_option(mosaic_night):
    night, out, _ = mosaic_night
    again = process_night(night.download, output=out, library=night.library, overrides=RUN)
    assert again.stages["mosaic"]["made"] == []
    assert again.stages["continuum"]["made"] == []
    changed = process_night(
        night.download, output=out, library=night.library, overrides=[*RUN, "mosaic.match_background=offset"]
    )
    assert sorted(changed.stages["mosaic"]["made"]) == ["mosaic-M31-Ha", "mosaic-M31-Red", "mosaic-M31-V"]
    assert changed.stages["continuum"]["made"] == ["line-M31-Ha"]  # through the mosaics' checksums
    assert all(f["status"] == "done" and not f["made"] for f in changed.frames), changed.frames


def test_simulated_pointings_are_checked(tmp_path):
    from astrophot.datasets import SimulationError, simulate_night

    with pytest.raises(SimulationError, match="pointings must be"):
        simulate_night(tmp_path, shape=(32, 48), n_lights=1, pointings=[(0.5,)])
