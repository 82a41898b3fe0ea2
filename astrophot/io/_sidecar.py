# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The ASDF sidecar that holds a frame's provenance."""

import re
from pathlib import Path

from astrophot.exceptions import ProvenanceError

__all__ = ["read_sidecar", "read_sidecar_for", "sidecar_path", "write_sidecar"]

_FITS_SUFFIX = re.compile(r"\.(fits?|fts)(\.(gz|bz2|fz))?$|\.fz$", re.IGNORECASE)


def sidecar_path(fits_path):
    """``name.fits`` -> ``name.asdf`` (also for .fit, .fts and compressed endings)."""
    fits_path = Path(fits_path)
    stem = _FITS_SUFFIX.sub("", fits_path.name)
    if stem == fits_path.name:
        stem = fits_path.stem
    return fits_path.with_name(stem + ".asdf")


def _ensure_registered():
    """Register the extension when astrophot runs from a source tree (no entry points)."""
    import asdf

    from astrophot.io.asdf._entry_points import MANIFEST_URI, get_extensions, get_resource_mappings

    config = asdf.get_config()
    if any(ext.extension_uri == MANIFEST_URI.replace("manifests", "extensions") for ext in config.extensions):
        return
    for mapping in get_resource_mappings():
        config.add_resource_mapping(mapping)
    for extension in get_extensions():
        config.add_extension(extension)


def write_sidecar(path, provenance, *, fits_name, frame_type):
    """Write the sidecar file ``path`` (no atomicity: see `write_frame`)."""
    import asdf

    _ensure_registered()
    tree = {"fits_file": fits_name, "frame_type": frame_type, "provenance": provenance}
    asdf.AsdfFile(tree).write_to(str(path))


def read_sidecar(path):
    """Return the `~astrophot.provenance.Provenance` stored in a sidecar."""
    import asdf

    from astrophot.provenance import Provenance

    _ensure_registered()
    try:
        with asdf.open(str(path), lazy_load=False, memmap=False) as af:
            prov = af.tree.get("provenance")
    except Exception as exc:
        raise ProvenanceError(f"{path}: cannot read provenance sidecar ({exc})") from exc
    if not isinstance(prov, Provenance):
        raise ProvenanceError(f"{path}: sidecar holds no astrophot provenance record")
    return prov


def read_sidecar_for(fits_path, *, missing_ok=False):
    """The provenance in the sidecar beside ``fits_path`` (None if absent and ``missing_ok``)."""
    path = sidecar_path(fits_path)
    if not path.exists():
        if missing_ok:
            return None
        raise ProvenanceError(f"{fits_path}: its provenance sidecar {path.name} is missing")
    return read_sidecar(path)
