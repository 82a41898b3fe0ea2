# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Masks from user regions: boolean arrays, FITS masks and small ds9 region files.

Only image-coordinate shapes are read (``circle``, ``ellipse``, ``box``,
``polygon``; ds9's 1-based pixel convention); anything else in the file is
reported with its line number.
"""

import math
import re
from pathlib import Path

import numpy as np
from astropy.io import fits

from astrophot.exceptions import FrameMismatchError, UserRegionsError

__all__ = []

_SHAPE = re.compile(r"^\s*(-?)\s*(circle|ellipse|box|polygon)\s*\(([^)]*)\)", re.IGNORECASE)
_SKIP = re.compile(r"^\s*(#|global\b|image\s*$|$)", re.IGNORECASE)
_SKY_FRAMES = ("fk4", "fk5", "icrs", "galactic", "ecliptic", "j2000", "b1950", "wcs", "physical")


def _numbers(text, path, lineno):
    values = []
    for item in text.split(","):
        item = item.strip().rstrip('"')
        try:
            values.append(float(item))
        except ValueError:
            raise UserRegionsError(
                f"{path}, line {lineno}: {item!r} is not a number (only image-pixel regions are read)"
            ) from None
    return values


def regions_mask(text, shape, *, path="<regions>"):
    """
    Rasterise ds9 region text (image coordinates) onto an array of ``shape``.

    Regions starting with ``-`` (ds9's exclude) are removed from the mask.
    """
    mask = np.zeros(shape, dtype=bool)
    coordinate_frame = "image"
    for lineno, raw_line in enumerate(text.splitlines(), start=1):
        for line in raw_line.split(";"):
            stripped = line.strip()
            if _SKIP.match(stripped):
                if stripped.lower() == "image":
                    coordinate_frame = "image"
                continue
            lowered = stripped.lower()
            if lowered in _SKY_FRAMES:
                coordinate_frame = lowered
                continue
            match = _SHAPE.match(stripped)
            if not match:
                raise UserRegionsError(f"{path}, line {lineno}: cannot read region {stripped!r}")
            if coordinate_frame != "image":
                raise UserRegionsError(
                    f"{path}, line {lineno}: regions in {coordinate_frame!r} coordinates are not supported; "
                    "save the regions in image coordinates"
                )
            exclude, shape_name, args = match.group(1) == "-", match.group(2).lower(), match.group(3)
            values = _numbers(args, path, lineno)
            window, inside = _rasterise(shape_name, values, shape, path, lineno)
            if window is None:
                continue
            if exclude:
                mask[window] &= ~inside
            else:
                mask[window] |= inside
    return mask


def _window(xmin, xmax, ymin, ymax, shape):
    ny, nx = shape
    x0, x1 = max(0, int(math.floor(xmin))), min(nx, int(math.ceil(xmax)) + 1)
    y0, y1 = max(0, int(math.floor(ymin))), min(ny, int(math.ceil(ymax)) + 1)
    if x0 >= x1 or y0 >= y1:
        return None, None, None
    yy, xx = np.mgrid[y0:y1, x0:x1]
    return (slice(y0, y1), slice(x0, x1)), xx, yy


def _rasterise(shape_name, values, shape, path, lineno):
    need = {"circle": 3, "ellipse": 5, "box": 4}
    if shape_name in need and len(values) < need[shape_name]:
        raise UserRegionsError(f"{path}, line {lineno}: {shape_name} needs {need[shape_name]} numbers")
    if shape_name == "polygon":
        if len(values) < 6 or len(values) % 2:
            raise UserRegionsError(f"{path}, line {lineno}: polygon needs pairs of x, y (at least three)")
        from matplotlib.path import Path as MplPath

        vertices = np.array(values).reshape(-1, 2) - 1.0
        window, xx, yy = _window(
            vertices[:, 0].min(), vertices[:, 0].max(), vertices[:, 1].min(), vertices[:, 1].max(), shape
        )
        if window is None:
            return None, None
        poly = MplPath(vertices)
        points = np.column_stack([xx.ravel(), yy.ravel()])
        return window, poly.contains_points(points, radius=1e-9).reshape(xx.shape)
    x0, y0 = values[0] - 1.0, values[1] - 1.0
    extent = max(abs(v) for v in values[2:4]) if shape_name != "circle" else abs(values[2])
    window, xx, yy = _window(x0 - extent, x0 + extent, y0 - extent, y0 + extent, shape)
    if window is None:
        return None, None
    if shape_name == "circle":
        return window, (xx - x0) ** 2 + (yy - y0) ** 2 <= values[2] ** 2
    angle = math.radians(values[4]) if len(values) > 4 else 0.0
    cos, sin = math.cos(angle), math.sin(angle)
    dx, dy = xx - x0, yy - y0
    u = dx * cos + dy * sin
    v = -dx * sin + dy * cos
    if shape_name == "ellipse":
        return window, (u / values[2]) ** 2 + (v / values[3]) ** 2 <= 1.0
    # box: full width and height
    return window, (np.abs(u) <= values[2] / 2.0) & (np.abs(v) <= values[3] / 2.0)


def load_mask(spec, shape, *, name, what):
    """
    A boolean mask of ``shape`` from an array, a FITS mask file or a ds9 region file/text.
    """
    if spec is None:
        return None
    if isinstance(spec, (str, Path)):
        text_spec = str(spec)
        path = Path(text_spec)
        if "\n" in text_spec or "(" in text_spec:
            return regions_mask(text_spec, shape, path="<regions text>")
        if not path.exists():
            raise UserRegionsError(f"{path}: no such {what} file")
        if path.suffix.lower() in (".reg", ".txt", ".ds9"):
            return regions_mask(path.read_text(), shape, path=str(path))
        try:
            data = fits.getdata(path)
        except Exception as exc:
            raise UserRegionsError(f"{path}: not a ds9 region file (.reg) or FITS mask ({exc})") from exc
        spec = np.asarray(data) != 0
    mask = np.asarray(getattr(spec, "data", spec))
    if mask.shape != tuple(shape):
        raise FrameMismatchError(
            f"{name}: {what} shape {mask.shape} does not match the image shape {tuple(shape)}"
        )
    return mask.astype(bool)
