# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Resumable state of a night: the output-folder lock and stale temporaries.

Whether a product is up to date is read from its own provenance by
`astrophot.io.up_to_date_reason` (see `astrophot.pipeline._tasks`): the
FITS file and its sidecar are a pair, its pixels match the recorded
checksum, and its last steps name the functions, parameters, version and
input checksums the plan would use now.
"""

import errno
import logging
import os
from pathlib import Path

from astrophot.exceptions import AstrophotError

__all__ = ["OutputLock", "OutputLockedError", "remove_stale"]

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
    Remove the temporary files and write locks a killed run left behind
    (`astrophot.io.remove_stale_temporaries`: only those of writers that are
    gone).

    Returns
    -------
    list of Path
        The files removed.
    """
    from astrophot.io import remove_stale_temporaries

    removed = list(remove_stale_temporaries(output) or [])
    if removed:
        log.info("removed %d temporary file(s) of an interrupted run", len(removed))
    return removed
