# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Calibration products on the command line.

``combine``, ``read-noise``, ``find-badpix``, ``find-badcols`` and ``calib-index``
(the original ``ap_*`` scripts' ``ap_combine_darks``, ``ap_calc_read_noise``,
``ap_find_badpix`` and ``ap_auto_badcols``).
"""

import argparse
import re
from pathlib import Path

__all__ = ["register"]

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([kKmMgGtT]?)(i?)([bB]?)\s*$")


def memory_size(text):
    """
    Parse a size such as ``2GB``, ``500MiB``, ``1.5G`` or ``1e9`` into bytes.

    Parameters
    ----------
    text : str
        A number with an optional prefix ``k``, ``M``, ``G`` or ``T`` (any case;
        ``i`` after it for powers of 1024) and an optional ``B``.

    Returns
    -------
    int
        The size in bytes.

    Raises
    ------
    argparse.ArgumentTypeError
        When ``text`` is not a memory size.

    Examples
    --------
    >>> memory_size("2GiB"), memory_size("500MB"), memory_size("1e6")
    (2147483648, 500000000, 1000000)
    """
    match = _SIZE.match(str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"not a memory size: {text!r} (examples: 2GB, 500MiB, 1e9)")
    number, prefix, binary, _ = match.groups()
    power = " KMGT".index(prefix.upper() or " ")
    base = 1024 if binary else 1000
    return int(float(number) * base**power)


def _positive(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _add_combine(subparsers):
    parser = subparsers.add_parser(
        "combine",
        help="combine raw bias, dark or flat frames into a master",
        description=(
            "Combine raw calibration frames (files or directories of them) into a master bias, dark or "
            "flat. The kind comes from IMAGETYP unless --type is given. Frames must agree in shape, "
            "binning, telescope and set temperature (darks: exposure; flats: filter); frames whose "
            "CCD-TEMP is off are dropped with a warning. Each file is read once, band by band."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="raw frames or directories of them")
    parser.add_argument("output", metavar="OUTPUT", help="the master to write (.fits; a .asdf sidecar too)")
    parser.add_argument(
        "--type", choices=("bias", "dark", "flat"), help="the kind of master (default: IMAGETYP)"
    )
    parser.add_argument("--bias", metavar="MASTER_BIAS", help="subtract this master bias (darks, flats)")
    parser.add_argument("--dark", metavar="MASTER_DARK", help="subtract this master dark, scaled (flats)")
    parser.add_argument(
        "--dark-includes-bias",
        choices=("auto", "yes", "no"),
        default="auto",
        help="whether the --dark still holds the bias (flats; default: from its CALSTAT)",
    )
    parser.add_argument("--method", choices=("average", "median"), help="default: average (flats: median)")
    parser.add_argument("--sigma-low", type=_positive, default=5.0, help="lower clipping limit (default 5)")
    parser.add_argument("--sigma-high", type=_positive, default=5.0, help="upper clipping limit (default 5)")
    parser.add_argument("--no-clip", action="store_true", help="no sigma clipping")
    parser.add_argument("--iterations", type=int, default=1, help="clipping iterations (default 1)")
    parser.add_argument(
        "--clip-spread",
        choices=("pooled", "pixel"),
        default="pooled",
        help="spread for clipping: each pixel's own ('pixel', as ccdproc) or at least the local median",
    )
    parser.add_argument("--nlow", type=int, default=0, help="reject this many lowest values per pixel")
    parser.add_argument("--nhigh", type=int, default=0, help="reject this many highest values per pixel")
    parser.add_argument(
        "--memory-limit",
        type=memory_size,
        default="2GiB",
        help="memory the combination may use (default 2GiB)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        metavar="PATTERN",
        help="file-name pattern to leave out of directories (default Master_*; repeatable)",
    )
    parser.add_argument(
        "--temptol",
        "--temperature-tolerance",
        dest="temptol",
        type=float,
        default=1.0,
        help="degrees C: SET-TEMP agreement and CCD-TEMP outliers (default 1)",
    )
    parser.add_argument(
        "--telescop", metavar="NAME", help="TELESCOP for the master when the frames leave it blank"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing astrophot product")
    parser.set_defaults(func=_combine)


def _guess_kind(paths):
    from astrophot.calibration._sources import make_sources
    from astrophot.exceptions import CalibrationError
    from astrophot.io import classify_imagetyp

    kinds = {}
    for source in make_sources(paths[:50]):
        kind = classify_imagetyp(source.header.get("IMAGETYP"))
        kinds.setdefault(kind, []).append(source.name)
    usable = {k: v for k, v in kinds.items() if k in ("bias", "dark", "flat")}
    if len(usable) == 1 and None not in kinds:
        return next(iter(usable))
    if not usable:
        raise CalibrationError(
            "cannot tell bias, dark or flat from IMAGETYP of the inputs (e.g. "
            f"{next(iter(kinds.values()))[0]}); give --type"
        )
    described = "; ".join(f"{k or 'no IMAGETYP'}: {', '.join(v[:3])}" for k, v in kinds.items())
    raise CalibrationError(f"the inputs mix image types ({described}); give --type or separate them")


def _combine(args):
    from astrophot.calibration import make_master_bias, make_master_dark, make_master_flat
    from astrophot.calibration._checks import expand_inputs
    from astrophot.io import write_frame

    exclude = tuple(args.exclude) if args.exclude else ("Master_*",)
    paths = expand_inputs(args.inputs, exclude=exclude)
    kind = args.type or _guess_kind(paths)
    options = {
        "sigma_clip": not args.no_clip,
        "n_sigma_low": args.sigma_low,
        "n_sigma_high": args.sigma_high,
        "max_iterations": args.iterations,
        "clip_spread": args.clip_spread,
        "n_low": args.nlow,
        "n_high": args.nhigh,
        "memory_limit": args.memory_limit,
        "temperature_tolerance": args.temptol,
    }
    if args.method:
        options["method"] = args.method
    if kind == "bias":
        if args.bias or args.dark:
            raise ValueError("--bias and --dark do not apply to a master bias")
        master = make_master_bias(paths, **options)
    elif kind == "dark":
        if args.dark:
            raise ValueError("--dark does not apply to a master dark")
        master = make_master_dark(paths, bias=args.bias, **options)
    else:
        includes = {"yes": True, "no": False, "auto": None}[args.dark_includes_bias]
        master = make_master_flat(
            paths, bias=args.bias, dark=args.dark, dark_includes_bias=includes, **options
        )
    if args.telescop and not str(master.header.get("TELESCOP", "")).strip():
        master.header["TELESCOP"] = args.telescop
    path = write_frame(master, args.output, overwrite=args.overwrite)
    outcome = master.provenance.steps[-1].outcome
    dropped = len(outcome.get("dropped", ()))
    extra = f", CALSTAT={master.header['CALSTAT']}" if "CALSTAT" in master.header else ""
    print(
        f"{path}: master {kind} of {outcome['n_frames']} frames"
        + (f" ({dropped} dropped for CCD-TEMP)" if dropped else "")
        + f"{extra}; {outcome['rejected_fraction']:.3%} of the values rejected"
    )
    return 0


def _add_read_noise(subparsers):
    parser = subparsers.add_parser(
        "read-noise",
        help="read noise from two bias frames",
        description=(
            "Read noise from the clipped difference of two bias frames: in electrons when the gain is "
            "known (--gain, or GAIN/EGAIN in both headers), else in ADU."
        ),
    )
    parser.add_argument("bias_a", metavar="BIAS_1", help="first raw bias frame")
    parser.add_argument("bias_b", metavar="BIAS_2", help="second raw bias frame")
    parser.add_argument("--gain", help="e-/ADU value, or the header keyword holding it (default GAIN/EGAIN)")
    parser.add_argument("--sigma", type=_positive, default=5.0, help="clipping limit (default 5)")
    parser.add_argument(
        "--plot", "--histplot", dest="plot", metavar="FILE.png", help="save a histogram figure"
    )
    parser.set_defaults(func=_read_noise)


def _read_noise(args):
    from astrophot.calibration import measure_read_noise

    result = measure_read_noise(
        args.bias_a, args.bias_b, gain=args.gain, n_sigma=args.sigma, plot=bool(args.plot)
    )
    if args.plot:
        result.figure.savefig(args.plot, dpi=150)
    print(result)
    return 0


def _add_find_badpix(subparsers):
    parser = subparsers.add_parser(
        "find-badpix",
        help="bad-pixel map from a master dark (and flat, and user regions)",
        description=(
            "Flag hot and cold pixels of a master dark (robust statistics), bad columns and rows, dead "
            "pixels of a master flat, and the user's YAML regions; write a bad-pixel map."
        ),
    )
    parser.add_argument("dark", metavar="MASTER_DARK", help="master dark (or bias)")
    parser.add_argument("output", metavar="OUTPUT", help="the bad-pixel map to write (.fits)")
    parser.add_argument("--sigma", type=_positive, default=4.0, help="hot/cold limit in sigma (default 4)")
    parser.add_argument(
        "--user-badpix", "--user_badpix", dest="user_badpix", metavar="YAML", help="user bad-pixel regions"
    )
    parser.add_argument("--flat", metavar="MASTER_FLAT", help="master flat for dead pixels")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing astrophot product")
    parser.set_defaults(func=_find_badpix)


def _find_badpix(args):
    from astrophot.calibration import BadPixelRegions, find_bad_pixels
    from astrophot.cli._common import printed_instead
    from astrophot.io import write_frame

    regions = BadPixelRegions.from_yaml(Path(args.user_badpix)) if args.user_badpix else None
    with printed_instead("astrophot.calibration._badpix"):  # the line below says it
        bpm = find_bad_pixels(args.dark, n_sigma=args.sigma, user_regions=regions, flat=args.flat)
    path = write_frame(bpm, args.output, overwrite=args.overwrite)
    o = bpm.provenance.steps[-1].outcome
    print(
        f"{path}: {o['n_hot']} hot, {o['n_cold']} cold, {o['n_dead']} dead, {o['n_user']} user pixels; "
        f"bad columns {list(o['bad_columns'])}, rows {list(o['bad_rows'])} (1-based)"
    )
    return 0


def _add_find_badcols(subparsers):
    parser = subparsers.add_parser(
        "find-badcols",
        help="bad columns and rows of a calibrated frame, as YAML for the user file",
        description=(
            "Find whole bad columns and rows of (calibrated) frames as YAML, 1-based as ds9 shows "
            "them, ready to paste into the user bad-pixel file. One frame without -o: the YAML is "
            "printed. Several frames, or -o DIR: each frame's YAML goes to badcols-<name>.yml beside "
            "it or into DIR (created); -o FILE.yml with one frame writes that file."
        ),
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="calibrated frames")
    parser.add_argument("--sigma", type=_positive, default=5.0, help="limit in sigma (default 5)")
    parser.add_argument("--window", type=int, default=11, help="running-median window, odd (default 11)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="DIR|FILE.yml",
        help="directory for the YAML files (created), or with one frame a .yml file",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing YAML files")
    parser.set_defaults(func=_find_badcols)


def _find_badcols(args):
    from astrophot.cli._common import output_for, printed_instead, run_batch

    images = list(args.images)
    to_stdout = len(images) == 1 and args.output is None

    def one(path):
        from astrophot.calibration import find_bad_columns

        target = None
        if not to_stdout:
            target = output_for(
                path, args.output, len(images), prefix="badcols", verb="searching", suffix=".yml"
            )
            if target.exists() and not args.overwrite:
                raise FileExistsError(f"{target}: already exists; not overwritten (use --overwrite)")
        with printed_instead("astrophot.calibration._badpix"):  # the YAML or the line below says it
            regions = find_bad_columns(path, n_sigma=args.sigma, window=args.window)
        text = regions.to_yaml()
        if target is None:
            print(text, end="")
            return
        _write_text(target, text)
        print(f"{path} -> {target}: {len(regions.columns)} bad columns, {len(regions.rows)} bad rows")

    return run_batch("find-badcols", images, one)


def _write_text(path, text):
    from astrophot.io._atomic import write_text_atomic

    write_text_atomic(path, text)


def _add_calib_index(subparsers):
    parser = subparsers.add_parser(
        "calib-index",
        help="index a calibration library; choose the masters for light frames",
        description=(
            "List the masters of a calibration library (iTelescope's <root>/<Tnn>/Masters/... and "
            "astrophot's own), or, given light frames, the bias, dark, flat and bad-pixel map chosen for "
            "each, with the reasons."
        ),
    )
    parser.add_argument("root", metavar="ROOT", help="calibration library root")
    parser.add_argument("lights", nargs="*", metavar="LIGHT", help="light frames to choose masters for")
    parser.add_argument(
        "--max-age", type=_positive, default=365.0, help="days before a master is stale (365)"
    )
    parser.add_argument("--temptol", type=float, default=1.0, help="SET-TEMP tolerance in degrees C (1)")
    parser.set_defaults(func=_calib_index)


def _calib_index(args):
    from astrophot.calibration import CalibrationLibrary
    from astrophot.exceptions import CalibrationError

    library = CalibrationLibrary(args.root, max_age=args.max_age, temperature_tolerance=args.temptol)
    if not args.lights:
        print(library.summary())
        return 0
    failed = []
    for light in args.lights:
        try:
            print(library.select(light))
        except CalibrationError as exc:
            failed.append(str(exc))
    if failed:
        if len(failed) == 1 and len(args.lights) == 1:
            raise CalibrationError(failed[0])
        raise CalibrationError(
            f"{len(failed)} of {len(args.lights)} frames have no masters; first: {failed[0]}"
        )
    return 0


def register(subparsers):
    """
    Add the calibration subcommands.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of the ``astrophot`` parser (what
        `argparse.ArgumentParser.add_subparsers` returns); only its ``add_parser``
        is used.
    """
    _add_combine(subparsers)
    _add_read_noise(subparsers)
    _add_find_badpix(subparsers)
    _add_find_badcols(subparsers)
    _add_calib_index(subparsers)
