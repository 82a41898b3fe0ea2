# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``astrophot <stage> ...``: one subcommand per pipeline stage.

Each module ``astrophot/cli/<family>.py`` that defines ``register(subparsers)``
adds its subcommands; this module finds them, parses the arguments, sets up
logging and turns astrophot errors into one line on stderr and exit code 1.
The seed's script names (``ap_calibrate`` ...) are aliases of subcommands.
"""

import argparse
import importlib
import logging
import pkgutil
import sys

__all__ = ["ALIASES", "build_parser", "main"]

log = logging.getLogger("astrophot")

#: The seed's script names and the subcommands they stand for.
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
}


def _command_modules():
    import astrophot.cli as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name in ("main",) or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"astrophot.cli.{info.name}")
        if hasattr(module, "register"):
            yield module


def build_parser():
    """The argument parser with every registered subcommand."""
    from astrophot import __version__

    parser = argparse.ArgumentParser(
        prog="astrophot",
        description="From raw iTelescope (or any CCD) frames to calibrated, solved, graded products.",
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
    for module in _command_modules():
        module.register(subparsers)
    return parser


def _setup_logging(level):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger("astrophot")
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)


def main(argv=None):
    """Run the command line; returns the exit code."""
    from astrophot.exceptions import AstrophotError

    parser = build_parser()
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
        print(f"astrophot {args.command}: error: {exc}", file=sys.stderr)
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

    alias.__doc__ = f"The seed's script name for ``astrophot {subcommand}``."
    return alias


for _alias, _sub in ALIASES.items():
    globals()[_alias] = _make_alias(_sub)


def run():
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
