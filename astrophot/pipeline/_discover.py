# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Discovery: every FITS file of a night, classified and grouped."""

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FileInfo", "discover_files", "group_lights"]

log = logging.getLogger(__name__)

_FITS = re.compile(r"\.(fits?|fts)(\.(gz|bz2|fz))?$", re.IGNORECASE)
_KEYWORDS = [
    "imagetyp",
    "filter",
    "exposure",
    "exptime",
    "xbinning",
    "telescop",
    "object",
    "date-obs",
    "naxis1",
    "naxis2",
    "apframe",
]
#: file-name prefixes iTelescope uses for masters and lights
_NAME_KINDS = (("master_bias", "master bias"), ("master_dark", "master dark"), ("master_flat", "master flat"))


@dataclass
class FileInfo:
    """One file of a night and what it is."""

    path: Path
    kind: str
    telescope: str | None = None
    target: str | None = None
    filter: str | None = None
    binning: int | None = None
    exposure: float | None = None
    date_obs: str | None = None
    shape: tuple | None = None
    problem: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def group(self):
        """Telescope, target, filter, binning and exposure of a light."""
        return (self.telescope, self.target, self.filter, self.binning, self.exposure)


def _clean(value):
    if value is None:
        return None
    try:
        import numpy as np

        if value is np.ma.masked:
            return None
    except ImportError:  # pragma: no cover
        pass
    text = str(value).strip()
    return text or None


def _number(value):
    value = _clean(value)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _kind(row, name):
    from astrophot.io._fits import classify_imagetyp

    lower = name.lower()
    for prefix, kind in _NAME_KINDS:
        if lower.startswith(prefix):
            return kind
    if _clean(row.get("apframe")):
        return "product"
    kind = classify_imagetyp(_clean(row.get("imagetyp")))
    if kind is None and lower.startswith(("raw-", "calibrated-")):
        kind = "light"
    return kind or "unknown"


def _from_name(info):
    """Fill what the header lacks from an iTelescope file name."""
    from astrophot.instruments.itelescope import parse_filename

    try:
        record = parse_filename(info.path.name)
    except Exception:
        return
    info.telescope = info.telescope or record.telescope
    info.target = info.target or record.target
    info.filter = info.filter or record.filter
    info.binning = info.binning or record.binning
    if info.exposure is None and record.exposure is not None:
        info.exposure = float(record.exposure.value)


def _telescope(text):
    if not text:
        return None
    match = re.search(r"\bT\s*-?(\d{1,2})\b", text, re.IGNORECASE)
    return f"T{int(match.group(1)):02d}" if match else text


def _collection_rows(directory, names):
    """Header rows of the FITS files of one directory through ccdproc's ImageFileCollection."""
    from ccdproc import ImageFileCollection

    collection = ImageFileCollection(directory, keywords=_KEYWORDS, filenames=sorted(names))
    table = collection.summary
    if table is None:
        return {}
    rows = {}
    for row in table:
        rows[str(row["file"])] = {key: row[key] for key in table.colnames if key != "file"}
    return rows


def _read_rows(directory, names):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _collection_rows(directory, names), {}
        except Exception as exc:  # a corrupt file breaks the whole collection: read one by one
            log.debug("%s: ImageFileCollection failed (%s); reading headers one by one", directory, exc)
    rows, problems = {}, {}
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                rows.update(_collection_rows(directory, [name]))
            except Exception as exc:
                problems[name] = f"unreadable FITS file ({type(exc).__name__}: {exc})"
    return rows, problems


def _info(path, row):
    info = FileInfo(path=path, kind=_kind(row, path.name))
    info.telescope = _telescope(_clean(row.get("telescop")))
    info.target = _clean(row.get("object"))
    info.filter = _clean(row.get("filter"))
    binning = _number(row.get("xbinning"))
    info.binning = int(binning) if binning else None
    info.exposure = _number(row.get("exposure"))
    if info.exposure is None:
        info.exposure = _number(row.get("exptime"))
    info.date_obs = _clean(row.get("date-obs"))
    nx, ny = _number(row.get("naxis1")), _number(row.get("naxis2"))
    info.shape = (int(ny), int(nx)) if nx and ny else None
    if info.shape is None:
        info.problem = "no image data in the primary HDU"
    _from_name(info)
    return info


def discover_files(root, *, exclude=()):
    """
    Find and classify every FITS file below ``root``.

    Parameters
    ----------
    root : path-like
    exclude : sequence of path-like, optional
        Directories not to search (the output folder, the library).

    Returns
    -------
    list of FileInfo
        Sorted by path; ``kind`` is ``'light'``, ``'bias'``, ``'dark'``,
        ``'flat'``, ``'master bias'`` ..., ``'product'`` (an astrophot
        product), ``'unknown'`` or ``'corrupt'`` (then ``problem`` says why).
    """
    root = Path(root)
    excluded = [Path(p).resolve() for p in exclude]
    by_dir = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or not _FITS.search(path.name) or path.name.startswith("."):
            continue
        resolved = path.resolve()
        if any(resolved.is_relative_to(e) for e in excluded):
            continue
        by_dir.setdefault(path.parent, []).append(path.name)
    found = []
    for directory, names in by_dir.items():
        rows, problems = _read_rows(directory, names)
        for name in names:
            path = directory / name
            if name in problems or name not in rows:
                info = FileInfo(path=path, kind="corrupt", problem=problems.get(name, "no header read"))
                _from_name(info)
                found.append(info)
                continue
            found.append(_info(path, rows[name]))
    return sorted(found, key=lambda f: str(f.path))


def group_lights(files):
    """
    Group the lights by telescope, target, filter, binning and exposure.

    Parameters
    ----------
    files : sequence of FileInfo

    Returns
    -------
    dict
        Group key to list of FileInfo.
    """
    groups = {}
    for info in files:
        if info.kind == "light" and info.problem is None:
            groups.setdefault(info.group, []).append(info)
    return groups
