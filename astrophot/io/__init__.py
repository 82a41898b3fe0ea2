# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Frame I/O: FITS pixels plus an ASDF provenance sidecar."""

from astrophot.io._atomic import clean_stale_temporaries
from astrophot.io._fits import (
    classify_imagetyp,
    read_frame,
    read_header_text,
    remove_stale_temporaries,
    write_frame,
)
from astrophot.io._sidecar import read_sidecar, sidecar_path
from astrophot.io._uptodate import is_up_to_date, up_to_date_reason

__all__ = [
    "classify_imagetyp",
    "clean_stale_temporaries",
    "is_up_to_date",
    "read_frame",
    "read_header_text",
    "read_sidecar",
    "remove_stale_temporaries",
    "sidecar_path",
    "up_to_date_reason",
    "write_frame",
]
