# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The astrophot asdf extension (provenance records in the sidecar)."""

from astrophot.io.asdf._converters import (
    FrameReferenceConverter,
    ProcessingStepConverter,
    ProvenanceConverter,
)
from astrophot.io.asdf._entry_points import get_extensions, get_resource_mappings

__all__ = [
    "FrameReferenceConverter",
    "ProcessingStepConverter",
    "ProvenanceConverter",
    "get_extensions",
    "get_resource_mappings",
]
