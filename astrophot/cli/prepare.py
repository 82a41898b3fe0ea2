# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot prepare DIR [--dry-run]``: unzip an iTelescope download, remove spaces, fix permissions."""

__all__ = ["register"]


def register(subparsers):
    parser = subparsers.add_parser(
        "prepare",
        help="prepare an iTelescope download: unzip archives, replace spaces in names, fix permissions",
        description=(
            "Unzip every .zip archive below DIR into its own directory, replace spaces in file and "
            "directory names with '_', and make directories traversable and files readable. Nothing "
            "existing is overwritten, archives are kept, unsafe or corrupt archives are reported and "
            "left alone, and running it twice changes nothing."
        ),
    )
    parser.add_argument("directory", metavar="DIR", help="the downloaded directory")
    parser.add_argument(
        "-n", "--dry-run", action="store_true", help="report what would be done, change nothing"
    )
    parser.add_argument(
        "--max-ratio",
        type=float,
        default=None,
        metavar="R",
        help="refuse archives with an entry over 1 MiB that expands more than R times (default 200)",
    )
    parser.add_argument(
        "--max-size",
        type=float,
        default=None,
        metavar="GIB",
        help="extract at most GIB gibibytes in all, nested archives included (default 64)",
    )
    parser.set_defaults(func=_run)


def _run(args):
    from astrophot.instruments.itelescope import prepare_download

    limits = {}
    if args.max_ratio is not None:
        limits["max_ratio"] = args.max_ratio
    if args.max_size is not None:
        limits["max_size"] = int(args.max_size * 2**30)
    from astrophot.cli._common import printed_instead

    with printed_instead("astrophot.instruments._prepare"):  # the report below lists it all
        report = prepare_download(args.directory, dry_run=args.dry_run, **limits)
    print(report.format())
    return 0 if report.ok else 1
