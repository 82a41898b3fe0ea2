# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Helpers shared by the subcommands (not a subcommand module: no ``register``)."""

from pathlib import Path

from astrophot.exceptions import AstrophotError

__all__ = ["default_output", "output_for"]

_SUFFIXES = (".fz", ".gz", ".bz2", ".fits", ".fit", ".fts")


def default_output(path, prefix):
    """
    The product name beside an input: ``raw-...fit`` -> ``<prefix>-...fits``.

    iTelescope names swap their prefix (`~astrophot.instruments.itelescope.output_name`);
    other names get ``<prefix>-`` in front and a ``.fits`` ending.
    """
    path = Path(path)
    try:
        from astrophot.instruments.itelescope import output_name

        name = output_name(path.name, prefix)
    except Exception:  # not an iTelescope name
        stem = path.name
        for suffix in _SUFFIXES:
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
        name = f"{prefix}-{stem}.fits"
    return path.with_name(str(name))


def output_for(path, output, n_inputs, *, prefix, verb):
    """
    Where the product of ``path`` goes: beside it, into the directory ``output``,
    or to the file ``output`` (one input only; else an `AstrophotError` using ``verb``).
    """
    if output is None:
        return default_output(path, prefix)
    output = Path(output)
    if output.is_dir():
        return output / default_output(path, prefix).name
    if n_inputs > 1:
        raise AstrophotError(f"--output {output} must be a directory when {verb} {n_inputs} frames")
    return output
