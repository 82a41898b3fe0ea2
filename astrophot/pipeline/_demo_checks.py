# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The demo's comparisons of a processed simulated night with the simulation's truth.

Each check measures something on the night's products (or, for the read
noise, on two of the library's raw biases) and compares it with what the
simulation put in. The stacks are on the photometric scale of their first
frame (`~astrophot.stack_frames`' reference), so the true flux of a star in a
stack is its flux in that frame, per second; the simulated stars have one
magnitude in every filter and no line emission is simulated, so the true
continuum scale and colour balance follow from the filters' zero points and
the reference frames' transparencies, and the true line image holds no star.
"""

from pathlib import Path

import numpy as np

__all__ = ["truth_checks"]

#: Tolerances: relative for the read noise, the stacks' fluxes, the continuum scale and the colour
#: balance; pixels for the WCS and the stacks' star positions; a fraction of the stars' flux for the
#: line image.
READ_NOISE_TOL = 0.05
WCS_TOL_PX = 0.5
STACK_POSITION_TOL_PX = 0.5
STACK_FLUX_TOL = 0.05
K_TOL = 0.03
LINE_RESIDUAL_TOL = 0.05
BALANCE_TOL = 0.05
#: Stars measured per stack: the brightest unsaturated true stars, this far (px) from the edges.
N_STARS = 10
MARGIN = 20
#: Aperture radius and sky annulus (pixels of the simulated binned frames; FWHM about 2.5 px).
APERTURE = 5.0
ANNULUS = (8.0, 12.0)


def truth_checks(night, run, *, solve=True):
    """
    Compare a `process_night` result of a simulated night with its truth.

    Parameters
    ----------
    night : `~astrophot.datasets.Night`
    run : `~astrophot.pipeline.NightResult`
    solve : bool, optional
        Whether the night was plate solved (without it no stack, line image or
        colour picture is expected, and none is checked).

    Returns
    -------
    list of `~astrophot.pipeline.demo.DemoCheck`
    """
    checks = [_read_noise(night), _masters(night, run), _quality(night, run)]
    if not solve:
        return checks
    checks.append(_astrometry(night, run))
    references = _references(night, run)
    stacks = _stacks(run)
    for filt in night.filters:
        checks.append(_stack(night, filt, stacks.get(filt), references.get(filt)))
    continuum, color = run.config["continuum"], run.config["color"]
    if {continuum["narrow"], continuum["broad"]} <= set(night.filters):
        checks.extend(_line(night, run, continuum, references))
    if {color["red"], color["green"], color["blue"]} <= set(night.filters):
        checks.append(_balance(night, run, color, references))
    return checks


def _check(name, measured, truth, ok, text):
    from astrophot.pipeline.demo import DemoCheck

    return DemoCheck(name=name, measured=measured, truth=truth, ok=bool(ok), text=text)


def _read_noise(night):
    from astrophot import measure_read_noise
    from astrophot.io import read_frame

    measured = _value(
        measure_read_noise(read_frame(night.biases[0]), read_frame(night.biases[1])).read_noise_adu
    )
    truth = _value(night.detector.read_noise_adu)
    return _check(
        "read noise",
        measured,
        truth,
        abs(measured / truth - 1) < READ_NOISE_TOL,
        f"read noise {measured:.2f} ADU (two raw biases of the library) vs truth {truth:.2f} ADU",
    )


def _masters(night, run):
    """The library masters the night chose are the ones simulated for these lights."""
    truth = {"bias": night.masters["bias"].name, "dark": night.masters["dark"].name}
    truth.update({f"flat {f}": Path(p).name for f, p in night.masters["flats"].items()})
    used = {name: Path(path).name for name, (path, _) in run.masters.items() if path}
    text = "masters: " + ", ".join(sorted(used)) + " from the library"
    text += ", as simulated" if used == truth else f"; simulated {sorted(truth.items())}"
    return _check("masters", used, truth, used == truth, text)


def _quality(night, run):
    rejected = {Path(f["file"]).name for f in run.frames if f.get("accepted") is False}
    truth = {Path(p).name for p in night.bad_lights}
    return _check(
        "quality",
        rejected,
        truth,
        rejected == truth,
        f"quality: rejected {sorted(rejected) or 'none'}; deliberately bad {sorted(truth) or 'none'}",
    )


def _astrometry(night, run):
    """The solved WCS of every good light against its true WCS (the deliberately bad ones told apart)."""
    from astrophot.io import read_frame

    bad = {Path(p).name for p in night.bad_lights}
    offsets, bad_offsets = [], []
    for frame in run.frames:
        solved = frame["products"].get("solved")
        if solved:
            name = Path(frame["file"]).name
            offset = _wcs_offset(read_frame(solved).wcs, night.truth_for(name).wcs, night.shape)
            (bad_offsets if name in bad else offsets).append(offset)
    worst = max(offsets) if offsets else np.inf
    n = len(night.lights) - len(bad)
    text = (
        f"astrometry: {len(offsets)} of {n} good frames solved, max offset from the true WCS "
        f"{worst:.3f} px over a 5x5 grid (limit {WCS_TOL_PX} px)"
    )
    if bad_offsets:
        text += f"; the deliberately bad: {', '.join(f'{v:.3f}' for v in bad_offsets)} px"
    return _check("astrometry", worst, 0.0, len(offsets) == n and worst < WCS_TOL_PX, text)


def _references(night, run):
    """Filter to the `FrameTruth` of its stack's reference: the first solved, accepted light by name."""
    firsts = {}
    for frame in run.frames:
        solved = frame["products"].get("solved")
        if solved and frame.get("accepted", True) and frame["status"] == "done":
            truth = night.truth_for(Path(frame["file"]).name)
            if truth.filter not in firsts or solved < firsts[truth.filter][0]:
                firsts[truth.filter] = (solved, truth)
    return {filt: truth for filt, (_, truth) in firsts.items()}


def _stacks(run):
    return {Path(p).stem.split("-")[-1]: Path(p) for p in run.products.get("stack", [])}


def _stack(night, filt, path, reference):
    """A stack's true stars: where its WCS puts them, with their flux per second in its reference frame."""
    from astrophot.io import read_frame

    if path is None or reference is None:
        return _check(f"stack {filt}", None, filt, False, f"stack {filt}: not made")
    stack = read_frame(path)
    x, y, flux = _true_stars(reference, stack.wcs, stack.data.shape)
    if len(x) < 3:
        return _check(f"stack {filt}", None, filt, False, f"stack {filt}: {len(x)} true stars inside")
    offsets = [np.hypot(*np.subtract(_centroid(stack.data, xi, yi), (xi, yi))) for xi, yi in zip(x, y)]
    offset = float(np.median(offsets))
    ratio = float(np.median(_photometry(stack.data, x, y) / (flux / reference.exposure)))
    return _check(
        f"stack {filt}",
        {"offset": offset, "flux_ratio": ratio},
        {"offset": 0.0, "flux_ratio": 1.0},
        offset < STACK_POSITION_TOL_PX and abs(ratio - 1) < STACK_FLUX_TOL,
        f"stack {filt}: {len(x)} bright true stars at a median {offset:.3f} px from where the WCS puts them; "
        f"flux {ratio:.3f} x truth ({stack.unit:s}, {APERTURE:g} px aperture of the true PSF)",
    )


def _throughput(truth):
    """Electrons per second of a 0th-magnitude star in this frame (its zero point and transparency)."""
    return truth.transparency * 10 ** (0.4 * truth.zero_point)


def _line(night, run, section, references):
    """The continuum scale k against the truth; the true stars gone from the line image."""
    from astrophot.io import read_frame

    narrow, broad = section["narrow"], section["broad"]
    paths = run.products.get("continuum", [])
    if not paths or narrow not in references or broad not in references:
        return [_check("continuum scale", None, None, False, "line image: not made")]
    line = read_frame(paths[0])
    k, truth = line.scale, _throughput(references[narrow]) / _throughput(references[broad])
    checks = [
        _check(
            "continuum scale",
            k,
            truth,
            abs(k / truth - 1) < K_TOL,
            f"continuum scale k {k:.5f} ({line.continuum.get('method')}) vs truth {truth:.5f} "
            f"({narrow}/{broad} zero points and transparencies)",
        )
    ]
    stacks = _stacks(run)
    stack = read_frame(stacks[narrow])
    x, y, _ = _true_stars(references[narrow], line.wcs, line.data.shape)
    left = float(np.median(np.abs(_photometry(line.data, x, y) / _photometry(stack.data, x, y))))
    checks.append(
        _check(
            "line image",
            left,
            0.0,
            left < LINE_RESIDUAL_TOL,
            f"line image: the {len(x)} brightest true stars keep {100 * left:.2f} % of their {narrow} flux "
            f"(median; truth 0: no line emission simulated)",
        )
    )
    return checks


def _balance(night, run, section, references):
    """The colour picture's star white balance against the true channel fluxes of grey stars."""
    from astrophot.io._sidecar import read_sidecar

    channels = [section[c] for c in ("red", "green", "blue")]
    sidecars = [Path(p).with_suffix(".asdf") for p in run.products.get("color", [])]
    if not sidecars or not all(c in references for c in channels):
        return _check("colour balance", None, None, False, "colour picture: not made")
    factors = read_sidecar(sidecars[0]).steps[-1].outcome.get("factors")
    if not factors:
        return _check("colour balance", None, None, False, "colour picture: no white balance recorded")
    # a channel's factor is inversely proportional to its stars' flux: relative to the green channel's
    measured = [factors[i] / factors[1] for i in (0, 2)]
    truth = [
        _throughput(references[channels[1]]) / _throughput(references[c]) for c in (channels[0], channels[2])
    ]
    ok = all(abs(m / t - 1) < BALANCE_TOL for m, t in zip(measured, truth))
    return _check(
        "colour balance",
        measured,
        truth,
        ok,
        f"colour balance ({channels[0]}, {channels[2]} over {channels[1]}): x{measured[0]:.3f}, x{measured[1]:.3f} "
        f"vs truth x{truth[0]:.3f}, x{truth[1]:.3f} (grey stars)",
    )


def _true_stars(truth, wcs, shape):
    """
    The brightest unsaturated, isolated true stars of a frame as pixels of ``wcs``, well inside ``shape``,
    with their flux (electrons in the frame) times the true PSF's fraction inside the aperture.
    """
    from astropy.coordinates import SkyCoord

    stars = truth.stars
    x, y = wcs.celestial.world_to_pixel(SkyCoord(stars["ra"], stars["dec"], unit="deg"))
    flux = np.asarray(stars["flux"], float)
    ny, nx = shape
    keep = ~np.asarray(stars["saturated"]) & (x > MARGIN) & (x < nx - 1 - MARGIN)
    keep &= (y > MARGIN) & (y < ny - 1 - MARGIN)
    # isolated: no other true star above 2 % of its flux out to the sky annulus
    distance = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    crowded = (distance < ANNULUS[1]) & (flux[None, :] > 0.02 * flux[:, None])
    keep &= crowded.sum(axis=1) == 1
    order = np.argsort(-flux[keep])[:N_STARS]
    return x[keep][order], y[keep][order], flux[keep][order] * _enclosed(truth.psf, APERTURE)


def _enclosed(psf, radius):
    """The fraction of a circular Moffat's light within ``radius`` pixels."""
    alpha = psf.fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / psf.beta) - 1.0))
    return 1.0 - (1.0 + (radius / alpha) ** 2) ** (1.0 - psf.beta)


def _photometry(data, x, y):
    """Aperture sums minus the annulus' median sky."""
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture, aperture_photometry

    positions = np.column_stack([x, y])
    aperture = CircularAperture(positions, r=APERTURE)
    sky = ApertureStats(data, CircularAnnulus(positions, *ANNULUS)).median
    return np.asarray(aperture_photometry(data, aperture)["aperture_sum"]) - sky * aperture.area


def _centroid(data, x, y, half=4):
    """Intensity-weighted centroid in a box around (x, y), above the box's median."""
    ix, iy = int(round(x)), int(round(y))
    box = np.nan_to_num(np.asarray(data[iy - half : iy + half + 1, ix - half : ix + half + 1], float))
    box = np.clip(box - np.median(box), 0, None)
    yy, xx = np.mgrid[iy - half : iy + half + 1, ix - half : ix + half + 1]
    return (box * xx).sum() / box.sum(), (box * yy).sum() / box.sum()


def _value(quantity):
    return float(getattr(quantity, "value", quantity))


def _wcs_offset(wcs, truth_wcs, shape):
    ny, nx = shape
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
    sky = truth_wcs.pixel_to_world(gx.ravel(), gy.ravel())
    x, y = wcs.world_to_pixel(sky)
    return float(np.max(np.hypot(x - gx.ravel(), y - gy.ravel())))
