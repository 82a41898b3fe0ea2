# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot info FILE...``: what a frame is and where it came from."""

__all__ = ["register"]


def register(subparsers):
    parser = subparsers.add_parser("info", help="describe frames: type, shape, exposure, filter, provenance")
    parser.add_argument("files", nargs="+", help="FITS files")
    parser.set_defaults(func=_run)


def _fmt(value):
    return "-" if value is None else str(value)


def _run(args):
    from astrophot.io import read_frame

    for index, path in enumerate(args.files):
        frame = read_frame(path)
        if index:
            print()
        date = frame.date_obs
        print(f"{path}")
        print(f"  type        {frame.frame_type}")
        print(
            f"  shape       {frame.data.shape[1]} x {frame.data.shape[0]} ({frame.data.dtype}, {frame.unit})"
        )
        print(f"  exposure    {_fmt(frame.exposure_time)}")
        print(f"  filter      {_fmt(frame.filter)}")
        print(f"  binning     {frame.binning[0]}x{frame.binning[1]}")
        print(f"  gain        {_fmt(frame.gain)}")
        print(f"  time (UTC)  {_fmt(date.isot if date is not None else None)}")
        print(f"  set temp    {_fmt(frame.set_temperature)}   ccd temp {_fmt(frame.ccd_temperature)}")
        print(f"  telescope   {_fmt(frame.telescope)}   target {_fmt(frame.target)}")
        coords = frame.coordinates
        print(
            f"  pointing    {_fmt(coords.to_string('hmsdms', precision=1) if coords is not None else None)}"
        )
        print(f"  wcs         {'yes' if frame.wcs is not None else 'no'}")
        steps = frame.provenance.steps
        print(f"  provenance  {len(steps)} step(s), id {frame.provenance.id}")
        for step in steps:
            print(
                f"    - {step.function} at {step.start_time} ({len(step.inputs)} input(s), {step.duration:.2f} s)"
            )
    return 0
