# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The solver's time budget: CPU seconds, backend order by search kind, shares, a loaded core."""

import subprocess
import sys
import time

import pytest

from astrophot.astrometry import solve_astrometry
from astrophot.astrometry._budget import CpuBudget, cpu_seconds, plan_backends
from astrophot.astrometry._hints import SolveHint, hint_from_frame
from astrophot.astrometry._solve import BACKENDS
from astrophot.io import read_frame

from ._fields import as_calibrated, requires_debian_index, requires_solve_field, simulated_field


def test_plan_order_by_search_kind():
    frame, truth, _ = simulated_field("1.5deg")
    hinted = hint_from_frame(frame, scale=9.0)
    assert hinted.has_position and hinted.has_scale
    assert plan_backends(list(BACKENDS), hinted, auto=True)[:2] == ["matcher", "solve-field"]
    assert plan_backends(list(BACKENDS), SolveHint(), auto=True)[:2] == ["solve-field", "engine"]
    # an explicit list keeps the caller's order
    assert plan_backends(["engine", "matcher"], hinted, auto=False) == ["engine", "matcher"]


def test_cpu_budget_counts_finished_children():
    budget = CpuBudget(30.0)
    before = cpu_seconds()
    subprocess.run([sys.executable, "-c", "s=0\nfor i in range(3_000_000): s+=i"], check=True)
    spent = cpu_seconds() - before
    assert spent > 0.05  # the child's CPU time is counted once it is waited for
    assert budget.left() == pytest.approx(30.0 - budget.cpu_used(), abs=0.05)
    shares = [budget.share(w, rest) for w, rest in ((1.0, [2.0, 1.0]), (2.0, [1.0]))]
    assert shares[0] == pytest.approx(budget.left() / 4, rel=0.02)
    assert shares[1] == pytest.approx(budget.left() * 2 / 3, rel=0.02)


def test_hinted_field_reaches_the_matcher_first():
    # a hinted field (position from the header, scale given): the default choice goes to the
    # matcher first, inside a budget too small for a blind engine search
    frame, truth, stars = simulated_field("1.5deg")
    solved = solve_astrometry(frame, stars=stars, scale=9.0, catalog="demo", time_limit=20.0, parallel=False)
    assert solved.solution["backend"] == "matcher"
    assert solved.solution["tried"] == []
    assert solved.solution["budget"]["cpu_seconds"] < 20.0


@pytest.fixture
def busy_core():
    """Another process keeps one core busy for the test's duration."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.2)
    yield process
    process.kill()
    process.wait()


@pytest.mark.slow
@pytest.mark.solver
@requires_solve_field
@requires_debian_index
@pytest.mark.parametrize("name", ["unsolved.fits", "solved.fits.fz", "tiny.fits", "noheader.fits"])
def test_panoptes_blind_solves_within_the_budget_on_a_loaded_machine(shared_data, busy_core, name):
    # PANOPTES DSLR crops, 10.3"/px: blind, default backend choice, 120 CPU s
    frame = as_calibrated(read_frame(shared_data / "panoptes" / name))
    solved = solve_astrometry(frame, blind=True, time_limit=120)
    assert busy_core.poll() is None
    assert solved.solution["verified"]
    assert solved.solution["pixel_scale"] == pytest.approx(10.3, rel=0.01)
    assert solved.solution["budget"]["cpu_seconds"] < 120
    # blind: solve-field first, in its own process with a CPU limit
    assert solved.solution["backend"] == "solve-field"


def test_dss_plate_scale_is_a_scale_hint(shared_data):
    # a POSS-I scan: PLTSCALE 67.2"/mm x XPIXELSZ 25.28 micron = 1.699"/px; its own plate
    # solution (the CD matrix) says 1.70"/px
    from astropy.io import fits

    from astrophot.frames import RawFrame

    header = fits.getheader(shared_data / "dss" / "wcstest.mt")
    for key in [k for k in header if k[:2] in ("CD", "CR", "CT", "CU") or k.startswith("CDELT")]:
        del header[key]
    frame = RawFrame(fits.getdata(shared_data / "dss" / "wcstest.mt").astype(float), unit="adu", meta=header)
    hint = hint_from_frame(frame)
    assert hint.sources["scale"] == "PLTSCALE/XPIXELSZ"
    assert hint.scale.value == pytest.approx(67.2 * 25.28445e-3, rel=1e-6)
    assert hint.scale.value == pytest.approx(0.000472523 * 3600, rel=0.002)


def test_a_program_is_killed_at_its_cpu_share_and_its_grandchild_charged(tmp_path):
    """solve-field overruns --cpulimit and its astrometry-engine child is reaped by init when killed:
    the group's CPU is watched and charged to the budget (a stand-in group: a shell whose child spins)."""
    from astrophot.astrometry._solvefield import _run

    budget = CpuBudget(10.0)
    spin = f"{sys.executable} -c 'while True: pass'"
    start = time.perf_counter()
    stdout, stderr, code = _run(
        ["sh", "-c", spin], cwd=tmp_path, wall_limit=60.0, cpu_limit=0.5, budget=budget
    )
    wall = time.perf_counter() - start
    assert code is None  # killed at the CPU share, long before the 60 s wall limit
    assert wall < 30.0
    # the spinning grandchild's CPU was never seen by RUSAGE_CHILDREN: it is charged
    assert 0.5 <= budget.cpu_used() < 0.5 + 1.0
