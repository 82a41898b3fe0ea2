# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot run SOURCE -o OUTDIR``: the whole night (`~astrophot.pipeline.process_night`)."""

__all__ = ["register"]


def register(subparsers):
    parser = subparsers.add_parser(
        "run",
        help="process a night: zips to calibrated and solved frames, stacks, colour and a report",
        description="Process a night folder (zips included), a folder of FITS files, or a configuration file.",
    )
    parser.add_argument(
        "source", nargs="?", help="night folder, folder of FITS files, or a YAML configuration"
    )
    parser.add_argument("-o", "--output", help="output folder (created)")
    parser.add_argument("--config", help="YAML configuration (see --print-config)")
    parser.add_argument("--library", help="calibration library folder")
    parser.add_argument("--scheduler", help="address of a dask.distributed scheduler (tcp://host:port)")
    parser.add_argument("--workers", type=int, help="workers of a local Dask cluster (0: in this process)")
    parser.add_argument("--plan", action="store_true", help="print the plan and exit without running")
    parser.add_argument("--no-resume", action="store_true", help="redo every product")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars or lines (the summary is still printed)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="STAGE.OPTION=VALUE",
        help="override one option (repeatable); wins over --config",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the default configuration and exit"
    )
    parser.set_defaults(func=_run)


def _run(args):
    import sys

    from astrophot.pipeline import DEFAULT_CONFIG_TEXT, plan_night, process_night

    if args.print_config:
        sys.stdout.write(DEFAULT_CONFIG_TEXT)
        return 0
    if not args.source or not args.output:
        raise ValueError("SOURCE and -o/--output are needed (or --print-config)")
    overrides = list(args.set)
    if args.scheduler:
        overrides.append(f"execution.scheduler={args.scheduler}")
    if args.quiet:
        overrides.append("execution.progress=none")
    if args.workers is not None:
        overrides.append(f"execution.workers={args.workers}")
    options = {"output": args.output, "config": args.config, "library": args.library, "overrides": overrides}
    if args.plan:
        print(plan_night(args.source, resume=not args.no_resume, **options).describe())
        return 0
    result = process_night(args.source, resume=not args.no_resume, **options)
    from astrophot.cli._common import cli_words

    print(cli_words(result.summary()))
    return 0 if result.ok else 1
