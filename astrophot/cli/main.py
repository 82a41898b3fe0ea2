# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``astrophot <stage> ...``: one subcommand per pipeline stage.

The subcommands are listed once, in pipeline order, in `SUBCOMMANDS`: each row names the
subcommand, the module ``astrophot/cli/<module>.py`` whose ``register(subparsers)`` adds it,
and its one-line summary for ``astrophot --help``. Only the module of the subcommand being run
is imported (``astrophot --help`` imports none), so start-up stays fast. To add a subcommand,
write ``astrophot/cli/<module>.py`` with ``register(subparsers)`` and add one row here.

This module parses the arguments, sets up logging (warnings included, on stderr) and turns
astrophot errors into one line on stderr and exit code 1. The original ``ap_*`` scripts' names
(``ap_calibrate`` ...) are aliases of subcommands.
"""

import argparse
import importlib
import importlib.util
import logging
import sys
from typing import NamedTuple

__all__ = ["ALIASES", "SUBCOMMANDS", "Subcommand", "build_parser", "main"]

log = logging.getLogger("astrophot")


class Subcommand(NamedTuple):
    """One row of the subcommand table."""

    name: str
    module: str  #: ``astrophot.cli.<module>`` defines ``register(subparsers)``
    summary: str  #: the line shown by ``astrophot --help``


#: Every subcommand in pipeline order. A row whose module does not exist (yet) is left out.
SUBCOMMANDS = (
    Subcommand("run", "run", "process a whole night: calibrate, clean, solve, grade, combine"),
    Subcommand(
        "prepare", "prepare", "unzip an iTelescope download, replace spaces in names, fix permissions"
    ),
    Subcommand("combine", "calibration", "combine raw bias, dark or flat frames into a master"),
    Subcommand("read-noise", "calibration", "read noise (and gain) from two bias frames"),
    Subcommand("find-badpix", "calibration", "bad-pixel map from a master dark (and flat, and user regions)"),
    Subcommand("find-badcols", "calibration", "bad columns and rows of a calibrated frame, as YAML"),
    Subcommand("calib-index", "calibration", "index a calibration library; choose the masters for lights"),
    Subcommand(
        "calibrate", "reduction", "bias/dark/flat calibration with uncertainty and data-quality flags"
    ),
    Subcommand("add-metadata", "reduction", "target, site, time, airmass, Moon and Sun keywords (offline)"),
    Subcommand("fix-badpix", "reduction", "replace flagged pixels by their good neighbours"),
    Subcommand("cosmic-rays", "reduction", "find, flag and replace cosmic rays (L.A.Cosmic)"),
    Subcommand("background", "analysis", "estimate the sky background (and its RMS); optionally subtract it"),
    Subcommand(
        "find-stars", "analysis", "find stars, measure them and the PSF (ECSV star list, ds9 regions)"
    ),
    Subcommand("solve", "astrometry", "plate-solve frames: find and verify their WCS"),
    Subcommand("index", "index", "list or fetch the astrometry.net 5200-series index files a field needs"),
    Subcommand(
        "quality", "analysis", "grade frames: CSV, plots and an HTML report of accepted/rejected frames"
    ),
    Subcommand("resample", "resample", "resample solved frames onto a common grid"),
    Subcommand("stack", "stack", "stack solved frames of one target and filter into one deep image"),
    Subcommand("mosaic", "mosaic", "mosaic of pointings on one grid, their backgrounds matched"),
    Subcommand("continuum", "color", "continuum-subtract a narrow-band frame with a broad-band frame"),
    Subcommand("color", "color", "colour composite from stacked filter images"),
    Subcommand("imarith", "analysis", "add, subtract, multiply or divide a frame by a frame or a number"),
    Subcommand("info", "info", "describe frames: type, shape, exposure, filter, provenance"),
    Subcommand("simulate", "simulate", "write a simulated iTelescope night (raw frames, library, truth)"),
    Subcommand("demo", "demo", "simulate a small night and run every pipeline stage on it"),
)

#: The original ``ap_*`` scripts' names and the subcommands they stand for.
ALIASES = {
    "ap_combine_darks": "combine",
    "ap_calc_read_noise": "read-noise",
    "ap_find_badpix": "find-badpix",
    "ap_auto_badcols": "find-badcols",
    "ap_calibrate": "calibrate",
    "ap_add_metadata": "add-metadata",
    "ap_fix_badpix": "fix-badpix",
    "ap_fix_cosmic_rays": "cosmic-rays",
    "ap_find_stars": "find-stars",
    "ap_astrometry": "solve",
    "ap_quality_summary": "quality",
    "ap_imarith": "imarith",
    "ap_measure_background": "background",
    "ap_resample": "resample",
    "ap_stack": "stack",
    "ap_continuum": "continuum",
    "ap_color": "color",
}

_VALUE_OPTIONS = ("-l", "--log-level", "--loglevel")


def _available(row):
    return importlib.util.find_spec(f"astrophot.cli.{row.module}") is not None


class _Only:
    """A ``subparsers`` stand-in that keeps only the subcommands named in ``names``."""

    def __init__(self, subparsers, names):
        self._subparsers = subparsers
        self._names = names

    def add_parser(self, name, **kwargs):
        if name in self._names:
            return self._subparsers.add_parser(name, **kwargs)
        return argparse.ArgumentParser(prog=name, add_help=False)


def command_of(argv):
    """
    The subcommand named in ``argv`` (after the global options), or None.

    Parameters
    ----------
    argv : iterable of str
        The command-line arguments, without the program name.

    Returns
    -------
    str or None
        The first argument that is neither an option nor an option's value.
    """
    argv = list(argv)
    while argv:
        token = argv.pop(0)
        if token in _VALUE_OPTIONS:
            argv = argv[1:]
        elif not token.startswith("-"):
            return token
    return None


def build_parser(command=None):
    """
    The argument parser.

    With ``command`` (a subcommand's name) only that subcommand's module is imported and
    its full parser built; the others are listed by name and summary. Without it every
    available subcommand's module is imported (for tests and documentation).

    Parameters
    ----------
    command : str, optional
        The subcommand whose parser is built; None builds them all (``""`` none).

    Returns
    -------
    argparse.ArgumentParser
        The ``astrophot`` parser.
    """
    from astrophot import __version__

    parser = argparse.ArgumentParser(
        prog="astrophot",
        description=(
            "From raw iTelescope (or any CCD) frames to calibrated, solved, graded products. "
            "The subcommands are listed in pipeline order; `astrophot <stage> --help` describes one."
        ),
        epilog="The original ap_* scripts' names (ap_calibrate, ...) are aliases of these subcommands.",
    )
    parser.add_argument("--version", action="version", version=f"astrophot {__version__}")
    parser.add_argument(
        "-l",
        "--log-level",
        "--loglevel",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (DEBUG also shows tracebacks)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<stage>")
    rows = [row for row in SUBCOMMANDS if _available(row)]
    for row in rows:
        if command is None or row.name == command:
            module = importlib.import_module(f"astrophot.cli.{row.module}")
            module.register(_Only(subparsers, {row.name}))
            sub = subparsers.choices[row.name]
            sub.description = sub.description or row.summary[0].upper() + row.summary[1:] + "."
            for action in subparsers._choices_actions:  # the table's line is the one --help shows
                if action.dest == row.name:
                    action.help = row.summary
        else:
            subparsers.add_parser(row.name, help=row.summary, add_help=False)
    return parser


def _setup_logging(level):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger("astrophot")
    root.handlers[:] = [handler]
    root.setLevel(level)
    _guard_root_logger()
    from astrophot.cli._common import install_warning_display

    install_warning_display()


class _NotAstrophot(logging.Filter):
    """Records of other loggers only: astrophot's have their own handler."""

    def filter(self, record):
        """
        Whether ``record`` is shown by the root logger's handler.

        Parameters
        ----------
        record : logging.LogRecord
            The record.

        Returns
        -------
        bool
            False for the ``astrophot`` logger and its children.
        """
        return not (record.name == "astrophot" or record.name.startswith("astrophot."))


def _guard_root_logger():
    """
    Give the root logger a handler when it has none.

    A library calling ``logging.debug()`` (ccdproc's ImageFileCollection does) would run
    ``logging.basicConfig()``, and every astrophot line would then show twice on stderr.
    The handler shows other loggers' warnings as Python's last resort would, once.
    """
    if logging.root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.addFilter(_NotAstrophot())
    logging.root.addHandler(handler)


def main(argv=None):
    """
    Run the command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments, without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0 on success, 1 on an error (reported on stderr), 2
        without a subcommand, else what the subcommand returns.
    """
    from astrophot.exceptions import AstrophotError

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_of(argv) or "")
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    _setup_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except (AstrophotError, OSError, ValueError) as exc:
        if args.log_level == "DEBUG":
            raise
        from astrophot.cli._common import cli_words

        print(f"astrophot {args.command}: error: {cli_words(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"astrophot {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an astrophot bug or an unforeseen input: still one line
        if args.log_level == "DEBUG":
            raise
        print(
            f"astrophot {args.command}: unexpected error: {type(exc).__name__}: {exc} "
            "(run with -l DEBUG for the traceback)",
            file=sys.stderr,
        )
        return 1


def _make_alias(subcommand):
    def alias(argv=None):
        argv = sys.argv[1:] if argv is None else list(argv)
        # global options may come first, as in `ap_calibrate -l DEBUG ...`
        leading = []
        while argv and argv[0] in ("-l", "--log-level", "--loglevel"):
            leading.extend(argv[:2])
            argv = argv[2:]
        sys.exit(main([*leading, subcommand, *argv]))

    alias.__doc__ = f"The original ``ap_*`` script name for ``astrophot {subcommand}``."
    return alias


for _alias, _sub in ALIASES.items():
    globals()[_alias] = _make_alias(_sub)


def run():
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
