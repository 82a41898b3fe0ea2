# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot mosaic FRAME... -o mosaic.fits [--by-filter] [--wcs HEADER] [--match plane|offset|none]``."""

import logging
from pathlib import Path

__all__ = ["register"]

log = logging.getLogger("astrophot.cli.mosaic")

_KERNELS = ("nearest", "bilinear", "bicubic", "lanczos2", "lanczos3", "lanczos4")


def register(subparsers):
    """
    Add the ``mosaic`` subcommand.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of the ``astrophot`` parser (what
        `argparse.ArgumentParser.add_subparsers` returns); only its ``add_parser``
        is used.
    """
    p = subparsers.add_parser(
        "mosaic",
        help="mosaic of pointings on one grid, their backgrounds matched",
        description=(
            "Combine solved frames of one filter that only partly overlap (the pointings of a "
            "mosaic) onto one grid (computed for all of them unless --wcs is given), after matching "
            "their backgrounds: per-frame planes (or offsets) from one least-squares solution over "
            "all the overlaps. Writes the mosaic (with its coverage, exposure and weight maps) and "
            "logs the residual of every overlap. --by-filter makes one mosaic per filter."
        ),
    )
    p.add_argument("frames", nargs="+", metavar="FRAME", help="solved frames (FITS)")
    p.add_argument(
        "-o",
        "--output",
        metavar="MOSAIC.fits",
        required=True,
        help="output file (--by-filter: <stem>-<filter>.fits)",
    )
    p.add_argument("--by-filter", action="store_true", help="one mosaic per filter")
    p.add_argument(
        "--wcs", metavar="HEADER", help="a FITS file or text header with the output WCS and NAXIS1/2"
    )
    p.add_argument(
        "--match",
        default="plane",
        choices=["plane", "offset", "none"],
        help="background matching (default plane)",
    )
    p.add_argument(
        "--reference", type=int, help="index (0-based, in the order given) of the frame kept as is"
    )
    p.add_argument(
        "--protect",
        action="append",
        metavar="RA,DEC,RADIUS",
        help="a circle that is not sky (degrees, degrees, arcsec), left out of the matching; repeatable",
    )
    p.add_argument(
        "--kernel", default="lanczos3", choices=_KERNELS, help="interpolation kernel (default lanczos3)"
    )
    p.add_argument(
        "--rejection", default="auto", help="outlier rejection where frames overlap (default auto)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--threads", type=int, help="threads (default: automatic)")
    p.set_defaults(func=_run)


def _circles(values):
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    circles = []
    for text in values or ():
        try:
            ra, dec, radius = (float(v) for v in text.split(","))
        except ValueError:
            raise ValueError(
                f"--protect {text!r}: expected RA,DEC,RADIUS (degrees, degrees, arcsec)"
            ) from None
        circles.append((SkyCoord(ra * u.deg, dec * u.deg), radius * u.arcsec))
    return circles or None


def _groups(paths, frames, by_filter):
    if not by_filter:
        return {None: list(zip(paths, frames))}
    groups = {}
    for path, frame in zip(paths, frames):
        groups.setdefault(frame.filter or "none", []).append((path, frame))
    return groups


def _target(output, key, by_filter):
    output = Path(output)
    if not by_filter:
        return output
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(key))
    suffix = output.suffix if output.suffix.lower() in (".fits", ".fit", ".fts") else ".fits"
    return output.with_name(f"{output.stem if output.suffix else output.name}-{safe}{suffix}")


def _log_match(record):
    if record is None:
        return
    for o in record["overlaps"]:
        log.info(
            "overlap %s / %s: %d points, sky difference rms %s after matching (%s sigma)%s",
            o["frames"][0],
            o["frames"][1],
            o["n_points"],
            o["after"],
            o["after_sigma"],
            "" if o["used"] else " (dropped as an outlier)",
        )
    log.info(
        "backgrounds matched: worst seam %.2f sigma of the sky noise (%.2f before)",
        record["worst_seam_sigma"],
        record["worst_seam_before_sigma"],
    )


def _grid(args, group):
    from astrophot.combination import find_optimal_wcs
    from astrophot.combination._grid import parse_target

    return parse_target(args.wcs) if args.wcs else find_optimal_wcs(group)


def _run(args):
    from astrophot.cli._common import working_on
    from astrophot.combination import make_mosaic
    from astrophot.io import read_frame, write_frame

    protect = _circles(args.protect)
    frames = []
    for k, path in enumerate(args.frames):
        with working_on(path):
            frames.append(read_frame(path))
        log.info("[%d/%d] read %s", k + 1, len(args.frames), path)
    inputs = {Path(p).resolve() for p in args.frames}
    for key, members in _groups(args.frames, frames, args.by_filter).items():
        target = _target(args.output, key, args.by_filter)
        if target.resolve() in inputs:
            raise FileExistsError(f"{target}: the output would replace an input; choose another name")
        if target.exists() and not args.overwrite:
            raise FileExistsError(f"{target}: exists (use --overwrite to replace it)")
        group = [f for _, f in members]
        grid = _grid(args, group)
        log.info(
            "%s%d frames onto %d x %d pixels", f"{key}: " if key else "", len(group), grid[1][1], grid[1][0]
        )
        mosaic = make_mosaic(
            group,
            wcs=grid,
            match_background=None if args.match == "none" else args.match,
            protect=protect,
            reference=args.reference,
            kernel=args.kernel,
            rejection=args.rejection,
            parallel=args.threads,
            progress=True,
        )
        _log_match(mosaic.combination["background"])
        write_frame(mosaic, target, overwrite=args.overwrite)
        log.info("wrote %s (%d frames, %s rejection)", target, len(group), mosaic.combination["rejection"])
    return 0
