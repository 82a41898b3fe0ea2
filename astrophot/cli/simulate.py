# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot simulate OUTDIR``: write a simulated iTelescope night with its truth."""

__all__ = ["register"]


def register(subparsers):
    parser = subparsers.add_parser(
        "simulate",
        help="write a simulated iTelescope night (raw lights, calibration frames and library, truth)",
        description=(
            "Simulate a night on an iTelescope.net telescope: raw light frames of real Tycho-2 stars "
            "with iTelescope file names and MaxIm DL headers, raw bias/dark/flat frames, a calibration "
            "library of masters, and the truth (truth.yaml, truth/) beside them. The same seed gives "
            "the same bytes. Existing files are never overwritten."
        ),
    )
    parser.add_argument("outdir", metavar="OUTDIR", help="output directory (created)")
    parser.add_argument("--telescope", default="T20", help="iTelescope telescope (default: T20)")
    parser.add_argument("--target", default="M31", help="target name; a demo field name also sets the field")
    parser.add_argument(
        "--center", nargs=2, type=float, metavar=("RA", "DEC"), help="field centre in degrees (ICRS)"
    )
    parser.add_argument("--filters", nargs="+", default=["Ha", "Red"], help="filters (default: Ha Red)")
    parser.add_argument("--n-lights", type=int, default=4, help="lights per filter (default: 4)")
    parser.add_argument("--binning", type=int, default=2, help="binning (default: 2)")
    parser.add_argument(
        "--shape", nargs=2, type=int, metavar=("NY", "NX"), help="frame size (default: the telescope's)"
    )
    parser.add_argument("--scale", type=float, help="arcsec per pixel (default: the telescope's)")
    parser.add_argument("--exposure", type=float, default=300.0, help="light exposure in s (default: 300)")
    parser.add_argument("--date", default="2021-10-05", help="local date of the evening (YYYY-MM-DD)")
    parser.add_argument("--user", default="astrophot", help="iTelescope user name in the file names")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--n-bias", type=int, default=5, help="raw bias frames (default: 5)")
    parser.add_argument("--n-darks", type=int, default=5, help="raw dark frames (default: 5)")
    parser.add_argument("--n-flats", type=int, default=5, help="raw flats per filter (default: 5)")
    parser.add_argument(
        "--dark-exposure", type=float, default=900.0, help="dark exposure in s (default: 900)"
    )
    parser.add_argument(
        "--dark-bias-subtracted",
        action="store_true",
        help="write the master dark bias-subtracted (CALSTAT 'BM') instead of with the bias in ('M')",
    )
    parser.add_argument(
        "--bad-frames",
        nargs="*",
        default=[],
        choices=["defocused", "trailed", "clouded"],
        help="deliberately bad lights to include",
    )
    parser.add_argument("--no-cosmic-rays", action="store_true", help="no cosmic rays")
    parser.add_argument(
        "--no-library", action="store_true", help="do not write the master calibration library"
    )
    parser.add_argument("--fwhm", type=float, default=2.5, help="typical PSF FWHM in pixels (default: 2.5)")
    parser.set_defaults(func=_run)


def _run(args):
    from astrophot.datasets import simulate_night

    night = simulate_night(
        args.outdir,
        telescope=args.telescope,
        target=args.target,
        center=tuple(args.center) if args.center else None,
        filters=tuple(args.filters),
        n_lights=args.n_lights,
        binning=args.binning,
        shape=tuple(args.shape) if args.shape else None,
        scale=args.scale,
        exposure=args.exposure,
        date=args.date,
        user=args.user,
        seed=args.seed,
        n_bias=args.n_bias,
        n_darks=args.n_darks,
        n_flats=args.n_flats,
        dark_exposure=args.dark_exposure,
        dark_bias_subtracted=args.dark_bias_subtracted,
        bad_frames=tuple(args.bad_frames),
        cosmic_rays=not args.no_cosmic_rays,
        calibration_library=not args.no_library,
        fwhm=args.fwhm,
    )
    ny, nx = night.shape
    print(
        f"simulated {night.telescope} night of {night.target} in {night.root}: "
        f'{len(night.lights)} lights {nx}x{ny} at {night.scale:.3f}"/px, '
        f"{len(night.biases)} bias, {len(night.darks)} darks, {sum(map(len, night.flats.values()))} flats"
    )
    for path in night.lights:
        reason = night.truth_for(path).bad_reason
        print(f"  {path.relative_to(night.root)}" + (f"  (bad: {reason})" if reason else ""))
    if night.masters:
        print(f"  calibration library: {night.library.relative_to(night.root)}/{night.telescope}/Masters")
    if night.truth_path is not None:
        print(f"  truth: {night.truth_path.relative_to(night.root)}")
    return 0
