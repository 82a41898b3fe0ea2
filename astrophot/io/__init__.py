# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Frame I/O: FITS pixels plus an ASDF provenance sidecar.

The names are imported on first use, so the light helpers (``astrophot.io._atomic``, the one
file writer) can be used without importing astropy.
"""

import importlib

#: Public name -> the module that defines it.
_NAMES = {
    "classify_imagetyp": "astrophot.io._fits",
    "clean_stale_temporaries": "astrophot.io._atomic",
    "is_up_to_date": "astrophot.io._uptodate",
    "read_frame": "astrophot.io._fits",
    "read_header_text": "astrophot.io._fits",
    "read_sidecar": "astrophot.io._sidecar",
    "remove_stale_temporaries": "astrophot.io._fits",
    "sidecar_path": "astrophot.io._sidecar",
    "up_to_date_reason": "astrophot.io._uptodate",
    "write_frame": "astrophot.io._fits",
}

__all__ = sorted(_NAMES)


def __getattr__(name):
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'astrophot.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_NAMES})
