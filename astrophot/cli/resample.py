# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot resample FRAME... (--target REF | --wcs HEADER | --optimal) -o OUTDIR``."""

import logging
from pathlib import Path

__all__ = ["register"]

log = logging.getLogger("astrophot.cli.resample")

_KERNELS = ("nearest", "bilinear", "bicubic", "lanczos2", "lanczos3", "lanczos4", "exact")


def register(subparsers):
    """
    Add the ``resample`` subcommand.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of the ``astrophot`` parser (what
        `argparse.ArgumentParser.add_subparsers` returns); only its ``add_parser``
        is used.
    """
    p = subparsers.add_parser(
        "resample",
        help="resample solved frames onto a common grid",
        description=(
            "Resample solved frames onto one grid: another frame's (--target), a FITS or text "
            "header's (--wcs), or one computed for all the frames given (--optimal). Writes "
            "OUTDIR/<name>.fits (and its .asdf sidecar) per frame, with a WEIGHT extension."
        ),
    )
    p.add_argument("frames", nargs="+", metavar="FRAME", help="solved frame(s) (FITS)")
    grid = p.add_mutually_exclusive_group(required=True)
    grid.add_argument("--target", metavar="REF.fits", help="resample onto the grid of this frame")
    grid.add_argument(
        "--wcs", metavar="HEADER", help="a FITS file or text header with the target WCS and NAXIS1/2"
    )
    grid.add_argument("--optimal", action="store_true", help="compute one grid covering all the frames")
    p.add_argument(
        "--kernel", default="lanczos3", choices=_KERNELS, help="interpolation kernel (default lanczos3)"
    )
    p.add_argument(
        "--conserve",
        default="surface_brightness",
        choices=["surface_brightness", "flux"],
        help="keep surface brightness (default) or each star's total counts",
    )
    p.add_argument(
        "--scale", type=float, help="--optimal: output pixel scale (arcsec; default: median of the inputs)"
    )
    p.add_argument(
        "--rotation", default="north", help="--optimal: north, first, auto, or a position angle in degrees"
    )
    p.add_argument(
        "--projection-error", type=float, default=0.001, help="largest pixel-map error (output px; 0 = exact)"
    )
    p.add_argument(
        "-o", "--output", metavar="OUTDIR", required=True, help="directory for the resampled frames"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--threads", type=int, help="threads per frame (default: automatic)")
    p.set_defaults(func=_run)


def _grid(args, frames):
    import astropy.units as u

    from astrophot.combination import find_optimal_wcs
    from astrophot.combination._grid import parse_target

    if args.optimal:
        rotation = args.rotation
        if rotation not in ("north", "first", "auto"):
            rotation = float(rotation) * u.deg
        scale = None if args.scale is None else args.scale * u.arcsec
        return find_optimal_wcs(frames, scale=scale, rotation=rotation)
    return parse_target(args.target or args.wcs)


def _run(args):
    from astrophot.cli._common import run_batch
    from astrophot.combination import resample_frame
    from astrophot.io import read_frame, write_frame

    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise NotADirectoryError(f"{outdir}: exists and is not a directory")
    if args.optimal:
        # the grid needs every frame's footprint first (headers only would do; frames are read once anyway)
        frames = {path: read_frame(path) for path in args.frames}
        grid = _grid(args, list(frames.values()))
        log.info("optimal grid: %d x %d pixels for %d frames", grid[1][0], grid[1][1], len(frames))
    else:
        frames = {}
        grid = _grid(args, None)
    outdir.mkdir(parents=True, exist_ok=True)
    total = len(args.frames)
    done = []

    def process(path):
        frame = frames.pop(path, None) or read_frame(path)
        out = resample_frame(
            frame,
            grid,
            kernel=args.kernel,
            conserve=args.conserve,
            projection_error=args.projection_error,
            parallel=args.threads,
        )
        name = Path(path).name
        target = outdir / (name if name.lower().endswith((".fits", ".fit", ".fts")) else f"{name}.fits")
        if target.resolve() == Path(path).resolve():
            raise FileExistsError(f"{target}: the output would replace its input; choose another OUTDIR")
        write_frame(out, target, overwrite=args.overwrite)
        done.append(target)
        log.info(
            "[%d/%d] %s -> %s (%s, weight>0 on %.0f%%)",
            len(done),
            total,
            path,
            target,
            args.kernel,
            100.0 * float((out.weight > 0).mean()),
        )

    return run_batch("resample", args.frames, process)
