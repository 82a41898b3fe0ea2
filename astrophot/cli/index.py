# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot index list|fetch``: the astrometry.net 5200-series index files a field needs."""

__all__ = ["register"]


def register(subparsers):
    """
    Add the ``index`` subcommand (``list`` and ``fetch``).

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of the ``astrophot`` parser (what
        `argparse.ArgumentParser.add_subparsers` returns); only its ``add_parser``
        is used.
    """
    parser = subparsers.add_parser(
        "index",
        help="list or fetch the astrometry.net 5200-series (Gaia) index files covering a field",
        description="Fields under about half a degree need astrometry.net's Gaia-based 5200 series. "
        "'list' prints the files covering a field (HEALPix tiles x quad scales); 'fetch' downloads "
        "only those.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    for name in ("list", "fetch"):
        p = actions.add_parser(name, help=f"{name} the index files covering a field")
        p.add_argument("--ra", type=float, required=True, help="field centre, degrees")
        p.add_argument("--dec", type=float, required=True, help="field centre, degrees")
        p.add_argument("--field", type=float, required=True, help="field width, degrees")
        p.add_argument(
            "--radius", type=float, default=None, help="search radius (deg), default half a diagonal"
        )
        if name == "fetch":
            p.add_argument("-d", "--directory", required=True, help="where the files go")
    parser.set_defaults(func=_run)


def _run(args):
    from astrophot.astrometry._series import fetch_index_files, series_5200_files

    names = series_5200_files(args.ra, args.dec, args.field, radius=args.radius)
    if args.action == "list":
        for name in names:
            print(name)
        return 0
    for path in fetch_index_files(names, args.directory):
        print(path)
    return 0
