# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Frame I/O: FITS pixels plus an ASDF provenance sidecar."""

from astrophot.io._fits import classify_imagetyp, read_frame, read_header_text, write_frame
from astrophot.io._sidecar import read_sidecar, sidecar_path
from astrophot.io._uptodate import is_up_to_date, up_to_date_reason

__all__ = [
    "classify_imagetyp",
    "is_up_to_date",
    "read_frame",
    "read_header_text",
    "read_sidecar",
    "sidecar_path",
    "up_to_date_reason",
    "write_frame",
]
