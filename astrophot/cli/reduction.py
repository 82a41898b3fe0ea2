# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Reduction subcommands: ``calibrate``, ``add-metadata``, ``fix-badpix``, ``cosmic-rays``.

Each reads its inputs with `~astrophot.read_frame`, calls the transform and
writes a new file with `~astrophot.write_frame` (FITS plus ASDF sidecar). Raw
files are never changed.
"""

import argparse
import json
import logging
from pathlib import Path

from astrophot.cli._common import (
    add_compress_argument,
    add_frame_arguments,
    frame_batch,
    original_form,
    printed_instead,
)
from astrophot.exceptions import AstrophotError

__all__ = ["register"]

log = logging.getLogger(__name__)


def _calibrate_masters(args):
    from astrophot import read_frame

    fixed = {
        "bias": read_frame(args.bias, frame_type="MasterBias") if args.bias else None,
        "dark": read_frame(args.dark, frame_type="MasterDark") if args.dark else None,
        "flat": read_frame(args.flat, frame_type="MasterFlat") if args.flat else None,
        "bad_pixels": read_frame(args.bad_pixels, frame_type="BadPixelMap") if args.bad_pixels else None,
    }
    library = None
    if args.library:
        from astrophot.calibration import CalibrationLibrary

        library = CalibrationLibrary(args.library)
    return fixed, library


def _library_masters(library, raw, masters, args, cache):
    from astrophot import read_frame

    require = tuple(k for k in ("bias", "dark", "flat") if masters[k] is None and k in args.require)
    selection = library.select(raw, require=require)
    log.info("%s", selection)
    for kind, path in selection.paths().items():
        if masters[kind] is None and path is not None:
            if path not in cache:
                cache[path] = read_frame(path)
            masters[kind] = cache[path]


def _cmd_calibrate(args):
    from astrophot import RawFrame, calibrate_frame, fix_bad_pixels, prepare_calibration, reject_cosmic_rays

    if (
        len(args.raw) == 4
        and not any((args.bias, args.dark, args.library, args.output))
        and not Path(args.raw[3]).exists()
    ):
        # the original ap_calibrate form: INPUT MBIAS MDARK OUTPUT
        args.raw, args.bias, args.dark, args.output = [args.raw[0]], args.raw[1], args.raw[2], args.raw[3]
    if args.library and any((args.bias, args.dark, args.flat, args.bad_pixels)):
        log.info("explicit masters override the library's choice for their kind")
    fixed, library = _calibrate_masters(args)
    cache, plans = {}, {}
    dark_includes_bias = {"yes": True, "no": False, "auto": None}[args.dark_includes_bias]

    def make(raw):
        if not isinstance(raw, RawFrame) or raw.image_type in ("bias", "dark", "flat"):
            kind = raw.frame_type if not isinstance(raw, RawFrame) else f"raw {raw.image_type} frame"
            raise AstrophotError(f"{raw.name}: is a {kind}, not a raw light frame")
        masters = dict(fixed)
        if library is not None:
            _library_masters(library, raw, masters, args, cache)
        # one calibration plan per set of masters: each master is read, checked and hashed once
        key = tuple(id(masters[k]) for k in ("bias", "dark", "flat", "bad_pixels"))
        if key not in plans:
            plans[key] = prepare_calibration(
                **masters,
                gain=args.gain,
                read_noise=args.read_noise,
                unit=args.unit,
                saturation=args.saturation,
                overscan=not args.no_overscan,
                dark_includes_bias=dark_includes_bias,
            )
        frame = calibrate_frame(raw, plan=plans[key])
        if args.fix_badpix:
            frame = fix_bad_pixels(frame)
        if args.cosmic_rays:
            frame = reject_cosmic_rays(frame)
        return frame

    chained = args.fix_badpix or args.cosmic_rays
    last = "reject_cosmic_rays" if args.cosmic_rays else "fix_bad_pixels" if chained else "calibrate_frame"

    def describe(frame):
        step = frame.provenance.steps[-1]
        return "" if chained else f" ({step.outcome['n_masked']} pixels masked)"

    return frame_batch(
        "calibrate",
        args.raw,
        args.output,
        make,
        overwrite=args.overwrite,
        compress=args.compress,
        prefix="cal",
        verb="calibrating",
        kind="CalibratedFrame",
        function=last,
        # the raw is an input of the last step only when that step is the calibration
        extra_inputs=[p for p in (args.bias, args.dark, args.flat, args.bad_pixels) if p and not chained],
        describe=describe,
    )


def _load_names(path):
    if path is None or not Path(path).exists():
        return {}
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise AstrophotError(f"{path}: unreadable name cache ({exc})") from None


def _save_names(path, names):
    from astrophot.io._atomic import write_text_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(names, indent=1, sort_keys=True))


def _default_name_cache():
    from astropy.config import get_cache_dir

    return Path(get_cache_dir()) / "astrophot" / "resolved_names.json"


def _cmd_add_metadata(args):
    from astrophot import add_metadata

    if args.mode == "yamlkeyval" and not args.keywords:
        raise AstrophotError("--mode yamlkeyval needs --keywords (or --yamlfile) FILE.yml")
    inputs, _, output = original_form(args.frames, args.output)
    cache_path = None if args.no_name_cache else Path(args.name_cache or _default_name_cache())
    names = _load_names(cache_path)

    def make(frame):
        out = add_metadata(
            frame,
            target=args.target,
            telescope=args.telescope,
            coordinates=args.coordinates,
            location=args.site,
            keywords=args.keywords,
            resolve=args.resolve,
            timeout=args.timeout,
            names=names,
        )
        step = out.provenance.steps[-1]
        if step.outcome.get("coordinates_source") == "name resolver" and cache_path is not None:
            target = str(out.header.get("OBJECT"))
            names[target] = [float(out.header["RA-OBJ"]), float(out.header["DEC-OBJ"])]
            _save_names(cache_path, names)
        return out

    return frame_batch(
        "add-metadata",
        inputs,
        output,
        make,
        overwrite=args.overwrite,
        compress=args.compress,
        prefix="meta",
        verb="annotating",
        kind=None,  # raw frames and products alike
        in_place=args.in_place,
        function="add_metadata",
        describe=lambda out: f" (AIRMASS {out.header.get('AIRMASS')})",
    )


def _cmd_fix_badpix(args):
    from astrophot import fix_bad_pixels, read_frame

    inputs, extras, output = original_form(args.frames, args.output, n_extra=1)
    bpm_path = args.bad_pixels or (extras[0] if extras else None)
    bad_pixels = read_frame(bpm_path, frame_type="BadPixelMap") if bpm_path else None
    box = args.box if args.deltapix is None else 2 * args.deltapix + 1

    def describe(out):
        outcome = out.provenance.steps[-1].outcome
        return f": {outcome['n_repaired']} of {outcome['n_flagged']} flagged pixels repaired"

    return frame_batch(
        "fix-badpix",
        inputs,
        output,
        lambda frame: fix_bad_pixels(frame, bad_pixels=bad_pixels, box=box, min_good=args.min_good),
        overwrite=args.overwrite,
        compress=args.compress,
        prefix="fixed",
        verb="repairing",
        kind="CalibratedFrame",
        frame_type="CalibratedFrame",
        function="fix_bad_pixels",
        parameters={"box": box, "min_good": args.min_good},
        extra_inputs=[bpm_path] if bpm_path else [],
        describe=describe,
    )


def _cmd_cosmic_rays(args):
    from astrophot import reject_cosmic_rays

    inputs, _, output = original_form(args.frames, args.output)
    options = {
        "fast": not args.full,
        "sigclip": args.sigclip,
        "objlim": args.objlim,
        "fwhm": args.fwhm,
        "read_noise": args.read_noise,
    }

    def clean(frame):
        with printed_instead("astrophot.reduction._cosmics"):  # the line of frame_batch says it
            return reject_cosmic_rays(frame, **options)

    def describe(out):
        o = out.provenance.steps[-1].outcome
        return f": {o['n_pixels']} cosmic-ray pixels (FWHM {o['fwhm']:.2f} px {o['fwhm_source']}, objlim {o['objlim']:.1f})"

    return frame_batch(
        "cosmic-rays",
        inputs,
        output,
        clean,
        overwrite=args.overwrite,
        compress=args.compress,
        prefix="cr",
        verb="cleaning",
        kind="CalibratedFrame",
        frame_type="CalibratedFrame",
        function="reject_cosmic_rays",
        parameters=options,
        describe=describe,
    )


def register(subparsers):
    """
    Add the reduction subcommands.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of the ``astrophot`` parser (what
        `argparse.ArgumentParser.add_subparsers` returns); only its ``add_parser``
        is used.
    """
    p = subparsers.add_parser(
        "calibrate",
        help="bias/dark/flat calibration with uncertainty and data-quality flags",
        description=(
            "Calibrate raw light frames. Masters are given explicitly or chosen from a calibration "
            "library (--library); each RAW gets a new cal-*.fits (and .asdf) file."
        ),
    )
    p.add_argument(
        "raw",
        nargs="+",
        help="raw light frame(s); the original ap_calibrate form RAW MBIAS MDARK OUTPUT is accepted too",
    )
    p.add_argument(
        "-o", "--output", help="output file (one input) or directory; default: cal-<name> beside the raw"
    )
    p.add_argument("--bias", help="master bias")
    p.add_argument("--dark", help="master dark")
    p.add_argument("--flat", "--master-flat", "--master_flat", dest="flat", help="master flat")
    p.add_argument(
        "--bad-pixels", "--master-badpix", "--master_badpix", dest="bad_pixels", help="bad-pixel map"
    )
    p.add_argument("--library", metavar="ROOT", help="pick the masters from this calibration library")
    p.add_argument(
        "--require",
        nargs="*",
        default=["bias", "dark", "flat"],
        choices=["bias", "dark", "flat"],
        help="kinds the library must provide (default: all three)",
    )
    p.add_argument("--gain", type=float, help="electrons per ADU (default: header, then telescope table)")
    p.add_argument("--read-noise", type=float, help="read noise in electrons")
    p.add_argument("--unit", choices=["electron", "adu"], default="electron", help="unit of the result")
    p.add_argument("--saturation", type=float, help="raw saturation level in ADU")
    p.add_argument("--no-overscan", action="store_true", help="ignore BIASSEC/TRIMSEC")
    p.add_argument(
        "--dark-includes-bias",
        choices=["auto", "yes", "no"],
        default="auto",
        help="whether the dark still holds the bias (default: from its CALSTAT)",
    )
    p.add_argument(
        "--dark_still_biased",
        dest="dark_includes_bias",
        action="store_const",
        const="yes",
        help=argparse.SUPPRESS,
    )
    p.add_argument("--fix-badpix", action="store_true", help="also repair flagged pixels")
    p.add_argument(
        "--cosmic-rays",
        "--fixcosmic",
        dest="cosmic_rays",
        action="store_true",
        help="also reject cosmic rays",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing astrophot products")
    add_compress_argument(p)
    p.set_defaults(func=_cmd_calibrate)

    p = subparsers.add_parser(
        "add-metadata",
        help="target, site, time, airmass, Moon and Sun keywords (offline)",
        description=(
            "Add observing metadata to frames: each FRAME gets a meta-<name>.fits beside it (or in "
            "-o DIR); --in-place updates astrophot products. The original form INPUT OUTPUT works "
            "too. Name resolution (--resolve) is the only network use; its answers are cached in a "
            "small JSON file."
        ),
    )
    add_frame_arguments(p, frames_help="frames to annotate", what="annotated frame")
    p.add_argument("--in-place", action="store_true", help="replace each FRAME (astrophot products only)")
    p.add_argument("--target", help="target name (default: header or file name)")
    p.add_argument("--telescope", help="telescope, e.g. T33 (default: header or file name)")
    p.add_argument("--coordinates", help="target coordinates, e.g. '18:20:48.1 -16:10:59' or '275.2 -16.18'")
    p.add_argument("--site", help="site name or MPC code (default: header or telescope table)")
    p.add_argument("--keywords", "--yamlfile", dest="keywords", help="YAML file of KEY: value to write first")
    p.add_argument(
        "--mode", choices=["iTelescope", "yamlkeyval"], default="iTelescope", help=argparse.SUPPRESS
    )
    p.add_argument(
        "--resolve", action="store_true", help="ask the CDS name resolver when no coordinates are known"
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the name resolver")
    p.add_argument("--name-cache", help="JSON file of resolved names (default: in astropy's cache directory)")
    p.add_argument("--no-name-cache", action="store_true", help="neither read nor write the name cache")
    p.set_defaults(func=_cmd_add_metadata)

    p = subparsers.add_parser(
        "fix-badpix",
        help="replace flagged pixels by their good neighbours",
        description=(
            "Repair the flagged pixels of calibrated frames: each FRAME gets a fixed-<name>.fits "
            "beside it (or in -o DIR). The original form INPUT [BADPIX] OUTPUT works too."
        ),
    )
    add_frame_arguments(p, frames_help="calibrated frames", what="repaired frame")
    p.add_argument("--bad-pixels", metavar="BADPIX", help="bad-pixel map to apply as well")
    p.add_argument("--box", type=int, default=5, help="width of the box of neighbours (odd)")
    p.add_argument(
        "--deltapix",
        type=int,
        help="half-width of the box (the original ``ap_*`` scripts' option; box = 2*d + 1)",
    )
    p.add_argument("--min-good", type=int, default=4, help="fewest good neighbours for a repair")
    p.set_defaults(func=_cmd_fix_badpix)

    p = subparsers.add_parser(
        "cosmic-rays",
        help="find, flag and replace cosmic rays (L.A.Cosmic)",
        description=(
            "Reject cosmic rays of calibrated frames with astroscrappy, tuned from each frame: each "
            "FRAME gets a cr-<name>.fits beside it (or in -o DIR). The original form INPUT OUTPUT "
            "works too."
        ),
    )
    add_frame_arguments(p, frames_help="calibrated frames", what="cleaned frame")
    p.add_argument(
        "--full", action="store_true", help="four whole-frame iterations instead of the fast default"
    )
    p.add_argument("--sigclip", type=float, default=4.5, help="detection limit (sigma)")
    p.add_argument("--objlim", type=float, help="contrast limit against stars (default: from the FWHM)")
    p.add_argument("--fwhm", type=float, help="stellar FWHM in pixels (default: measured)")
    p.add_argument(
        "--read-noise", type=float, help="read noise in the frame's unit (default: header RDNOISE)"
    )
    p.set_defaults(func=_cmd_cosmic_rays)
