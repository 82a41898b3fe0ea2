# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The ASDF sidecar that holds a frame's provenance."""

import io
import re
from contextlib import contextmanager
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


#: The packages whose asdf extensions a sidecar needs besides astrophot's own:
#: its tree holds asdf's core tags and astrophot's, nothing else.
_SIDECAR_PACKAGES = ("asdf",)
_OWN_EXTENSIONS = []


def _own_extensions():
    """
    asdf's core extensions and astrophot's, loaded from their entry points once.

    ``asdf.get_config().extensions`` loads every installed extension the
    first time it is asked: asdf-astropy alone parses some thirty manifests
    with PyYAML's pure-Python loader (2.2 of 2.9 s on a quiet machine, 12 s
    at load 20), which every process paid at its first sidecar.
    """
    if not _OWN_EXTENSIONS:
        from importlib.metadata import entry_points

        from asdf.extension import ExtensionProxy

        from astrophot.io.asdf._entry_points import get_extensions

        found = []
        for entry in entry_points(group="asdf.extensions"):
            dist = entry.dist
            if dist is None or dist.name not in _SIDECAR_PACKAGES:
                continue
            for extension in entry.load()():
                found.append(ExtensionProxy(extension, package_name=dist.name, package_version=dist.version))
        # astrophot's own from the running tree (also when run from a source tree without entry points)
        from astrophot import __version__

        own = [
            ExtensionProxy(ext, package_name="astrophot-pipeline", package_version=__version__)
            for ext in get_extensions()
        ]
        found[:0] = own
        _OWN_EXTENSIONS[:] = found
    return list(_OWN_EXTENSIONS)


@contextmanager
def _sidecar_config():
    """
    An asdf configuration for reading and writing sidecars (thread-local, scoped).

    When nothing in the process has loaded asdf's extensions yet, only the
    two packages a sidecar needs are given to asdf in this scope (the global
    configuration is left untouched, so a user's own asdf files still see
    every installed extension). Otherwise the loaded list is used, with
    astrophot's extension added when the package runs from a source tree.
    """
    import asdf

    from astrophot.io.asdf._entry_points import MANIFEST_URI, get_resource_mappings

    extension_uri = MANIFEST_URI.replace("manifests", "extensions")
    with asdf.config_context() as config:
        if getattr(config, "_extensions", ()) is None:
            config._extensions = _own_extensions()
        elif not any(ext.extension_uri == extension_uri for ext in config.extensions):
            for extension in _own_extensions():
                if extension.extension_uri == extension_uri:
                    config.add_extension(extension)
        if MANIFEST_URI not in config.resource_manager:
            for mapping in get_resource_mappings():
                config.add_resource_mapping(mapping)
        yield config


def write_sidecar(path, provenance, *, fits_name, frame_type):
    """
    Write the sidecar file ``path`` (no atomicity: see `write_frame`).

    asdf is given an open file, never the path string: a string is a URI to
    asdf (``#``, ``?``, ``%`` would send the file elsewhere) and asdf would
    make temporaries of its own.
    """
    import asdf

    tree = {"fits_file": fits_name, "frame_type": frame_type, "provenance": provenance}
    with _sidecar_config(), open(path, "wb") as handle:
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
        with _sidecar_config(), asdf.open(io.BytesIO(data), lazy_load=True, memmap=False) as af:
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
