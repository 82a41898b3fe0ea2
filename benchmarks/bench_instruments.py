# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""iTelescope file-name parsing and download preparation against their floors."""

import datetime
import re
import shutil
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from astrophot.instruments.itelescope import make_raw_filename, parse_filename, prepare_download

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of as _best

N_NAMES = 20000
N_ARCHIVES, N_FILES, FILE_SHAPE = 4, 12, (512, 1024)  # 48 files of 1 MiB (uint16 noise)


def _names(n):
    start = datetime.datetime(2024, 1, 1, 20, 0, 0)
    return [
        make_raw_filename(
            telescope=f"T{5 + i % 30:02d}",
            user="jdoe",
            target=f"NGC {i % 7000} field",
            mosaic_panel=(1 + i % 3, 1) if i % 5 == 0 else None,
            local_time=start + datetime.timedelta(seconds=37 * i),
            filter=("Ha", "OIII", "SII", "Red")[i % 4],
            binning=1 + i % 2,
            pier_side="EW"[i % 2],
            exposure=300,
            sequence=i % 1000,
        )
        for i in range(n)
    ]


def bench_parse_filenames():
    names = _names(N_NAMES)
    floor_re = re.compile(
        r"(raw|calibrated|cal)-T(\d+)-([^-]+)-(.+)-(\d{8})-(\d{6})-([^-]+)-BIN(\d+)-([EW])-([\d.]+)-(\d+)\.fit"
    )

    def ours():
        for name in names:
            parse_filename(name)

    def floor():
        for name in names:
            floor_re.fullmatch(name).groups()

    t_ours, t_floor = _best(ours), _best(floor)
    return {
        "name": f"instruments.parse_filename x{N_NAMES} raw names",
        "seconds": t_ours,
        "floor_seconds": t_floor,
        "ratio": t_ours / t_floor,
        "notes": (
            f"{1e6 * t_ours / N_NAMES:.1f} us/name; floor: one regex fullmatch per name "
            "(no validation, no datetime/Quantity)"
        ),
    }


def _make_download(root):
    rng = np.random.default_rng(0)
    names = _names(N_ARCHIVES * N_FILES)
    for a in range(N_ARCHIVES):
        night = root / f"night {a}"
        night.mkdir(parents=True)
        with zipfile.ZipFile(night / f"lights {a}.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for f in range(N_FILES):
                data = rng.normal(1000, 10, FILE_SHAPE).astype(">u2").tobytes()
                zf.writestr(names[a * N_FILES + f], data)


def bench_prepare_download():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / "source"
        _make_download(source)
        counter = iter(range(100))

        def fresh():
            target = tmp / f"copy{next(counter)}"
            shutil.copytree(source, target)
            return target

        copies = [fresh() for _ in range(3)]
        plain = [fresh() for _ in range(3)]

        def ours():
            prepare_download(copies.pop())

        def floor():
            root = plain.pop()
            for archive in sorted(root.rglob("*.zip")):
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(archive.parent)

        t_ours, t_floor = _best(ours), _best(floor)

        done = fresh()
        prepare_download(done)

        def rerun():
            report = prepare_download(done)
            assert not report.changed

        def crc_floor():
            for path in done.rglob("*.fit"):
                zlib.crc32(path.read_bytes())

        t_rerun, t_crc = _best(rerun), _best(crc_floor)
    size_mb = N_ARCHIVES * N_FILES * np.prod(FILE_SHAPE) * 2 / 2**20
    return [
        {
            "name": f"instruments.prepare_download {N_ARCHIVES} zips, {size_mb:.0f} MiB",
            "seconds": t_ours,
            "floor_seconds": t_floor,
            "ratio": t_ours / t_floor,
            "notes": f"floor: zipfile.extractall of the same archives {t_floor:.3f} s (no checks)",
        },
        {
            "name": "instruments.prepare_download second run (nothing to do)",
            "seconds": t_rerun,
            "floor_seconds": t_crc,
            "ratio": t_rerun / t_crc,
            "notes": f"floor: CRC-32 of every extracted file {t_crc:.3f} s (what a rerun must read)",
        },
    ]
