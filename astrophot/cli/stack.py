# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot stack FRAME... -o stack.fits [--rejection R] [--weights W] [--by-filter]``."""

import logging
from pathlib import Path

__all__ = ["register"]

log = logging.getLogger("astrophot.cli.stack")

_REJECTIONS = ("auto", "none", "minmax", "percentile", "sigma", "mad", "winsorized", "linear_fit", "gesd")
_WEIGHTS = ("noise", "psf", "exptime", "quality", "none")
_NORMALIZE = ("additive_scale", "additive", "multiplicative", "none")
_KERNELS = ("lanczos3", "lanczos2", "lanczos4", "bicubic", "bilinear", "nearest", "drizzle")


def register(subparsers):
    """
    Add the ``stack`` subcommand.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of the ``astrophot`` parser (what
        `argparse.ArgumentParser.add_subparsers` returns); only its ``add_parser``
        is used.
    """
    p = subparsers.add_parser(
        "stack",
        help="stack solved frames of one target and filter into one deep image",
        description=(
            "Resample solved frames onto one grid and combine them, band by band, with outlier "
            "rejection, normalisation and weights (astrophot.stack_frames). Writes the stack in "
            "electrons per second with its UNCERT, COVERAGE, EXPOSURE, WEIGHT, REJLOW and REJHIGH "
            "extensions (and the .asdf sidecar). With --by-filter, one stack per filter."
        ),
    )
    p.add_argument("frames", nargs="+", metavar="FRAME", help="solved frames (FITS)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="STACK.fits",
        help="the stack; with --by-filter a directory, or a name the filter is added to (stack-Ha.fits)",
    )
    p.add_argument("--rejection", default="auto", choices=_REJECTIONS, help="rejection rule (default auto)")
    p.add_argument(
        "--sigma",
        type=float,
        nargs="+",
        default=[3.0],
        metavar="SIGMA",
        help="rejection limits: one, or LOW HIGH",
    )
    p.add_argument("--weights", default="noise", choices=_WEIGHTS, help="frame weights (default noise)")
    p.add_argument(
        "--normalize", default="additive_scale", choices=_NORMALIZE, help="sky/transparency matching"
    )
    p.add_argument("--center", default="mean", choices=["mean", "median"], help="combine the kept values by")
    p.add_argument(
        "--kernel",
        default="lanczos3",
        choices=_KERNELS,
        help="resampling kernel (default lanczos3; drizzle needs the drizzle package)",
    )
    p.add_argument(
        "--pixfrac",
        type=float,
        default=1.0,
        help="drizzle drop size as a share of an input pixel (--kernel drizzle; default 1)",
    )
    p.add_argument(
        "--grid",
        default="first",
        metavar="first|optimal|HEADER",
        help="output grid: the first frame's (default), one covering every frame, or a FITS/text header's",
    )
    p.add_argument(
        "--quality", metavar="TABLE", help="select_frames table (CSV/ECSV): its rejected frames are left out"
    )
    p.add_argument("--by-filter", action="store_true", help="one stack per filter of the frames given")
    p.add_argument("--overwrite", action="store_true", help="replace an existing stack")
    p.add_argument("--threads", type=int, help="threads (default: automatic)")
    p.set_defaults(func=_run)


def _groups(args, frames):
    """``{filter: [paths]}`` (one group named None without --by-filter)."""
    if not args.by_filter:
        return {None: list(frames)}
    groups = {}
    for path, frame in frames.items():
        groups.setdefault(str(frame.filter or "nofilter"), []).append(path)
    return groups


def _output(args, band, n_groups):
    out = Path(args.output)
    if band is None:
        return out
    if out.is_dir() or str(args.output).endswith(("/", "\\")) or (n_groups > 1 and not out.suffix):
        out.mkdir(parents=True, exist_ok=True)
        return out / f"stack-{band}.fits"
    return out.with_name(f"{out.stem}-{band}{out.suffix or '.fits'}")


def _options(args):
    from astropy.table import Table

    sigma = args.sigma[0] if len(args.sigma) == 1 else tuple(args.sigma[:2])
    if len(args.sigma) > 2:
        raise ValueError(f"--sigma takes one or two numbers, not {len(args.sigma)}")
    grid = {"first": None, "optimal": "optimal"}.get(args.grid, args.grid)
    return {
        "wcs": grid,
        "rejection": args.rejection,
        "sigma": sigma,
        "weights": args.weights,
        "normalize": args.normalize,
        "center": args.center,
        "kernel": args.kernel,
        **({"pixfrac": args.pixfrac} if args.kernel == "drizzle" else {}),
        "quality": None if args.quality is None else Table.read(args.quality),
        "parallel": args.threads,
    }


def _run(args):
    from astrophot.cli._common import check_output, working_on
    from astrophot.combination import stack_frames
    from astrophot.io import read_frame, write_frame

    options = _options(args)
    frames = {}
    for i, path in enumerate(args.frames, 1):
        with working_on(path):
            frames[path] = read_frame(path)
        log.info("[%d/%d] read %s", i, len(args.frames), path)
    groups = _groups(args, frames)
    for band, paths in groups.items():
        out = check_output(_output(args, band, len(groups)), inputs=args.frames, kind="StackedFrame")
        log.info("stacking %d frames%s -> %s", len(paths), "" if band is None else f" of {band}", out)
        stack = stack_frames([frames[p] for p in paths], **options)
        write_frame(stack, out, overwrite=args.overwrite)
        left = stack.combination.get("left_out") or {}
        log.info(
            "%s: %d frames, %.0f s, rejection %s%s",
            out,
            stack.header["NCOMBINE"],
            stack.header["EXPTIME"],
            stack.combination["rejection"],
            "".join(f"; left out {name}: {why}" for name, why in left.items()),
        )
    return 0
