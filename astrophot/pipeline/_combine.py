# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The night's combination tasks: a stack per target and filter (a mosaic per
filter when the target's frames are on several pointings), the line image
and the colour picture of a target, as functions of paths and small plans
(what a Dask worker receives).

Every stack of a target is made on one grid (`~astrophot.find_optimal_wcs`
over all its filters, given to each task as a header string), so the line
image and the colour picture combine stacks pixel for pixel with no second
resampling. A product is redone only when its provenance no longer matches
the recipe (`astrophot.io.up_to_date_reason`): a changed stack option redoes
the stacks, and through their checksums the line and colour products, but no
frame.
"""

import logging
import time
from pathlib import Path

from astrophot.pipeline._tasks import _recorded_warnings, current

__all__ = ["grid_header", "pointings", "run_product"]

log = logging.getLogger(__name__)


def grid_header(paths):
    """
    One grid for a target's solved frames of every filter.

    Only the headers are read. Returns ``(header_text, (ny, nx))``.
    """
    import warnings

    from astropy.wcs import FITSFixedWarning

    from astrophot.combination import find_optimal_wcs
    from astrophot.io._fits import read_product_header

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        # the image's NAXIS1/2 also for compressed frames and those referring to calibrated pixels
        headers = [read_product_header(p) for p in paths]
        wcs, shape = find_optimal_wcs(headers)
    return wcs.to_header_string(relax=True), [int(n) for n in shape]


#: Frames whose centres are closer than this share of the smaller field side are one pointing.
POINTING_SEPARATION = 0.25


def pointings(paths):
    """
    The frames of ``paths`` grouped by pointing (lists of paths, in the order given).

    Two frames are on one pointing when their centres are closer than
    `POINTING_SEPARATION` of the smaller side of either field (dithers are a few
    per cent of a field, mosaic panels most of one); the groups are the connected
    sets of that relation. Only the headers are read.
    """
    import warnings

    import numpy as np
    from astropy.wcs import WCS, FITSFixedWarning
    from astropy.wcs.utils import proj_plane_pixel_scales

    from astrophot.io._fits import read_product_header

    centres, sides = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        for path in paths:
            header = read_product_header(path)
            wcs = WCS(header).celestial
            ny, nx = header["NAXIS2"], header["NAXIS1"]
            centres.append(wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2))
            sides.append(min(nx, ny) * float(np.mean(proj_plane_pixel_scales(wcs))))
    group = list(range(len(centres)))

    def root(i):
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for i in range(len(centres)):
        for j in range(i + 1, len(centres)):
            if centres[i].separation(centres[j]).deg < POINTING_SEPARATION * min(sides[i], sides[j]):
                group[root(j)] = root(i)
    members = {}
    for i, path in enumerate(paths):
        members.setdefault(root(i), []).append(path)
    return list(members.values())


def _grid(task):
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(fits.Header.fromstring(task["grid"][0])), tuple(task["grid"][1])


def _stack(task):
    from astrophot.combination import stack_frames
    from astrophot.io import read_frame

    wcs, shape = _grid(task)
    frames = [read_frame(p) for p in task["inputs"]]
    return stack_frames(frames, wcs=wcs, shape=shape, **task["options"])


def _mosaic(task):
    from astrophot.combination import make_mosaic
    from astrophot.io import read_frame

    options = dict(task["options"])
    if options.get("match_background") == "none":
        options["match_background"] = None
    frames = [read_frame(p) for p in task["inputs"]]
    return make_mosaic(frames, wcs=_grid(task), **options)


def _line(task):
    from astrophot.combination import subtract_continuum
    from astrophot.io import read_frame

    narrow, broad = (read_frame(p) for p in task["inputs"])
    return subtract_continuum(narrow, broad, **task["options"])


def _color(task):
    from astrophot.combination import make_color_composite
    from astrophot.io import read_frame

    return make_color_composite(*(read_frame(p) for p in task["inputs"]), **task["options"])


_FUNCTIONS = {
    "stack": "stack_frames",
    "mosaic": "make_mosaic",
    "line": "subtract_continuum",
    "color": "make_color_composite",
}
_MAKERS = {"stack": _stack, "mosaic": _mosaic, "line": _line, "color": _color}


def recipe(task):
    """What the product of ``task`` must record: function, options (and the grid's shape), inputs."""
    parameters = dict(task["options"])
    if task["kind"] in ("stack", "mosaic"):
        parameters["shape"] = list(task["grid"][1])
    if parameters.get("match_background") == "none":
        parameters["match_background"] = None
    return {"inputs": list(task["inputs"]), "function": _FUNCTIONS[task["kind"]], "parameters": parameters}


def _picture_current(task):
    """A colour picture is current when its files exist and its sidecar records this recipe."""
    from astrophot.io._sidecar import read_sidecar
    from astrophot.io._uptodate import provenance_reason

    files = [Path(p) for p in task["outputs"]]
    if not all(p.exists() for p in files):
        return False
    try:
        provenance = read_sidecar(task["sidecar"])
    except Exception as exc:  # missing or torn: redo
        log.debug("%s: redone: %s", Path(task["sidecar"]).name, exc)
        return False
    reason = provenance_reason(provenance, **recipe(task))
    if reason is not None:
        log.debug("%s: redone: %s", Path(task["sidecar"]).name, reason)
    return reason is None


def _write_picture(picture, task):
    """The picture in each format, then its provenance sidecar (last: it marks the set complete)."""
    from astrophot.io._atomic import atomic_path
    from astrophot.io._sidecar import write_sidecar

    for path in task["outputs"]:
        picture.write(path, overwrite=True)
    sidecar = Path(task["sidecar"])
    with atomic_path(sidecar, overwrite=True) as tmp:
        write_sidecar(
            tmp, picture.provenance, fits_name=Path(task["outputs"][0]).name, frame_type="ColorComposite"
        )


def _up_to_date(task):
    if not task["resume"]:
        return False
    if task["kind"] == "color":
        return _picture_current(task)
    return current(task["outputs"][0], recipe(task))


def run_product(task):
    """
    Make one combined product (``kind``: ``'stack'``, ``'mosaic'``, ``'line'``, ``'color'``)
    unless it is up to date.

    Parameters
    ----------
    task : dict
        ``kind``, ``name``, ``inputs`` (paths), ``outputs`` (paths), ``options``
        (keywords of the function), ``grid`` (stacks and mosaics: header text and shape),
        ``sidecar`` (colour: the provenance file), ``resume``.

    Returns
    -------
    dict
        ``kind``, ``name``, ``status`` (``'done'`` or ``'failed'``), ``reason``,
        ``made`` (bool), ``outputs``, ``seconds``, ``warnings``.
    """
    from astrophot.io import write_frame

    t0 = time.perf_counter()
    result = {"kind": task["kind"], "name": task["name"], "status": "done", "reason": "", "made": False}
    result["outputs"] = list(task["outputs"])
    with _recorded_warnings(result, task["name"]):
        try:
            if not _up_to_date(task):
                product = _MAKERS[task["kind"]](task)
                if task["kind"] == "color":
                    _write_picture(product, task)
                else:
                    write_frame(product, task["outputs"][0], overwrite=True)
                result["made"] = True
        except Exception as exc:  # one product's failure is reported; the night goes on
            log.warning("%s: failed: %s: %s", task["name"], type(exc).__name__, exc)
            result["status"] = "failed"
            result["reason"] = f"{type(exc).__name__}: {exc}"
    result["seconds"] = time.perf_counter() - t0
    return result
