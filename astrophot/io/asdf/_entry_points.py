# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Entry points registered with asdf (see setup.cfg)."""

from pathlib import Path

__all__ = ["get_extensions", "get_resource_mappings"]

_RESOURCES = Path(__file__).resolve().parents[2] / "resources"
MANIFEST_URI = "asdf://astrophot.org/astrophot/manifests/astrophot-1.0.0"


def get_resource_mappings():
    """The manifest and schemas shipped in ``astrophot/resources``."""
    from asdf.resource import DirectoryResourceMapping

    return [
        DirectoryResourceMapping(
            _RESOURCES / "schemas", "asdf://astrophot.org/astrophot/schemas/", recursive=True
        ),
        DirectoryResourceMapping(
            _RESOURCES / "manifests", "asdf://astrophot.org/astrophot/manifests/", recursive=True
        ),
    ]


def get_extensions():
    """The astrophot extension, built from its manifest."""
    from asdf.extension import ManifestExtension

    from astrophot.io.asdf._converters import (
        FrameReferenceConverter,
        ProcessingStepConverter,
        ProvenanceConverter,
    )

    return [
        ManifestExtension.from_uri(
            MANIFEST_URI,
            converters=[FrameReferenceConverter(), ProcessingStepConverter(), ProvenanceConverter()],
        )
    ]
