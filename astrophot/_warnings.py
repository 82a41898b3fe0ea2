# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Silencing third-party warnings in code that runs in threads.

`warnings.catch_warnings` saves and restores the process-wide filter list:
two threads inside it at once restore each other's filters out of order,
and a warning meant to be silenced reaches the user (or, under pytest's
``error`` filter, becomes an exception: astropy's "cdelt will be ignored
since cd is present" from the astrometry backends running side by side).
`quiet` serialises these sections with one lock, so the filters are always
restored in order. Keep the sections short: a WCS transform, a header read.
"""

import contextlib
import threading
import warnings

__all__ = ["quiet"]

_LOCK = threading.RLock()


@contextlib.contextmanager
def quiet():
    """Ignore every warning inside the block (thread-safe among `quiet` blocks)."""
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
