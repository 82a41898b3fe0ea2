# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Image-analysis subcommands: ``find-stars``, ``background``, ``imarith`` and ``quality``.

(``ap_find_stars``, ``ap_measure_background``, ``ap_imarith`` and
``ap_quality_summary`` are the original ``ap_*`` scripts' names.)
"""

import logging
import re
import warnings
from pathlib import Path

__all__ = ["register"]

log = logging.getLogger(__name__)

_FITS_SUFFIXES = (".fit", ".fits", ".fts", ".fit.gz", ".fits.gz", ".fits.fz", ".fz", ".fits.bz2", ".fit.bz2")


def register(subparsers):
    """
    Add the analysis subcommands to ``subparsers``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of the ``astrophot`` parser (what
        `argparse.ArgumentParser.add_subparsers` returns); only its ``add_parser``
        is used.
    """
    _register_find_stars(subparsers)
    _register_background(subparsers)
    _register_imarith(subparsers)
    _register_quality(subparsers)


# ----------------------------------------------------------------------
# helpers
def _check_output(path, overwrite, *, inputs=(), kind=None):
    from astrophot.cli._common import check_output
    from astrophot.exceptions import FrameWriteError

    path = check_output(path, inputs=inputs, kind=kind)
    if path.exists() and not overwrite:
        raise FrameWriteError(f"{path}: exists (use --overwrite to replace it)")
    return path


def _write_table(table, path, fmt):
    from astrophot.io._atomic import atomic_path

    with atomic_path(path) as tmp:
        if fmt == "fits":
            table = table.copy(copy_data=False)
            table.meta = _fits_meta(table.meta)
            with warnings.catch_warnings():
                # 'electron' is not a FITS-standard unit; astropy keeps it in its own TUNIT convention
                warnings.filterwarnings("ignore", message=".*native FITS format.*")
                table.write(tmp, format="fits", overwrite=True)
        else:
            table.write(tmp, format="ascii.ecsv", overwrite=True)


_FITS_KEYS = {
    "frame": "IMG_FILE",
    "source_file": "SRCFILE",
    "fwhm": "AP_FWHM",
    "fwhm_source": "FWHMSRC",
    "beta": "AP_BETA",
    "n_sigma": "AP_NSIGM",
    "aperture_radius": "AP_APRAD",
    "background": "AP_BGMED",
    "background_rms": "AP_BGSTD",
    "exposure_time": "EXPOSURE",
}


def _fits_meta(meta):
    """The star-list metadata as short FITS keywords (dicts and lists flattened)."""
    out = {}
    for key, value in meta.items():
        card = _FITS_KEYS.get(key)
        if card is not None and value is not None:
            out[card] = value
    psf = meta.get("psf")
    if isinstance(psf, dict):
        for key, card in (
            ("fwhm", "PSFFWHM"),
            ("fwhm_arcsec", "PSFFWHMA"),
            ("ellipticity", "PSFELL"),
            ("theta", "PSFTHETA"),
            ("n_stars", "PSFNSTAR"),
        ):
            if psf.get(key) is not None:
                out[card] = psf[key]
    return out


def _stem(path):
    name = Path(path).name
    for suffix in sorted(_FITS_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def _add_overwrite(parser):
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


# ----------------------------------------------------------------------
# find-stars
def _register_find_stars(subparsers):
    parser = subparsers.add_parser(
        "find-stars",
        help="find stars, measure them and the PSF (ECSV star list, ds9 regions)",
        description=(
            "Find the stars of a calibrated frame: positions, aperture fluxes, instrumental magnitudes, "
            "Moffat FWHM and shapes, flags. Writes an ECSV (or FITS) table per frame (<name>.stars.ecsv "
            "beside it, or in -o DIR) and, on request, a ds9 region file; logs the PSF summary. "
            "Run it on frames cleaned of cosmic rays (astrophot cosmic-rays, or calibrate --cosmic-rays)."
        ),
    )
    parser.add_argument(
        "frames",
        metavar="FRAME",
        nargs="+",
        help="calibrated frames (the original form FRAME STARS works too)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="directory for the star lists (created; default: beside each frame)",
    )
    parser.add_argument(
        "--format", choices=["ecsv", "fits"], default=None, help="table format (from the name)"
    )
    parser.add_argument(
        "-d",
        "--ds9",
        "--regions",
        dest="regions",
        metavar="REG",
        nargs="?",
        const=True,
        help="also write ds9 regions (beside each star list as .reg; a file name with one frame)",
    )
    parser.add_argument("--n-sigma", type=float, default=5.0, help="detection threshold (default: 5)")
    parser.add_argument("--fwhm", type=float, help="PSF FWHM in pixels (default: measured)")
    parser.add_argument("-m", "--max-stars", type=int, help="keep only the brightest N stars")
    parser.add_argument("--aperture", type=float, help="aperture radius in pixels (default: 1.5 FWHM)")
    parser.add_argument("--saturation", type=float, help="saturation level in the frame's unit")
    parser.add_argument("--mask", help="pixels to ignore: a FITS mask or a ds9 region file")
    _add_overwrite(parser)
    parser.set_defaults(func=_run_find_stars)


def _star_list_path(path, output, n_inputs, fmt):
    from astrophot.cli._common import check_output

    suffix = ".stars.fits" if fmt == "fits" else ".stars.ecsv"
    name = _stem(path) + suffix
    if output is None:
        out = Path(path).with_name(name)
    else:
        out = Path(output)
        if out.is_dir() or n_inputs > 1 or not out.name.lower().endswith((".ecsv", ".fits", ".fit")):
            out.mkdir(parents=True, exist_ok=True)
            out = out / name
    return check_output(out, inputs=[path], kind="table")


def _run_find_stars(args):
    from astrophot.cli._common import existing_frame_type, original_form, run_batch

    def is_table(path):
        return existing_frame_type(path) in (None, "table")

    inputs, _, output = original_form(args.frames, args.output, is_output=is_table)
    if isinstance(args.regions, str) and len(inputs) > 1:
        raise ValueError("--ds9 FILE needs one frame; give --ds9 alone to write one .reg per frame")

    def one(path):
        fmt = args.format or ("fits" if str(output or "").lower().endswith((".fits", ".fit")) else "ecsv")
        out_path = _check_output(
            _star_list_path(path, output, len(inputs), fmt), args.overwrite, inputs=inputs
        )
        regions = out_path.with_suffix("").with_suffix(".reg") if args.regions is True else args.regions
        reg_path = _check_output(regions, args.overwrite, inputs=inputs) if regions else None
        _find_stars_one(args, path, out_path, fmt, reg_path)

    return run_batch("find-stars", inputs, one)


def _find_stars_one(args, path, out_path, fmt, reg_path):
    from astrophot.analysis import ds9_regions, find_stars, measure_psf
    from astrophot.cli._common import warn_if_cosmic_rays_left
    from astrophot.exceptions import AnalysisError
    from astrophot.io import read_frame

    frame = read_frame(path)
    warn_if_cosmic_rays_left(frame)
    stars = find_stars(
        frame,
        n_sigma=args.n_sigma,
        fwhm=args.fwhm,
        mask=args.mask,
        max_stars=args.max_stars,
        aperture_radius=args.aperture,
        saturation=args.saturation,
    )
    try:
        psf = measure_psf(frame, stars=stars)
        stars.meta["psf"] = psf.to_dict()
        arcsec = f" = {psf.fwhm_arcsec:.2f} arcsec" if psf.fwhm_arcsec is not None else ""
        summary = (
            f"FWHM {psf.fwhm:.2f} px{arcsec}, ellipticity {psf.ellipticity:.3f} (from {psf.n_stars} stars)"
        )
    except AnalysisError as exc:
        summary = f"no PSF ({exc})"
    stars.meta["source_file"] = str(path)
    _write_table(stars, out_path, fmt)
    if reg_path is not None:
        from astrophot.io._atomic import write_text_atomic

        write_text_atomic(reg_path, ds9_regions(stars))
    log.info("%s -> %s: %d stars; %s", path, out_path, len(stars), summary)


# ----------------------------------------------------------------------
# background
def _register_background(subparsers):
    from astrophot.cli._common import add_frame_arguments

    parser = subparsers.add_parser(
        "background",
        help="estimate the sky background (and its RMS); optionally subtract it",
        description=(
            "Estimate the smooth sky background of frames with the stars masked: each FRAME gets a "
            "bkg-<name>.fits beside it (or in -o DIR), and on request its RMS (bkgrms-) and the frame "
            "minus the background (bkgsub-). The original form FRAME BACKGROUND works too."
        ),
    )
    add_frame_arguments(parser, frames_help="frames (FITS)", what="background frame")
    parser.add_argument(
        "--rms",
        metavar="RMS",
        nargs="?",
        const=True,
        help="also write the background RMS (bkgrms-<name>.fits; a file name with one frame)",
    )
    parser.add_argument(
        "--subtracted",
        metavar="SUB",
        nargs="?",
        const=True,
        help="also write FRAME minus the background (bkgsub-<name>.fits; a file name with one frame)",
    )
    parser.add_argument("--box-size", type=int, help="mesh box size in pixels (default: automatic)")
    parser.add_argument(
        "--filter-size", type=int, default=3, help="median filter of the mesh (odd, default 3)"
    )
    parser.add_argument("--n-sigma", type=float, default=3.0, help="clipping threshold (default: 3)")
    parser.add_argument("--estimator", choices=["median", "mode"], default="median", help="box statistic")
    parser.add_argument("--mask", help="pixels to ignore: a FITS mask or a ds9 region file")
    parser.add_argument(
        "--protect", help="extended emission to keep (not sky): a FITS mask or a ds9 region file"
    )
    parser.set_defaults(func=_run_background)


#: What `background` writes: option, file prefix, the function that makes it.
_BACKGROUND_PRODUCTS = (
    ("background", "bkg", "estimate_background"),
    ("rms", "bkgrms", "estimate_background"),
    ("subtracted", "bkgsub", "subtract_background"),
)


def _background_targets(args, path, inputs, output):
    """Where each wanted product of ``path`` goes: ``{option: path}``."""
    from astrophot.cli._common import check_output, output_for

    folder = output
    if output is not None and len(inputs) == 1 and Path(output).name.lower().endswith(_FITS_SUFFIXES):
        folder = str(Path(output).parent)  # the original form: the others go beside the named file
    targets = {}
    for option, prefix, _ in _BACKGROUND_PRODUCTS:
        wanted = True if option == "background" else getattr(args, option)
        if not wanted:
            continue
        if isinstance(wanted, str):
            targets[option] = check_output(wanted, inputs=inputs, kind="CalibratedFrame")
        else:
            where = output if option == "background" else folder
            targets[option] = output_for(
                path,
                where,
                len(inputs),
                prefix=prefix,
                verb="measuring",
                inputs=inputs,
                kind="CalibratedFrame",
            )
    return targets


def _run_background(args):
    from astrophot.cli._common import keep_if_up_to_date, original_form, run_batch
    from astrophot.exceptions import AstrophotError

    inputs, _, output = original_form(args.frames, args.output)
    for option in ("rms", "subtracted"):
        if isinstance(getattr(args, option), str) and len(inputs) > 1:
            raise AstrophotError(
                f"--{option} FILE needs one frame; give --{option} alone to write one per frame"
            )
    functions = {option: function for option, _, function in _BACKGROUND_PRODUCTS}

    def one(path):
        targets = _background_targets(args, path, inputs, output)
        kept = {
            option: keep_if_up_to_date(out, [path], overwrite=args.overwrite, function=functions[option])
            for option, out in targets.items()
        }
        if all(kept.values()):
            return
        _background_one(args, path, targets, kept)

    return run_batch("background", inputs, one)


def _background_one(args, path, targets, kept):
    from astrophot.analysis import estimate_background, subtract_background
    from astrophot.io import read_frame, write_frame

    frame = read_frame(path)
    background, rms = estimate_background(
        frame,
        box_size=args.box_size,
        filter_size=args.filter_size,
        n_sigma=args.n_sigma,
        estimator=args.estimator,
        mask=args.mask,
        protect=args.protect,
    )
    products = {"background": background, "rms": rms}
    if "subtracted" in targets:
        products["subtracted"] = subtract_background(frame, background)
    for option, out in targets.items():
        # a product kept as up to date is remade with the others (same inputs, same result)
        write_frame(products[option], out, overwrite=args.overwrite or kept[option], compress=args.compress)
    log.info(
        "%s -> %s: background %.6g, RMS %.6g %s (box %d px)",
        path,
        ", ".join(str(p) for p in targets.values()),
        background.header["BKGMED"],
        background.header["BKGRMS"],
        frame.unit,
        background.header["BKGBOX"],
    )


# ----------------------------------------------------------------------
# imarith
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*(?P<unit>[^\d\s].*)?$")


def _register_imarith(subparsers):
    parser = subparsers.add_parser(
        "imarith",
        help="add, subtract, multiply or divide a frame by a frame or a number",
        description=(
            "FRAME OP OPERAND OUTPUT: OP is + - * / (or ADD SUB MUL DIV); OPERAND is a number, a number "
            "with a unit ('100 electron') or a FITS frame of the same shape. Uncertainties, masks, flags "
            "and provenance are carried; the result has FRAME's type."
        ),
    )
    parser.add_argument("input", metavar="FRAME", help="left operand (FITS frame)")
    parser.add_argument("operator", metavar="OP", help="+ - * / or ADD SUB MUL DIV")
    parser.add_argument("operand", metavar="OPERAND", help="a number, 'number unit', or a FITS frame")
    parser.add_argument("output", metavar="OUTPUT", help="output FITS frame")
    _add_overwrite(parser)
    parser.set_defaults(func=_run_imarith)


def _parse_operand(text):
    import astropy.units as u

    match = _NUMBER.match(text)
    if not match or Path(text).exists():
        return None
    number = float(text[: match.start("unit")] if match.group("unit") else text)
    unit_text = match.group("unit")
    if unit_text:
        try:
            return number * u.Unit(unit_text.strip())
        except ValueError:
            raise ValueError(f"cannot read the unit {unit_text.strip()!r} of the operand {text!r}") from None
    return number


def _run_imarith(args):
    from astrophot.analysis import image_arithmetic
    from astrophot.io import read_frame, write_frame

    inputs = [args.input]
    right = _parse_operand(args.operand)
    if right is None:
        inputs.append(args.operand)
    _check_output(args.output, args.overwrite, inputs=inputs)
    left = read_frame(args.input)
    if right is None:
        right = read_frame(args.operand)
    result = image_arithmetic(left, args.operator, right)
    write_frame(result, args.output, overwrite=args.overwrite)
    log.info("%s written (%s)", args.output, result.unit)
    return 0


# ----------------------------------------------------------------------
# quality
def _register_quality(subparsers):
    parser = subparsers.add_parser(
        "quality",
        help="grade a set of frames: CSV, plots and an HTML report with accepted/rejected frames",
        description=(
            "Measure the quality of each frame (FWHM, ellipticity, stars, background, transparency, "
            "limiting magnitude), reject outliers relative to the night per filter (and fixed limits "
            "when given), and write quality.csv, PNG plots and quality.html into OUTDIR."
        ),
    )
    parser.add_argument("inputs", metavar="FRAME_OR_DIR", nargs="+", help="frames, or directories of frames")
    parser.add_argument("-o", "--outdir", required=True, help="report directory (created)")
    parser.add_argument("--pattern", default="*", help="file-name pattern inside directories (default: *)")
    parser.add_argument("--recursive", action="store_true", help="search directories recursively")
    parser.add_argument("--n-sigma", type=float, default=5.0, help="star detection threshold (default: 5)")
    parser.add_argument("--max-fwhm", type=float, help="reject frames with a larger FWHM (pixels)")
    parser.add_argument("--max-fwhm-arcsec", type=float, help="reject frames with a larger FWHM (arcsec)")
    parser.add_argument("--max-ellipticity", type=float, help="reject more elongated frames")
    parser.add_argument("--min-stars", type=int, help="reject frames with fewer stars")
    parser.add_argument("--max-background", type=float, help="reject brighter skies (frame unit)")
    parser.add_argument("--max-airmass", type=float, help="reject frames at a higher airmass")
    parser.add_argument("--no-robust", action="store_true", help="only the fixed limits, no outlier tests")
    _add_overwrite(parser)
    parser.set_defaults(func=_run_quality)


def _collect(inputs, pattern, recursive):
    from astrophot.exceptions import FrameReadError

    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = path.rglob(pattern) if recursive else path.glob(pattern)
            files.extend(sorted(p for p in found if p.is_file() and p.name.lower().endswith(_FITS_SUFFIXES)))
        elif path.exists():
            files.append(path)
        else:
            raise FrameReadError(f"{path}: no such file or directory")
    if not files:
        raise FrameReadError(f"no FITS frames found in {', '.join(map(str, inputs))}")
    return files


def _run_quality(args):
    from astrophot.analysis import assess_quality, select_frames, write_quality_report
    from astrophot.cli._common import printed_instead, run_batch, warn_if_cosmic_rays_left
    from astrophot.exceptions import FrameReadError
    from astrophot.io import read_frame

    files = _collect(args.inputs, args.pattern, args.recursive)
    for name in ("quality.csv", "quality.html"):  # at once, not after measuring every frame
        _check_output(Path(args.outdir) / name, args.overwrite, inputs=files)
    rules = {"robust": not args.no_robust}
    for key in (
        "max_fwhm",
        "max_fwhm_arcsec",
        "max_ellipticity",
        "min_stars",
        "max_background",
        "max_airmass",
    ):
        value = getattr(args, key)
        if value is not None:
            rules[key] = value
    records, graded = [], []

    def one(path):
        frame = read_frame(path)
        warn_if_cosmic_rays_left(frame)
        records.append(assess_quality(frame, n_sigma=args.n_sigma))
        graded.append(path)
        log.info("%s: measured (%d of %d)", path, len(records), len(files))  # results below, once

    code = run_batch("quality", files, one)
    if not records:
        raise FrameReadError(f"no frame of {len(files)} could be measured; no report written")
    table = select_frames(records, rules=rules)
    with printed_instead("astrophot.analysis.report", starting="quality report written"):
        paths = write_quality_report(table, args.outdir, frames=graded, overwrite=args.overwrite)
    for row in table:
        status = "ok      " if row["accepted"] else "REJECTED"
        line = f"{status} {row['file']}  fwhm={row['fwhm']:.2f}  stars={row['n_stars']}"
        line += f"  weight={row['weight']:.2f}"
        if not row["accepted"]:
            line += f"  ({row['reason']})"
        print(line)
    print(f"report: {paths['html']}")
    return code
