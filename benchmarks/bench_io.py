# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""write_frame/read_frame (FITS + ASDF sidecar) against plain astropy.io.fits."""

import sys
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import StdDevUncertainty

from astrophot import CalibratedFrame, read_frame, write_frame
from astrophot.provenance import start_step

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of as _best

SHAPE = (2672, 4008)


def bench_write_read_calibrated():
    rng = np.random.default_rng(0)
    data = rng.normal(1000, 30, SHAPE).astype(np.float32)
    unc = np.sqrt(np.abs(data)).astype(np.float32)
    flags = np.zeros(SHAPE, dtype=np.uint32)
    frame = start_step("bench").finish(
        CalibratedFrame(data, uncertainty=StdDevUncertainty(unc), flags=flags, mask=np.zeros(SHAPE, bool))
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        counter = iter(range(100))

        def ours():
            path = tmp / f"ours{next(counter)}.fits"
            write_frame(frame, path)
            read_frame(path)

        def floor():
            path = tmp / f"floor{next(counter)}.fits"
            fits.HDUList(
                [
                    fits.PrimaryHDU(data),
                    fits.ImageHDU(unc, name="UNCERT"),
                    fits.ImageHDU(np.zeros(SHAPE, np.uint8), name="MASK"),
                    fits.ImageHDU(flags, name="DQ"),
                ]
            ).writeto(path)
            with fits.open(path, memmap=False) as hdul:
                for hdu in hdul:
                    _ = None if hdu.data is None else np.array(hdu.data)

        t_ours = _best(ours)
        t_floor = _best(floor)
    return {
        "name": "io.write+read CalibratedFrame 4008x2672 (+UNCERT, MASK, DQ, sidecar)",
        "seconds": t_ours,
        "floor_seconds": t_floor,
        "ratio": t_ours / t_floor,
        "target": "<1.3",
        "notes": f"floor: astropy.io.fits write+read of the same HDUs {t_floor:.3f} s",
    }


def bench_calibrated_frame_size():
    """
    Bytes on disk of one calibrated 4008x2672 frame (a simulated raw calibrated by
    `calibrate_frame`): as written before DQ was stored small (float32 + float32 UNCERT +
    int32 DQ), now (DQ in the smallest unsigned type), and with ``compress=True``
    (lossless tile compression; round trip checked bit for bit), with the write times.
    """
    import time

    from astrophot import calibrate_frame
    from astrophot.datasets import make_raw_frame

    raw, _ = make_raw_frame(shape=SHAPE, seed=1)
    frame = calibrate_frame(raw, gain=1.5, read_noise=10.0)
    sizes, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw_path = tmp / "raw.fits"
        fits.PrimaryHDU(raw.data, header=fits.Header(raw.header)).writeto(raw_path)
        sizes["raw"] = raw_path.stat().st_size
        before = tmp / "before.fits"
        fits.HDUList(
            [
                fits.PrimaryHDU(frame.data, header=fits.Header(frame.header)),
                fits.ImageHDU(frame.uncertainty.array.astype(np.float32), name="UNCERT"),
                fits.ImageHDU(frame.flags.astype(np.int32), name="DQ"),
            ]
        ).writeto(before)
        sizes["before"] = before.stat().st_size
        for label, compress in (("now", False), ("compressed", True)):
            path = tmp / f"{label}.fits"
            t0 = time.perf_counter()
            write_frame(frame, path, compress=compress)
            seconds[label] = time.perf_counter() - t0
            sizes[label] = path.stat().st_size
            back = read_frame(path)
            exact = (
                np.array_equal(back.data, frame.data)
                and np.array_equal(back.uncertainty.array, frame.uncertainty.array)
                and np.array_equal(back.flags, frame.flags)
            )
            if not exact:
                raise AssertionError(f"{label}: the round trip is not exact")
    return {
        "name": "io.size of a calibrated 4008x2672 frame (FITS bytes, sidecar apart)",
        "seconds": seconds["compressed"],
        "floor_seconds": seconds["now"],
        "ratio": sizes["compressed"] / sizes["now"],
        "target": "lossless, smaller",
        "notes": (
            f"raw ({raw.data.dtype}) {sizes['raw']:,} B; before {sizes['before']:,} B; now {sizes['now']:,} B (write {seconds['now']:.2f} s); "
            f"compress=True {sizes['compressed']:,} B (write {seconds['compressed']:.2f} s), "
            "round trip bit for bit"
        ),
    }


def bench_solved_frame_size():
    """
    Bytes on disk of one solved 4008x2672 frame (a simulated raw calibrated by
    `calibrate_frame`, its true WCS and 200 stars) written with its own copy of the
    pixels and with ``pixels_from=`` the calibrated file beside it (header, WCS, STARS and
    SOLUTION plus a path and sha256), the write and read times of each (best of 3), and
    the round trip checked bit for bit.
    """
    import time

    from astropy.table import QTable

    from astrophot import calibrate_frame
    from astrophot.datasets import make_raw_frame
    from astrophot.frames import SolvedFrame

    raw, truth = make_raw_frame(shape=SHAPE, seed=1)
    frame = calibrate_frame(raw, gain=1.5, read_noise=10.0)
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, SHAPE[1], 200), rng.uniform(0, SHAPE[0], 200)
    ra, dec = truth[0].wcs.pixel_to_world_values(x, y)
    stars = QTable({"x": x, "y": y, "flux": rng.uniform(1e3, 1e5, 200), "ra": ra, "dec": dec})
    sizes, write_s, read_s = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cal_path = write_frame(frame, tmp / "cal.fits")
        solved = SolvedFrame(
            read_frame(cal_path), wcs=truth[0].wcs, stars=stars, solution={"backend": "bench"}
        )
        sizes["calibrated"] = cal_path.stat().st_size
        for label, options in (("copy", {}), ("reference", {"pixels_from": cal_path})):
            path = tmp / f"nav-{label}.fits"
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                write_frame(solved, path, overwrite=True, **options)
                times.append(time.perf_counter() - t0)
            write_s[label] = min(times)
            sizes[label] = path.stat().st_size + path.with_suffix(".asdf").stat().st_size
            read_s[label] = _best(lambda path=path: read_frame(path), repeat=3)
            back = read_frame(path)
            exact = all(
                np.array_equal(a, b)
                for a, b in (
                    (back.data, solved.data),
                    (back.uncertainty.array, solved.uncertainty.array),
                    (back.flags, solved.flags),
                    (back.mask, solved.mask),
                )
            )
            if not exact:
                raise AssertionError(f"{label}: the round trip is not exact")
    return {
        "name": "io.size of a solved 4008x2672 frame beside its calibrated frame (FITS + sidecar bytes)",
        "seconds": write_s["reference"],
        "floor_seconds": write_s["copy"],
        "ratio": sizes["reference"] / sizes["copy"],
        "target": "no second copy of the pixels",
        "notes": (
            f"calibrated {sizes['calibrated']:,} B; solved with its own pixels {sizes['copy']:,} B "
            f"(write {write_s['copy']:.2f} s, read {read_s['copy']:.2f} s); with pixels_from "
            f"{sizes['reference']:,} B (write {write_s['reference']:.2f} s, read {read_s['reference']:.2f} s: "
            "it reads and checks the calibrated file); round trip bit for bit"
        ),
    }
