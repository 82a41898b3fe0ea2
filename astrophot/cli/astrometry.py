# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``astrophot solve FRAME... [-o OUTPUT]``: plate-solve frames (the original ``ap_astrometry`` script).

Each frame is read, solved with `~astrophot.astrometry.solve_astrometry`
(its star list from ``--stars`` or `~astrophot.analysis.find_stars`) and
written as a solved frame (FITS + ASDF sidecar) whose ``STARS`` extension
holds the stars with RA/Dec. The original ``ap_*`` scripts' positional source list becomes
``--stars``; its API key stays in astroquery's configuration file.
"""

import logging
from pathlib import Path

from astrophot.cli._common import add_compress_argument, frame_batch, printed_instead

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(subparsers):
    """
    Add the ``solve`` subcommand.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of the ``astrophot`` parser (what
        `argparse.ArgumentParser.add_subparsers` returns); only its ``add_parser``
        is used.
    """
    p = subparsers.add_parser(
        "solve",
        help="plate-solve frames: find and verify their WCS (astrometry.net engine, solve-field, "
        "astrophot's matcher, or the web service)",
        description="Plate-solve frames. Every solution is verified against a star catalogue; "
        "a frame that cannot be solved is an error (exit 1) that lists what was tried.",
    )
    p.add_argument("frames", nargs="+", metavar="FRAME", help="frame(s) to solve (FITS)")
    p.add_argument(
        "-o",
        "--output",
        help="output file (one frame) or directory (default: nav-<name>.fits beside each input)",
    )
    p.add_argument(
        "--stars",
        help="star table (ECSV or FITS table with 0-based x, y, flux, as `astrophot find-stars` writes); "
        "only with one frame (default: find the stars)",
    )
    p.add_argument(
        "--backend",
        action="append",
        choices=["auto", "engine", "solve-field", "matcher", "web"],
        help="backend to use (repeat for several, tried in order; default auto: engine, solve-field, "
        "matcher, web)",
    )
    p.add_argument("--ra", help="field centre RA (degrees, or h:m:s)")
    p.add_argument("--dec", help="field centre Dec (degrees, or d:m:s)")
    p.add_argument("--radius", type=float, help="search radius around the centre (deg)")
    p.add_argument(
        "--scale", "--user-scale", "--user_scale", dest="scale", type=float, help="pixel scale (arcsec/pix)"
    )
    p.add_argument(
        "--scale-tolerance",
        type=float,
        default=0.2,
        help="relative half-width of the searched scale range (default 0.2)",
    )
    p.add_argument("--blind", action="store_true", help="ignore the header's position and scale")
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per frame (default 60)")
    p.add_argument(
        "--index",
        action="append",
        metavar="PATH",
        help="astrometry.net index file or directory (repeatable; default: the installed ones)",
    )
    p.add_argument(
        "--catalog",
        help="reference stars: auto, tycho2, demo, gaia, or a catalogue file (default auto)",
    )
    p.add_argument(
        "--cache",
        nargs="?",
        const=True,
        metavar="DIR",
        help="reuse and store verified solutions (default directory: the user cache)",
    )
    p.add_argument("--match-radius", type=float, default=3.0, help="pixels for a catalogue match (default 3)")
    p.add_argument("--min-matches", type=int, default=6, help="catalogue stars that must match (default 6)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_compress_argument(p)
    p.set_defaults(func=_run)


def _hint(args):
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    from astrophot.exceptions import AstrophotError

    if (args.ra is None) != (args.dec is None):
        raise AstrophotError("give both --ra and --dec, or neither")
    if args.ra is None:
        return None
    try:
        ra = float(args.ra) * u.deg
    except ValueError:
        ra = u.Quantity(SkyCoord(args.ra, "0d", unit=(u.hourangle, u.deg)).ra)
    try:
        dec = float(args.dec) * u.deg
    except ValueError:
        dec = u.Quantity(SkyCoord("0h", args.dec, unit=(u.hourangle, u.deg)).dec)
    return SkyCoord(ra, dec, frame="icrs")


def _read_stars(path):
    from astropy.table import QTable

    from astrophot.exceptions import AstrophotError

    path = Path(path)
    try:
        table = QTable.read(path)
    except Exception as exc:
        raise AstrophotError(f"{path}: cannot read the star table ({exc})") from exc
    if "x" not in table.colnames and "X" in table.colnames and "Y" in table.colnames:
        # an astrometry.net .xyls or the original ap_* scripts' AP_XYPOS table: 1-based
        table["x"] = table["X"] - 1.0
        table["y"] = table["Y"] - 1.0
        log.info("%s: X/Y columns read as 1-based (FITS) positions", path)
    return table


def _describe(solved):
    sol = solved.solution
    ra, dec = sol["center"]
    return (
        f": {sol['backend']}, centre {ra:.5f} {dec:+.5f}, {sol['pixel_scale']:.4f} arcsec/pix, "
        f"rotation {sol['rotation']:.2f} deg, {sol['n_matched']} stars matched, "
        f"rms {sol['rms_arcsec']:.2f} arcsec"
    )


def _run(args):
    from astrophot.astrometry import solve_astrometry
    from astrophot.exceptions import AstrophotError

    if args.stars and len(args.frames) > 1:
        raise AstrophotError("--stars goes with a single frame")
    backend = args.backend or ["auto"]
    backend = "auto" if "auto" in backend else backend
    stars = _read_stars(args.stars) if args.stars else None
    options = {
        "backend": backend,
        "hint": _hint(args),
        "radius": args.radius,
        "scale": args.scale,
        "scale_tolerance": args.scale_tolerance,
        "blind": args.blind,
        "time_limit": args.time_limit,
        "index_files": args.index,
        "catalog": args.catalog,
        "cache": args.cache,
        "match_radius": args.match_radius,
        "min_matches": args.min_matches,
    }
    # a kept product must have been solved the same way (the values compared as recorded)
    same = {k: options[k] for k in ("backend", "radius", "scale", "scale_tolerance", "blind", "min_matches")}
    return frame_batch(
        "solve",
        args.frames,
        args.output,
        lambda frame: _solve_quietly(solve_astrometry, frame, stars, options),
        overwrite=args.overwrite,
        compress=args.compress,
        prefix="nav",
        verb="solving",
        kind="SolvedFrame",
        function="solve_astrometry",
        parameters=None if stars is not None else same,
        describe=_describe,
        stdout=True,
    )


def _solve_quietly(solve_astrometry, frame, stars, options):
    """Solve ``frame``; the library's "solved by" line is left out (the result line on stdout says it)."""
    with printed_instead("astrophot.astrometry._solve", starting="solved by"):
        return solve_astrometry(frame, stars=stars, **options)
