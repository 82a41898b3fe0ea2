# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Subcommands ``continuum`` (``ap_continuum``) and ``color`` (``ap_color``).

``astrophot continuum NARROW BROAD -o line.fits`` writes the line image (FITS plus
ASDF sidecar) and, with ``--plot``, the star diagnostics as a PNG;
``astrophot color R G B -o picture.tif`` writes a colour picture (TIFF, PNG, JPEG or FITS cube).
"""

import json
import logging
from pathlib import Path

__all__ = ["register"]

log = logging.getLogger(__name__)


def _scale(text):
    try:
        return float(text)
    except ValueError:
        return text


def _cmd_continuum(args):
    from astrophot import read_frame, subtract_continuum, write_frame
    from astrophot.exceptions import FrameWriteError

    output = Path(args.output)
    if output.resolve() in (Path(args.narrow).resolve(), Path(args.broad).resolve()):
        raise FrameWriteError(f"{output}: refusing to write over an input file")
    narrow, broad = read_frame(args.narrow), read_frame(args.broad)
    line = subtract_continuum(
        narrow,
        broad,
        scale=_scale(args.scale),
        psf_match=not args.no_psf_match,
        eps=args.eps,
        line_fraction=args.line_fraction,
    )
    write_frame(line, output, overwrite=args.overwrite)
    c = line.continuum
    log.info(
        "%s: k = %.5g +/- %.2g from %s (%s stars)", output, c["k"], c["k_err"], c["method"], c.get("n_stars")
    )
    if args.plot:
        from astrophot.combination import plot_continuum_diagnostics
        from astrophot.io._atomic import atomic_path

        plot = Path(args.plot)
        if plot.exists() and not args.overwrite:
            raise FrameWriteError(f"{plot}: exists (use --overwrite to replace it)")
        with atomic_path(plot) as tmp:
            plot_continuum_diagnostics(line).savefig(tmp, format="png", dpi=120)
    print(json.dumps({key: c.get(key) for key in ("k", "k_err", "n_stars", "scatter", "method")}))
    return 0


def _cmd_color(args):
    from astrophot import make_color_composite, read_frame
    from astrophot.exceptions import FrameWriteError

    output = Path(args.output)
    inputs = [Path(p) for p in args.frames]
    if output.resolve() in [p.resolve() for p in inputs]:
        raise FrameWriteError(f"{output}: refusing to write over an input file")
    frames = [read_frame(p) for p in inputs]
    options = {}
    for item in args.option or []:
        key, _, value = item.partition("=")
        options[key] = float(value)
    white = None if args.white_balance == "none" else args.white_balance
    if white not in (None, "stars"):
        white = [float(v) for v in white.split(",")]
    picture = make_color_composite(
        *frames,
        stretch=args.stretch,
        stretch_options=options,
        palette=args.palette,
        luminance=read_frame(args.luminance) if args.luminance else None,
        line=read_frame(args.line) if args.line else None,
        white_balance=white,
        north_up=not args.no_north_up,
        resample=args.resample,
    )
    picture.write(output, bits=args.bits, overwrite=args.overwrite)
    log.info("%s: %s picture, %d x %d", output, args.stretch, picture.shape[1], picture.shape[0])
    return 0


def register(subparsers):
    """
    Add ``continuum`` and ``color``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of the ``astrophot`` parser (what
        `argparse.ArgumentParser.add_subparsers` returns); only its ``add_parser``
        is used.
    """
    p = subparsers.add_parser(
        "continuum", help="continuum-subtract a narrow-band frame with a broad-band frame"
    )
    p.add_argument("narrow", help="narrow-band (line) frame; its grid is the output's")
    p.add_argument("broad", help="broad-band frame of the same target")
    p.add_argument("-o", "--output", required=True, help="line image (FITS; an ASDF sidecar beside it)")
    p.add_argument("--scale", default="stars", help="stars, noise, bandwidth or a number (default: stars)")
    p.add_argument("--eps", type=float, default=1.0, help="broad/narrow line throughput (default 1)")
    p.add_argument("--line-fraction", type=float, default=None, help="narrow/broad filter width ratio")
    p.add_argument("--no-psf-match", action="store_true", help="do not convolve to a common PSF")
    p.add_argument("--plot", help="write the star diagnostics (k per star, residuals) to this PNG")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=_cmd_continuum)

    p = subparsers.add_parser("color", help="colour composite from stacked filter images")
    p.add_argument("frames", nargs="+", help="red, green, blue frames (or any order with --palette)")
    p.add_argument("-o", "--output", required=True, help="picture: .tif, .png, .jpg or .fits")
    p.add_argument("--stretch", default="auto", choices=["auto", "lupton", "stiff", "linear", "log"])
    p.add_argument("--option", action="append", metavar="NAME=VALUE", help="stretch option, e.g. Q=10")
    p.add_argument("--palette", choices=["RGB", "LRGB", "HaRGB", "SHO", "HOO"], default=None)
    p.add_argument("--luminance", help="luminance frame (LRGB)")
    p.add_argument("--line", help="continuum-subtracted H-alpha frame added to red (HaRGB)")
    p.add_argument("--white-balance", default="stars", help="stars, none, or three factors 'r,g,b'")
    p.add_argument("--bits", type=int, choices=[8, 16], default=16, help="bits per channel (TIFF, PNG)")
    p.add_argument("--no-north-up", action="store_true", help="keep the frames' pixel orientation")
    p.add_argument("--resample", action="store_true", help="resample frames onto the first one's grid")
    p.add_argument("--overwrite", action="store_true", help="replace an existing picture")
    p.set_defaults(func=_cmd_color)
