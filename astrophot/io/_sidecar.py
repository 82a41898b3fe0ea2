# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The ASDF sidecar that holds a frame's provenance."""

import io
import re
from pathlib import Path

from astrophot.exceptions import ProvenanceError

__all__ = ["read_sidecar", "read_sidecar_for", "sidecar_path", "write_sidecar"]

_FITS_SUFFIX = re.compile(r"\.(fits?|fts)(\.(gz|bz2|fz))?$|\.fz$", re.IGNORECASE)
#: A sidecar holds YAML only; anything bigger is refused unread.
MAX_SIDECAR_BYTES = 32 * 1024 * 1024
_BLOCK_MAGIC = b"\xd3BLK"


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
    """
    Write the sidecar file ``path`` (no atomicity: see `write_frame`).

    asdf is given an open file, never the path string: a string is a URI to
    asdf (``#``, ``?``, ``%`` would send the file elsewhere) and asdf would
    make temporaries of its own.
    """
    import asdf

    _ensure_registered()
    tree = {"fits_file": fits_name, "frame_type": frame_type, "provenance": provenance}
    with open(path, "wb") as handle:
        asdf.AsdfFile(tree).write_to(handle)


def _one_line(exc):
    text = getattr(exc, "message", None) or str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"{type(exc).__name__}: {first}"


def _validate(af, path):
    """
    Check the tree against the astrophot schemas now (asdf does not on read).

    A sidecar edited by hand that breaks them was accepted here and failed at
    the next write with a 15-line jsonschema dump: one line naming the file,
    the place in the record and the problem instead.
    """
    from asdf.exceptions import ValidationError

    try:
        af.validate()
    except ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "its top"
        raise ProvenanceError(
            f"{path}: the provenance sidecar breaks its schema at {where}: {exc.message}"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ProvenanceError(
            f"{path}: the provenance sidecar holds an invalid value ({_one_line(exc)})"
        ) from None


def read_sidecar(path):
    """
    Return the `~astrophot.provenance.Provenance` stored in a sidecar.

    Only the YAML tree is read: a sidecar holding binary blocks (which could
    decompress to gigabytes) or larger than 32 MB is refused unread. Errors
    are one line naming the file.
    """
    import asdf

    from astrophot.provenance import Provenance

    _ensure_registered()
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise ProvenanceError(f"{path}: cannot read provenance sidecar ({_one_line(exc)})") from exc
    if len(data) > MAX_SIDECAR_BYTES:
        raise ProvenanceError(f"{path}: provenance sidecar larger than {MAX_SIDECAR_BYTES >> 20} MB; refused")
    if _BLOCK_MAGIC in data:
        raise ProvenanceError(
            f"{path}: provenance sidecar holds binary blocks (astrophot writes none); refused"
        )
    try:
        with asdf.open(io.BytesIO(data), lazy_load=True, memmap=False) as af:
            _validate(af, path)
            prov = af.tree.get("provenance")
    except ProvenanceError:
        raise
    except Exception as exc:
        raise ProvenanceError(f"{path}: cannot read provenance sidecar ({_one_line(exc)})") from exc
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
