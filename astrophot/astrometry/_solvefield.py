# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
astrometry.net's ``solve-field`` program (Debian/Ubuntu package ``astrometry.net``).

It is run on astrophot's star list written as an ``.xyls`` FITS table
(1-based positions, brightest first), never on the image, so it does not
re-detect stars. Everything goes to a private temporary directory that is
removed afterwards; the WCS and the index stars in the field (``.rdls``)
are read back.
"""

import logging
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import psutil
from astropy.io import fits
from astropy.table import QTable, Table
from astropy.wcs import WCS

from astrophot._warnings import quiet
from astrophot.astrometry._index import INSTALL_HINT, find_index_files, index_files_for_field
from astrophot.astrometry._result import BackendUnavailable, Candidate
from astrophot.exceptions import AstrometryError

__all__ = ["solve_field_program", "solve_with_solve_field"]

log = logging.getLogger(__name__)

_PROGRAM_HINT = "install astrometry.net (Debian/Ubuntu: apt install astrometry.net; conda: astrometry)"


#: Seconds allowed beyond the time limit for solve-field to start and write its files.
_STARTUP_SECONDS = 1.0

#: Seconds between checks of the program's CPU time.
_POLL_SECONDS = 0.1


def _group_cpu(process):
    """CPU seconds of ``process`` and its live descendants (0 once they are gone)."""
    try:
        parent = psutil.Process(process.pid)
        members = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for member in members:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _children_cpu():
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def _run(command, *, cwd, wall_limit, stop=None, cpu_limit=None, budget=None):
    """
    Run ``command`` in its own process group; kill the group at a limit.

    ``solve-field`` checks ``--cpulimit`` only between batches of stars (it can
    overrun it several times over) and runs ``astrometry-engine`` as a child:
    the CPU seconds of the whole group are therefore watched here, and the
    group is killed when they pass ``cpu_limit``, after ``wall_limit``
    seconds, or as soon as the `threading.Event` ``stop`` is set (another
    backend solved), so nothing keeps running. A killed grandchild is reaped
    by init, so its CPU seconds never reach this process's children's usage:
    they are charged to ``budget`` (a `~astrophot.astrometry._budget.CpuBudget`).

    Returns
    -------
    stdout, stderr : str
    returncode : int or None
        None when the process group was killed at a limit.
    """
    counted0 = _children_cpu()
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise BackendUnavailable(f"cannot run {command[0]} ({exc}); {_PROGRAM_HINT}") from exc
    deadline = time.perf_counter() + wall_limit
    used = 0.0
    try:
        while True:
            wait = min(_POLL_SECONDS, max(0.01, deadline - time.perf_counter()))
            try:
                stdout, stderr = process.communicate(timeout=wait)
                return stdout, stderr, process.returncode
            except subprocess.TimeoutExpired:
                used = max(used, _group_cpu(process))
                over = cpu_limit is not None and used >= cpu_limit
                if over or time.perf_counter() >= deadline or (stop is not None and stop.is_set()):
                    raise
    except subprocess.TimeoutExpired:
        used = max(used, _group_cpu(process))
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stdout, stderr = process.communicate()
        if budget is not None:
            budget.charge(max(0.0, used - (_children_cpu() - counted0)))
        return stdout, stderr, None


def _cpu_cap(time_limit, budget):
    """
    CPU seconds after which the program is killed.

    Its share (``time_limit``) is passed as ``--cpulimit``, which it checks
    loosely; within a search's budget it is killed only when the whole budget
    left is used (a share it overruns comes out of the later backends' shares,
    as when it ran unwatched), so the search as a whole keeps its limit.
    """
    if budget is None:
        return time_limit
    return max(time_limit, budget.left())


def solve_field_program():
    """Path of ``solve-field``, or None when it is not installed."""
    return shutil.which("solve-field")


def _write_xyls(path, x, y, flux):
    table = Table()
    table["X"] = np.asarray(x, dtype=np.float64) + 1.0  # FITS convention: 1-based
    table["Y"] = np.asarray(y, dtype=np.float64) + 1.0
    table["FLUX"] = np.asarray(flux, dtype=np.float64)
    table.write(path, format="fits", overwrite=True)


def _tail(text, n=6):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:])


def solve_with_solve_field(
    stars, hint, *, index_files=None, time_limit=30.0, wall_limit=None, sip_order=None, stop=None, budget=None
):
    """
    Solve a star list with ``solve-field``.

    Parameters
    ----------
    stars : `~astrophot.astrometry._result.StarList`
    hint : `~astrophot.astrometry._hints.SolveHint`
    index_files : optional
        Index files or directories (see `find_index_files`); a generated
        configuration lists the ones whose quads fit the field.
    time_limit : float, optional
        CPU seconds, passed as ``--cpulimit`` and, without ``budget``,
        enforced on the program and its children (killed when they have used
        it); with ``budget``, they are killed when the budget left is used.
    wall_limit : float, optional
        Wall-clock seconds after which the process group is killed (plus a
        second to start); default ``time_limit``.
    stop : `threading.Event`, optional
        Stop the program when set (another backend running alongside solved).
    sip_order : int, optional
        ``--tweak-order`` (default: 2 with 30 or more stars, 1 with fewer,
        none below 10).
    budget : `~astrophot.astrometry._budget.CpuBudget`, optional
        Charged with the CPU seconds of killed children that this process
        cannot count itself.

    Returns
    -------
    list of Candidate

    Raises
    ------
    BackendUnavailable
        ``solve-field`` or suitable index files are missing.
    astrophot.exceptions.AstrometryError
        No solution within the limit.
    """
    program = solve_field_program()
    if program is None:
        raise BackendUnavailable(f"solve-field is not installed; {_PROGRAM_HINT}")
    indexes = find_index_files(index_files)
    if not indexes:
        raise BackendUnavailable(f"no astrometry.net index files found; {INSTALL_HINT}")
    ny, nx = stars.shape
    scale_range = hint.scale_range_arcsec()
    usable = index_files_for_field(indexes, stars.shape, scale_range)
    sel = stars.selected
    n = len(sel)
    if sip_order is None:
        sip_order = 2 if n >= 30 else (1 if n >= 10 else 0)
    cpu = max(1, int(round(time_limit)))
    with tempfile.TemporaryDirectory(prefix="astrophot-solve-") as tmp:
        tmp = Path(tmp)
        xyls = tmp / "field.xyls"
        _write_xyls(xyls, stars.x[sel], stars.y[sel], stars.flux[sel])
        config = tmp / "astrometry.cfg"
        lines = [f"cpulimit {cpu}"] + [f"index {i.path}" for i in usable]
        config.write_text("\n".join(lines) + "\n")
        outputs = {name: tmp / f"field.{name}" for name in ("wcs", "rdls", "corr", "solved")}
        command = [
            program, str(xyls),
            "--config", str(config),
            "--dir", str(tmp),
            "--temp-dir", str(tmp),
            "--no-plots",
            "--overwrite",
            "--no-remove-lines",
            "--uniformize", "0",
            "--width", str(nx),
            "--height", str(ny),
            "--x-column", "X",
            "--y-column", "Y",
            "--sort-column", "FLUX",
            "--cpulimit", str(cpu),
            "--crpix-center",
            "--new-fits", "none",
            "--index-xyls", "none",
            "--match", "none",
            "--wcs", str(outputs["wcs"]),
            "--rdls", str(outputs["rdls"]),
            "--corr", str(outputs["corr"]),
            "--solved", str(outputs["solved"]),
        ]  # fmt: skip
        if sip_order:
            command += ["--tweak-order", str(int(sip_order))]
        else:
            command += ["--no-tweak"]
        if scale_range is not None:
            command += [
                "--scale-units",
                "arcsecperpix",
                "--scale-low",
                f"{scale_range[0]:.6g}",
                "--scale-high",
                f"{scale_range[1]:.6g}",
            ]
        if hint.has_position:
            command += [
                "--ra",
                f"{hint.center.ra.deg:.6f}",
                "--dec",
                f"{hint.center.dec.deg:.6f}",
                "--radius",
                f"{hint.radius.to_value(u.deg):.4f}",
            ]
        log.debug("running %s", " ".join(command))
        t0 = time.perf_counter()
        wall = (time_limit if wall_limit is None else max(wall_limit, time_limit)) + _STARTUP_SECONDS
        stdout, stderr, returncode = _run(
            command,
            cwd=tmp,
            wall_limit=wall,
            stop=stop,
            cpu_limit=_cpu_cap(time_limit, budget),
            budget=budget,
        )
        if returncode is None:
            raise AstrometryError(
                f"solve-field: no solution within the time limit ({time_limit:.1f} CPU s, "
                f"{wall:.1f} wall s; stopped)"
            )
        elapsed = time.perf_counter() - t0
        output = stdout + "\n" + stderr
        if not outputs["solved"].exists() or not outputs["wcs"].exists():
            reason = "no solution"
            if "cpulimit" in output.lower() or elapsed >= time_limit:
                reason = f"no solution within the CPU limit ({cpu} s)"
            if returncode != 0:
                reason = f"exit code {returncode}: {_tail(output, 3)}"
            raise AstrometryError(
                f"solve-field: {reason} ({len(usable)} index file(s), {n} stars, {elapsed:.1f} s)"
            )
        with quiet():
            header = fits.getheader(outputs["wcs"])
            # the .wcs file has no image (NAXIS = 0): without the card astropy has nothing to warn
            # about (the filter above is process-wide: another thread may have restored it)
            header.remove("NAXIS", ignore_missing=True)
            wcs = WCS(header)
        reference = None
        if outputs["rdls"].exists():
            try:
                rd = Table.read(outputs["rdls"], hdu=1)
                reference = QTable(
                    {
                        "ra": np.asarray(rd["RA"], float) * u.deg,
                        "dec": np.asarray(rd["DEC"], float) * u.deg,
                        "mag": np.full(len(rd), np.nan),
                    }
                )
            except (OSError, KeyError, ValueError) as exc:
                log.debug("solve-field: unreadable rdls (%s)", exc)
    found = re.search(r"solved with index (\S+?)\.?\s*$", output, flags=re.MULTILINE)
    details = {
        "index": found.group(1) if found else None,
        "index_files_searched": len(usable),
        "solve_field_seconds": round(elapsed, 3),
    }
    return [Candidate(wcs=wcs, reference=reference, details=details)]
