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

from astrophot.cli._common import is_up_to_date, original_form, output_for, run_batch
from astrophot.exceptions import AstrophotError

__all__ = ["register"]

log = logging.getLogger(__name__)


def _cmd_calibrate(args):
    from astrophot import (
        RawFrame,
        calibrate_frame,
        fix_bad_pixels,
        prepare_calibration,
        read_frame,
        reject_cosmic_rays,
        write_frame,
    )

    if (
        len(args.raw) == 4
        and not any((args.bias, args.dark, args.library, args.output))
        and not Path(args.raw[3]).exists()
    ):
        # the original ap_calibrate form: INPUT MBIAS MDARK OUTPUT
        args.raw, args.bias, args.dark, args.output = [args.raw[0]], args.raw[1], args.raw[2], args.raw[3]
    if args.library and any((args.bias, args.dark, args.flat, args.bad_pixels)):
        log.info("explicit masters override the library's choice for their kind")
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
    cache = {}
    plans = {}
    dark_includes_bias = {"yes": True, "no": False, "auto": None}[args.dark_includes_bias]
    explicit = [p for p in (args.bias, args.dark, args.flat, args.bad_pixels) if p]

    def one(raw_path):
        out = output_for(
            raw_path,
            args.output,
            len(args.raw),
            prefix="cal",
            verb="calibrating",
            inputs=args.raw,
            kind="CalibratedFrame",
        )
        if not args.overwrite and is_up_to_date(out, [raw_path, *explicit]):
            log.info("%s: up to date, kept (--overwrite to redo)", out)
            return
        raw = read_frame(raw_path)
        if not isinstance(raw, RawFrame) or raw.image_type in ("bias", "dark", "flat"):
            kind = raw.frame_type if not isinstance(raw, RawFrame) else f"raw {raw.image_type} frame"
            raise AstrophotError(f"{raw_path}: is a {kind}, not a raw light frame")
        masters = dict(fixed)
        if library is not None:
            require = tuple(k for k in ("bias", "dark", "flat") if masters[k] is None and k in args.require)
            selection = library.select(raw, require=require)
            log.info("%s", selection)
            for kind, path in selection.paths().items():
                if masters[kind] is None and path is not None:
                    if path not in cache:
                        cache[path] = read_frame(path)
                    masters[kind] = cache[path]
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
        write_frame(frame, out, overwrite=args.overwrite)
        step = frame.provenance.steps[-1] if not (args.fix_badpix or args.cosmic_rays) else None
        log.info("%s -> %s%s", raw_path, out, f" ({step.outcome['n_masked']} pixels masked)" if step else "")

    return run_batch("calibrate", args.raw, one)


def _load_names(path):
    if path is None or not Path(path).exists():
        return {}
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise AstrophotError(f"{path}: unreadable name cache ({exc})") from None


def _save_names(path, names):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(names, indent=1, sort_keys=True))
    tmp.replace(path)


def _default_name_cache():
    from astropy.config import get_cache_dir

    return Path(get_cache_dir()) / "astrophot" / "resolved_names.json"


def _cmd_add_metadata(args):
    from astrophot import add_metadata, read_frame, write_frame

    if args.mode == "yamlkeyval" and not args.keywords:
        raise AstrophotError("--mode yamlkeyval needs --keywords (or --yamlfile) FILE.yml")
    inputs, _, output = original_form(args.frames, args.output)
    cache_path = None if args.no_name_cache else Path(args.name_cache or _default_name_cache())
    names = _load_names(cache_path)

    def one(path):
        if args.in_place:
            out_path = Path(path)
        else:
            out_path = output_for(path, output, len(inputs), prefix="meta", verb="annotating", inputs=inputs)
        frame = read_frame(path)
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
        write_frame(out, out_path, overwrite=args.overwrite or args.in_place)
        log.info("%s -> %s (AIRMASS %s)", path, out_path, out.header.get("AIRMASS"))

    return run_batch("add-metadata", inputs, one)


def _cmd_fix_badpix(args):
    from astrophot import fix_bad_pixels, read_frame, write_frame

    inputs, extras, output = original_form(args.frames, args.output, n_extra=1)
    bpm_path = args.bad_pixels or (extras[0] if extras else None)
    bad_pixels = read_frame(bpm_path, frame_type="BadPixelMap") if bpm_path else None
    box = args.box if args.deltapix is None else 2 * args.deltapix + 1

    def one(path):
        out_path = output_for(path, output, len(inputs), prefix="fixed", verb="repairing", inputs=inputs)
        frame = read_frame(path, frame_type="CalibratedFrame")
        out = fix_bad_pixels(frame, bad_pixels=bad_pixels, box=box, min_good=args.min_good)
        write_frame(out, out_path, overwrite=args.overwrite)
        outcome = out.provenance.steps[-1].outcome
        log.info(
            "%s -> %s: %d of %d flagged pixels repaired",
            path,
            out_path,
            outcome["n_repaired"],
            outcome["n_flagged"],
        )

    return run_batch("fix-badpix", inputs, one)


def _cmd_cosmic_rays(args):
    from astrophot import read_frame, reject_cosmic_rays, write_frame

    inputs, _, output = original_form(args.frames, args.output)

    def one(path):
        out_path = output_for(path, output, len(inputs), prefix="cr", verb="cleaning", inputs=inputs)
        frame = read_frame(path, frame_type="CalibratedFrame")
        out = reject_cosmic_rays(
            frame,
            fast=not args.full,
            sigclip=args.sigclip,
            objlim=args.objlim,
            fwhm=args.fwhm,
            read_noise=args.read_noise,
        )
        write_frame(out, out_path, overwrite=args.overwrite)
        outcome = out.provenance.steps[-1].outcome
        log.info("%s -> %s: %d cosmic-ray pixels", path, out_path, outcome["n_pixels"])

    return run_batch("cosmic-rays", inputs, one)


def register(subparsers):
    """Add the reduction subcommands."""
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
    p.add_argument("frames", nargs="+", metavar="FRAME", help="frames to annotate")
    p.add_argument("-o", "--output", metavar="DIR", help="directory for the results (created)")
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
    p.add_argument("--overwrite", action="store_true", help="replace an existing astrophot product")
    p.set_defaults(func=_cmd_add_metadata)

    p = subparsers.add_parser(
        "fix-badpix",
        help="replace flagged pixels by their good neighbours",
        description=(
            "Repair the flagged pixels of calibrated frames: each FRAME gets a fixed-<name>.fits "
            "beside it (or in -o DIR). The original form INPUT [BADPIX] OUTPUT works too."
        ),
    )
    p.add_argument("frames", nargs="+", metavar="FRAME", help="calibrated frames")
    p.add_argument("-o", "--output", metavar="DIR", help="directory for the results (created)")
    p.add_argument("--bad-pixels", metavar="BADPIX", help="bad-pixel map to apply as well")
    p.add_argument("--box", type=int, default=5, help="width of the box of neighbours (odd)")
    p.add_argument(
        "--deltapix",
        type=int,
        help="half-width of the box (the original ``ap_*`` scripts' option; box = 2*d + 1)",
    )
    p.add_argument("--min-good", type=int, default=4, help="fewest good neighbours for a repair")
    p.add_argument("--overwrite", action="store_true", help="replace an existing astrophot product")
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
    p.add_argument("frames", nargs="+", metavar="FRAME", help="calibrated frames")
    p.add_argument("-o", "--output", metavar="DIR", help="directory for the results (created)")
    p.add_argument(
        "--full", action="store_true", help="four whole-frame iterations instead of the fast default"
    )
    p.add_argument("--sigclip", type=float, default=4.5, help="detection limit (sigma)")
    p.add_argument("--objlim", type=float, help="contrast limit against stars (default: from the FWHM)")
    p.add_argument("--fwhm", type=float, help="stellar FWHM in pixels (default: measured)")
    p.add_argument(
        "--read-noise", type=float, help="read noise in the frame's unit (default: header RDNOISE)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing astrophot product")
    p.set_defaults(func=_cmd_cosmic_rays)
