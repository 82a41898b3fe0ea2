# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Helpers shared by the subcommands (not a subcommand module: no ``register``).

The batch policy of every subcommand that takes frames (``FRAME...``): `run_batch`
processes every frame it can, reports each failure with its reason (one line on stderr
naming the file), and exits non-zero at the end. `output_for` says where a product goes
(beside its input, or into ``-o DIR``, which is created) and refuses an input as an output
and an existing frame of another kind. Warnings raised while a frame is processed are
shown once each, on stderr, naming the file (`show_warning`).
"""

import contextlib
import logging
import sys
import warnings
from pathlib import Path

from astrophot.exceptions import AstrophotError

__all__ = [
    "add_compress_argument",
    "add_frame_arguments",
    "printed_instead",
    "warn_if_cosmic_rays_left",
    "add_output_arguments",
    "check_output",
    "default_output",
    "frame_batch",
    "keep_if_up_to_date",
    "original_form",
    "output_for",
    "run_batch",
    "show_warning",
    "working_on",
]

log = logging.getLogger("astrophot")

_SUFFIXES = (".fz", ".gz", ".bz2", ".fits", ".fit", ".fts")
_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.fz", ".fits.gz")

#: The file being processed (warnings name it) and the warnings already shown.
_state = {"file": None, "shown": set()}


class working_on:
    """Context manager: warnings raised inside name ``path``."""

    def __init__(self, path):
        self.path = None if path is None else str(path)

    def __enter__(self):
        self.previous, _state["file"] = _state["file"], self.path
        return self

    def __exit__(self, *exc):
        _state["file"] = self.previous
        return False


def show_warning(message, category, filename, lineno, file=None, line=None):
    """`warnings.showwarning` for the command line: once each, on stderr, naming the file."""
    text = cli_words(str(message).strip())
    where = _state["file"]
    if where and where not in text and Path(where).name not in text:
        text = f"{where}: {text}"
    if text in _state["shown"]:
        return
    _state["shown"].add(text)
    logging.getLogger("astrophot").warning("%s", text)


def install_warning_display():
    """Route every warning through `show_warning` (called once by ``main``)."""
    _state["shown"] = set()
    warnings.simplefilter("always")
    warnings.showwarning = show_warning


def default_output(path, prefix, suffix=".fits"):
    """
    The product name beside an input: ``raw-...fit`` -> ``<prefix>-...fits``.

    iTelescope names swap their prefix (`~astrophot.instruments.itelescope.output_name`);
    other names get ``<prefix>-`` in front and a ``.fits`` ending (or ``suffix``).
    """
    path = Path(path)
    try:
        from astrophot.instruments.itelescope import output_name

        name = str(output_name(path.name, prefix))
        if suffix != ".fits":
            name = _strip_fits(name) + suffix
    except Exception:  # not an iTelescope name
        name = f"{prefix}-{_strip_fits(path.name)}{suffix}"
    return path.with_name(name)


def _strip_fits(name):
    for ext in _SUFFIXES:
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
    return name


def _is_directory_name(output, n_inputs, suffixes):
    if output.is_dir() or str(output).endswith(("/", "\\")):
        return True
    if output.exists():
        return False
    return n_inputs > 1 or not output.name.lower().endswith(suffixes)


def output_for(path, output, n_inputs, *, prefix, verb, suffix=".fits", inputs=(), kind=None):
    """
    Where the product of ``path`` goes: beside it, into the directory ``output``
    (created; any name without a FITS ending, or any name when there are many inputs), or
    to the file ``output`` (one input only). The result is checked by `check_output`.
    """
    suffixes = _FITS_SUFFIXES if suffix == ".fits" else (suffix,)
    if output is None:
        out = default_output(path, prefix, suffix)
    else:
        output = Path(output)
        if _is_directory_name(output, n_inputs, suffixes):
            if output.exists() and not output.is_dir():
                raise AstrophotError(f"-o {output}: exists and is not a directory")
            output.mkdir(parents=True, exist_ok=True)
            out = output / default_output(path, prefix, suffix).name
        elif n_inputs > 1:
            raise AstrophotError(f"-o {output} must be a directory when {verb} {n_inputs} frames")
        else:
            out = output
    check_output(out, inputs=inputs or (path,), kind=kind)
    return out


def existing_frame_type(path):
    """The astrophot frame type of an existing FITS file (``"raw"`` when not astrophot's), or None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            if handle.read(6) != b"SIMPLE":
                return None
        from astropy.io import fits

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = fits.getheader(path, 0)
        if "APFRAME" in header:
            return str(header["APFRAME"])
        return "table" if header.get("NAXIS", 0) == 0 else "raw"
    except OSError:
        return None


def check_output(out, *, inputs=(), kind=None):
    """
    Refuse an output that is one of the inputs, or an existing frame of another kind
    (``kind``: the frame type to be written, or a description such as ``"star table"``),
    whatever ``--overwrite`` says.
    """
    out = Path(out)
    target = out.resolve()
    for path in inputs:
        if Path(path).resolve() == target:
            raise AstrophotError(f"{out}: is an input; refusing to write the output over it")
    existing = existing_frame_type(out)
    if existing is not None and kind is not None and existing != kind:
        what = "a raw (non-astrophot) FITS file" if existing == "raw" else f"a {existing}"
        raise AstrophotError(
            f"{out}: exists and is {what}; refusing to replace it with a {kind} (even with --overwrite)"
        )
    return out


def original_form(paths, output, *, n_extra=0, is_output=None):
    """
    The original ``ap_*`` scripts' ``INPUT [EXTRA...] OUTPUT`` form: when ``-o`` is not given
    and the last of ``2 + n_extra`` (at most) paths does not exist (or ``is_output(path)``
    says it is an output, not an input, e.g. an existing star table), it is the output of the
    first. Returns ``(inputs, extras, output)``; otherwise every path is an input (an
    existing frame is never taken as an output).
    """
    paths = [str(p) for p in paths]
    last = Path(paths[-1]) if paths else None
    taken = last is not None and (not last.exists() or (is_output is not None and is_output(last)))
    if output is None and 2 <= len(paths) <= 2 + n_extra and taken:
        return paths[:1], paths[1:-1], paths[-1]
    return paths, [], output


def add_frame_arguments(parser, *, frames_help, what="product"):
    """``FRAME...``, ``-o/--output``, ``--overwrite`` and ``--compress`` of a frame-writing subcommand."""
    parser.add_argument("frames", nargs="+", metavar="FRAME", help=frames_help)
    add_output_arguments(parser, what=what)
    add_compress_argument(parser)


def add_compress_argument(parser):
    """``--compress``: lossless FITS tile compression of the frames written."""
    parser.add_argument(
        "--compress",
        action="store_true",
        help="tile-compress the frames written (lossless; a calibrated frame takes about 40%% of the space)",
    )


def add_output_arguments(parser, *, what="product"):
    """``-o/--output`` (a directory, created) and ``--overwrite`` for a ``FRAME...`` subcommand."""
    parser.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help=f"directory for the {what}s (created; default: beside each input); with one input, a file name",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help=f"replace an existing {what} of the same kind"
    )


def keep_if_up_to_date(output, inputs, *, overwrite, function=None, parameters=None):
    """
    True when ``output`` exists and is complete and up to date (then it is kept and said so).

    An existing ``output`` that is not up to date is an error naming the reason unless
    ``overwrite`` (then False: it is remade). ``inputs``, ``function`` and ``parameters`` are
    those of `astrophot.io.up_to_date_reason`.
    """
    output = Path(output)
    if overwrite or not output.exists():
        return False
    from astrophot.io import up_to_date_reason

    reason = up_to_date_reason(output, inputs, function=function, parameters=parameters)
    if reason is None:
        log.info("%s: up to date, kept (--overwrite to redo)", output)
        return True
    raise AstrophotError(f"{output}: exists, not up to date ({reason}); use --overwrite to replace it")


def frame_batch(command, inputs, output, make, *, overwrite, prefix, verb, kind, **options):
    """
    The ``FRAME...`` subcommand of a frame-to-frame stage: ``make(frame) -> frame`` per input.

    Each input is read (``frame_type=options["frame_type"]``), transformed and written to
    `output_for` its name (``prefix``, ``verb``, ``kind``: see there), unless that product is
    already up to date (`keep_if_up_to_date` with ``options["function"]``,
    ``options["parameters"]`` and ``options["extra_inputs"]``, the inputs besides the frame).
    ``options["in_place"]`` replaces each input instead; ``options["compress"]`` tile-compresses
    the products (lossless); ``options["describe"]`` gives the
    end of each log line from the product (printed on stdout instead with
    ``options["stdout"]``: a result a script reads). Failures follow `run_batch`; returns the exit code.
    """
    from astrophot.io import read_frame, write_frame

    in_place = options.get("in_place", False)
    describe = options.get("describe") or (lambda result: "")

    def one(path):
        if in_place:
            out = Path(path)
        else:
            out = output_for(path, output, len(inputs), prefix=prefix, verb=verb, inputs=inputs, kind=kind)
            sources = [path, *options.get("extra_inputs", ())]
            function, parameters = options.get("function"), options.get("parameters")
            if keep_if_up_to_date(
                out, sources, overwrite=overwrite, function=function, parameters=parameters
            ):
                return
        result = make(read_frame(path, frame_type=options.get("frame_type")))
        write_frame(result, out, overwrite=overwrite or in_place, compress=options.get("compress", False))
        line = f"{path} -> {out}{describe(result)}"
        if options.get("stdout"):
            print(line)
        else:
            log.info("%s", line)

    return run_batch(command, inputs, one)


#: Library wording in error messages -> the command line's own flags.
_CLI_WORDS = (
    ("pass shape=(ny, nx)", "give --shape NY NX"),
    ("(give hint=/scale=)", "(give --ra/--dec and --scale)"),
    (" or pass api_key=", " (the command line has no flag for the key)"),
    ("(pass overwrite=True to replace it)", "(use --overwrite to replace it)"),
    ("(use overwrite=True to replace the report)", "(use --overwrite to replace the report)"),
    ("pass gain=, or unit='adu'", "give --gain, or --unit adu"),
    ("no gain (GAIN/EGAIN, argument or", "no gain (GAIN/EGAIN, --gain or"),
    ("no read noise (argument, RDNOISE", "no read noise (--read-noise, RDNOISE"),
    ("give gain= explicitly", "give --gain explicitly"),
    ("give bias= so that", "give --bias so that"),
    ("; pass scale=", "; give --scale"),
    ("pass coordinates= or put RA/DEC", "give --coordinates or put RA/DEC"),
    ("pass target= or coordinates=", "give --target or --coordinates"),
    ("(pass coordinates= or resolve=True)", "(give --coordinates or --resolve)"),
    ("(pass dark_includes_bias to say otherwise)", "(give --dark-includes-bias to say otherwise)"),
    ("and line_n_sigma / n_sigma", "and --sigma"),
    ("give index_files= an existing directory", "give --index an existing directory"),
    (
        "or pass index_files=/ a directory of 4100/5200-series files",
        "or give astrophot solve --index DIR, a directory of 4100/5200-series files",
    ),
    (
        "calibrate_frame(raw, bias=..., dark=..., flat=...), or calibrate_frame(raw, unit='adu')",
        "astrophot calibrate FRAME --bias B --dark D --flat F, or astrophot calibrate FRAME --unit adu",
    ),
)


def cli_words(message):
    """An error message with the library's keyword names replaced by the command line's flags."""
    message = str(message)
    for python, cli in _CLI_WORDS:
        message = message.replace(python, cli)
    return message


def run_batch(command, paths, process, *, what="frame"):
    """
    Run ``process(path)`` for every path; report each failure and return the exit code.

    A failure (an astrophot error, a file error or a bad value) is printed as one line
    ``astrophot COMMAND: error: PATH: reason`` and the next path is processed; at the end a
    count of the failures is printed and 1 returned (0 when all succeeded).
    """
    from astrophot.exceptions import AstrophotError as _Error

    paths = list(paths)
    failed = []
    for path in paths:
        with working_on(path):
            try:
                process(path)
            except (_Error, OSError, ValueError) as exc:
                reason = cli_words(exc)
                if str(path) not in reason and Path(path).name not in reason:
                    reason = f"{path}: {reason}"
                print(f"astrophot {command}: error: {reason}", file=sys.stderr)
                failed.append(path)
    if failed and len(paths) > 1:
        print(
            f"astrophot {command}: {len(failed)} of {len(paths)} {what}s failed: "
            + ", ".join(str(p) for p in failed),
            file=sys.stderr,
        )
    return 1 if failed else 0


def warn_if_cosmic_rays_left(frame):
    """
    Warn (once, naming the file) when a calibrated frame was not cleaned of cosmic rays:
    stars measured on it may be cosmic rays (a FWHM below a pixel, too many stars).
    """
    from astrophot.frames import CalibratedFrame

    if not isinstance(frame, CalibratedFrame) or frame.header.get("CR_CLEAN"):
        return
    if any(step.function == "astrophot.reject_cosmic_rays" for step in frame.provenance.steps):
        return
    from astrophot.exceptions import AstrophotUserWarning

    warnings.warn(
        f"{frame.name}: cosmic rays were not rejected; stars and the FWHM measured on it may be "
        "cosmic rays (run astrophot cosmic-rays first, or calibrate --cosmic-rays)",
        AstrophotUserWarning,
        stacklevel=2,
    )


@contextlib.contextmanager
def printed_instead(logger_name, starting=None):
    """
    Within the block the INFO lines of ``logger_name`` are not shown: the subcommand prints
    the same result itself (said once, not twice). ``-l DEBUG`` shows them still.

    With ``starting`` only the INFO lines whose message starts so are left out (the others
    are progress the subcommand does not repeat).
    """
    logger = logging.getLogger(logger_name)
    previous = logger.level
    quiet = logging.getLogger("astrophot").getEffectiveLevel() > logging.DEBUG
    drop = _DropInfo(starting)
    if quiet and starting is None:
        logger.setLevel(logging.WARNING)
    elif quiet:
        logger.addFilter(drop)
    try:
        yield
    finally:
        logger.setLevel(previous)
        logger.removeFilter(drop)


class _DropInfo(logging.Filter):
    """Leaves out the INFO records whose message (unformatted) starts with ``starting``."""

    def __init__(self, starting):
        super().__init__()
        self.starting = starting

    def filter(self, record):
        """
        Whether ``record`` is shown.

        Parameters
        ----------
        record : logging.LogRecord
            The record.

        Returns
        -------
        bool
            False for an INFO record whose message starts with ``starting``.
        """
        return not (record.levelno == logging.INFO and str(record.msg).startswith(self.starting))
