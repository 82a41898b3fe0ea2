# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Rebuild the small astrometry test data in this directory (maintainers only).

Needs the Debian packages ``astrometry.net`` (for ``build-astrometry-index``)
and ``astrometry-data-tycho2-07`` (the Tycho-2 stars). Run from the
repository root::

    python tests/data/astrometry/build_test_data.py

It writes

- ``index-test-NN.fits``: astrometry.net index files (scale preset
  ``-P NN``, id ``99NN``) built with ``build-astrometry-index`` from the
  Tycho-2 stars of the test fields whose size needs that preset, so the
  engine tests run without the 290 MB of Debian index data;
- ``tycho2_test_fields.ecsv``: the Tycho-2 stars of the two real-data fields
  (the PANOPTES frame in ``../shared/data/panoptes`` and the astroquery
  astrometry.net recorded solution), as a catalogue file for the matcher
  and for verification.

The stars of the simulated test fields come from the demo extract shipped
in ``astrophot/datasets/data`` (the same stars the simulator draws), the
real-data fields from Debian's ``index-tycho2-07`` file.
"""

import subprocess
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from astrophot.datasets import load_demo_catalog, read_index_stars

HERE = Path(__file__).resolve().parent
#: Simulated test fields: demo field name -> Tycho-2 radius kept (deg). The tests
#: simulate a 0.7 x 0.5 deg field on NGC 6888, 1.5 x 1 deg on the Cygnus Loop
#: and 4 x 2.7 deg on M13.
SIMULATED_FIELDS = {"NGC 6888": 0.7, "Cygnus Loop": 1.2, "M13": 2.5}
#: Real-data fields: name -> ((ra, dec), radius in deg).
REAL_FIELDS = {
    "panoptes": ((303.21, 46.02), 2.2),  # ../shared/data/panoptes/unsolved.fits (2 x 2 deg)
    "astroquery": ((135.62, 49.79), 0.7),  # astroquery's recorded nova.astrometry.net solution
}
#: Index files: scale preset (quads of 22'-30' for P7 ... 85'-120' for P11) -> fields in it
#: (the PANOPTES frame solves with P9 only).
PRESETS = {
    7: ("NGC 6888",),
    8: ("NGC 6888", "Cygnus Loop"),
    9: ("Cygnus Loop", "panoptes"),
    10: ("M13",),
    11: ("M13",),
}
DEBIAN_INDEX = "/usr/share/astrometry/index-tycho2-07.littleendian.fits"


def _degrees(column):
    return np.asarray(getattr(column, "value", column), dtype=float)


def _plain(table):
    out = Table()
    out["ra"] = np.round(_degrees(table["ra"]), 7)
    out["dec"] = np.round(_degrees(table["dec"]), 7)
    out["mag"] = np.round(np.asarray(table["mag"], float), 3)
    return out


def _build(stars, preset, tmp):
    source = Path(tmp) / f"stars-{preset}.fits"
    Table({"RA": stars["ra"], "DEC": stars["dec"], "MAG": stars["mag"]}).write(source, format="fits")
    out = HERE / f"index-test-{preset:02d}.fits"
    subprocess.run(
        ["build-astrometry-index", "-i", str(source), "-o", str(out), "-P", str(preset), "-S", "MAG",
         "-E", "-I", str(9900 + preset), "-t", tmp, "-A", "RA", "-D", "DEC", "-j", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    _strip_history(out)
    print(out.name, len(stars), "stars", out.stat().st_size // 1024, "KB")


def _strip_history(path):
    """Drop the (long, repeated) HISTORY and COMMENT cards: they make most of a tiny index file."""
    with fits.open(path) as hdul:
        for hdu in hdul:
            for key in ("HISTORY", "COMMENT"):
                while key in hdu.header:
                    del hdu.header[key]
        hdul.writeto(path, overwrite=True, output_verify="silentfix")


def main():
    fields = {name: _plain(load_demo_catalog(name, radius)) for name, radius in SIMULATED_FIELDS.items()}
    real = {
        name: _plain(read_index_stars(c, r, index_files=[DEBIAN_INDEX]))
        for name, (c, r) in REAL_FIELDS.items()
    }
    catalog = vstack(list(real.values()))
    catalog.meta = {
        "description": "Tycho-2 stars around the PANOPTES test frame and astroquery's recorded solution",
        "source": "Debian astrometry-data-tycho2-07 (index 4107), from Tycho-2 (ESA; Hog et al. 2000)",
        "fields": {k: [list(c), r] for k, (c, r) in REAL_FIELDS.items()},
    }
    catalog["ra"].unit = catalog["dec"].unit = "deg"
    catalog.write(HERE / "tycho2_test_fields.ecsv", format="ascii.ecsv", overwrite=True)
    fields.update(real)
    with tempfile.TemporaryDirectory() as tmp:
        for preset, names in PRESETS.items():
            _build(vstack([fields[name] for name in names]), preset, tmp)


if __name__ == "__main__":
    main()
