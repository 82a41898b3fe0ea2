# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A night as iTelescope delivers it: lights zipped in a download folder, a calibration library."""

import zipfile
from dataclasses import dataclass
from pathlib import Path

from astrophot.io._atomic import atomic_path

from ._night import TRUTH_NAME, load_night, simulate_night

__all__ = ["DownloadedNight", "simulate_itelescope_night"]


@dataclass(repr=False)
class DownloadedNight:
    """
    A simulated iTelescope download and the night behind it.

    Attributes
    ----------
    night : `Night`
        The simulation (truth, raw lights, library).
    download : `~pathlib.Path`
        ``<root>/download/<T>/<target>/<yyyymmdd>/``: one zip per filter, as
        iTelescope's "download all" gives them.
    library : `~pathlib.Path`
        The calibration library (masters in iTelescope's layout).
    zips : list of `~pathlib.Path`
    """

    night: object
    download: Path
    library: Path
    zips: list

    def __repr__(self):
        return f"<DownloadedNight {self.download}: {len(self.zips)} zip(s); library {self.library}>"


def simulate_itelescope_night(outdir, *, filters=("Ha", "Red", "V"), n_lights=3, **options):
    """
    Simulate a night and zip its lights as an iTelescope download.

    Parameters
    ----------
    outdir : path-like
        Output directory (created). A night simulated there before is
        loaded and zipped again where its zips are missing.
    filters : sequence of str, optional
        Three filters by default: H-alpha, R and V (a narrow band with its
        continuum, and three colours).
    n_lights : int, optional
        Lights per filter.
    **options
        Passed to `simulate_night` (``shape``, ``seed``, ``bad_frames`` ...).

    Returns
    -------
    DownloadedNight

    Examples
    --------
    >>> from astrophot.datasets import simulate_itelescope_night
    >>> night = simulate_itelescope_night(getfixture("tmp_path"), n_lights=1, shape=(64, 96))
    >>> [z.name.split("-")[-1] for z in night.zips]
    ['Ha.zip', 'Red.zip', 'V.zip']
    """
    outdir = Path(outdir)
    if (outdir / TRUTH_NAME).exists():  # made before: zip what is there (nothing is overwritten)
        night = load_night(outdir)
    else:
        night = simulate_night(outdir, filters=tuple(filters), n_lights=n_lights, **options)
    date = night.date.replace("-", "")
    download = outdir / "download" / night.telescope / night.target / date
    download.mkdir(parents=True, exist_ok=True)
    zips = []
    for filt in night.filters:
        members = [p for p in night.lights if f"-{filt}-" in p.name]
        path = download / f"{night.telescope}-{night.target}-{date}-{filt}.zip"
        if not path.exists():
            with (
                atomic_path(path) as tmp,
                zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
            ):
                for member in members:
                    zf.write(member, arcname=member.name)
        zips.append(path)
    return DownloadedNight(night=night, download=download, library=night.library, zips=zips)
