# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Resumable state of a night: the output-folder lock, stale temporaries and
whether a product is up to date.

A product is up to date when its FITS file and sidecar are a pair (same
provenance id in the header and the sidecar) and the recipe recorded when it
was written (input checksums, function, parameters, astrophot version) equals
the one the plan would use now. (To be replaced by the reliability work's
``astrophot.io.is_up_to_date`` once it lands.)
"""

import errno
import hashlib
import json
import logging
import os
from pathlib import Path

from astrophot.exceptions import AstrophotError

__all__ = ["OutputLock", "OutputLockedError", "file_checksum", "is_current", "record_recipe", "remove_stale"]

log = logging.getLogger(__name__)

STATE_DIR = ".astrophot"
LOCK_NAME = "run.lock"


class OutputLockedError(AstrophotError, RuntimeError):
    """Another run is using the output folder."""


class OutputLock:
    """
    An exclusive lock on an output folder (``flock``: released by the kernel
    when the process dies, so a run killed with ``kill -9`` leaves no stale
    lock).
    """

    def __init__(self, output):
        self.path = Path(output) / STATE_DIR / LOCK_NAME
        self._fd = None

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise OutputLockedError(
                    f"{self.path.parent.parent}: another astrophot run (pid {holder}) is using this output "
                    "folder; wait for it to finish or choose another folder"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc):
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def remove_stale(output):
    """
    Remove temporary files a killed run left behind (``.name.*.tmp``).

    Only called under the lock, so no other writer can own them.

    Returns
    -------
    list of Path
        The files removed.
    """
    try:
        from astrophot.io import remove_stale_temporaries  # the reliability work, when it lands
    except ImportError:
        remove_stale_temporaries = None
    if remove_stale_temporaries is not None:
        return list(remove_stale_temporaries(output) or [])
    removed = []
    for path in Path(output).rglob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info("removed %d temporary file(s) of an interrupted run", len(removed))
    return removed


def file_checksum(path, *, _cache={}):  # noqa: B006 - a per-process cache keyed by (path, size, mtime)
    """sha256 of a file's bytes."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _cache:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _cache[key] = digest.hexdigest()
    return _cache[key]


def recipe(*, inputs, function, parameters):
    """The recipe of a product: input checksums, function, parameters and version."""
    from astrophot import __version__

    return {
        "inputs": {str(k): file_checksum(v) if v else None for k, v in sorted(inputs.items())},
        "function": function,
        "parameters": json.loads(json.dumps(parameters, sort_keys=True, default=str)),
        "version": __version__,
    }


def _recipe_path(product):
    product = Path(product)
    return product.with_name(f"{product.name}.recipe.json")


def _pair_ok(product):
    from astropy.io import fits

    from astrophot.io._sidecar import read_sidecar_for

    product = Path(product)
    if not product.exists():
        return False
    if product.suffix.lower() not in (".fits", ".fit", ".fts"):
        return True
    try:
        header = fits.getheader(product)
        prov = read_sidecar_for(product, missing_ok=True)
    except Exception:
        return False
    return prov is not None and header.get("APPROVID") == prov.id


def is_current(product, *, inputs, function, parameters):
    """
    Whether ``product`` is up to date for this recipe.

    Parameters
    ----------
    product : path-like
    inputs : dict
        Role to input path.
    function : str
    parameters : dict

    Returns
    -------
    bool
    """
    product = Path(product)
    if not _pair_ok(product):
        return False
    try:
        recorded = json.loads(_recipe_path(product).read_text())
    except (OSError, ValueError):
        return False
    try:
        wanted = recipe(inputs=inputs, function=function, parameters=parameters)
    except OSError:
        return False
    return recorded == wanted


def record_recipe(product, *, inputs, function, parameters):
    """Record the recipe of a product just written (atomically, after the product)."""
    from astrophot.io._atomic import write_text_atomic

    text = json.dumps(
        recipe(inputs=inputs, function=function, parameters=parameters), indent=1, sort_keys=True
    )
    write_text_atomic(_recipe_path(product), text)
