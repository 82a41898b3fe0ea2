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
