# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot demo OUTDIR``: simulate an iTelescope night and run the night runner on it."""

__all__ = ["register"]


def register(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="simulate a small iTelescope night (Ha, R, V) and process it as 'astrophot run' does",
        description=(
            "Simulate a small iTelescope night (zipped Ha, R and V lights, one of them defocused, and a "
            "calibration library) in OUTDIR/night, process it as 'astrophot run' does into OUTDIR/products "
            "(calibrated and solved frames, a stack per filter, the Ha line image, the colour picture and "
            "the night report) and check the results against the simulation's truth; exit 1 when a check "
            "is off. OUTDIR must be new or empty (a second run into a used folder is refused at once, "
            "nothing written)."
        ),
    )
    parser.add_argument("outdir", help="output directory (created; must be new or empty)")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    parser.add_argument(
        "--shape",
        type=int,
        nargs=2,
        default=(400, 600),
        metavar=("NY", "NX"),
        help="frame shape (default 400 600)",
    )
    parser.add_argument("--n-lights", type=int, default=3, help="lights per filter (default 3)")
    parser.add_argument(
        "--no-solve", action="store_true", help="skip plate solving (then nothing is stacked)"
    )
    parser.set_defaults(func=_run)


def _run(args):
    from pathlib import Path

    from astrophot.exceptions import AstrophotError
    from astrophot.pipeline.demo import run_demo

    outdir = Path(args.outdir)
    if outdir.exists() and (not outdir.is_dir() or any(outdir.iterdir())):
        # refused at once: a second demo into the same folder would leave old and new products mixed
        raise AstrophotError(
            f"{outdir}: exists and is not empty (a previous demo?); give a new folder, or remove it first"
        )

    result = run_demo(
        args.outdir, seed=args.seed, shape=tuple(args.shape), n_lights=args.n_lights, solve=not args.no_solve
    )
    print(result.summary())
    return 0 if result.ok else 1
