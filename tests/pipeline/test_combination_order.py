# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The night's combination tasks wait for the products they need, and only for those; a task
whose needed product failed is left out. (The Dask path, every task submitted at once with
its needs as futures, is run by tests/pipeline/test_night.py's distributed test, whose
products must equal the local run's.)
"""

from astrophot.pipeline import _combine, _later


def _fake_products(monkeypatch, calls):
    def run_product(task):
        calls.append(task["name"])
        status = "failed" if task["name"] == "stack-bad" else "done"
        return {"name": task["name"], "status": status, "made": True, "reason": "", "seconds": 0.0}

    monkeypatch.setattr(_combine, "run_product", run_product)


STAGES = [
    (
        "stack",
        [
            {"name": "stack-Ha", "inputs": [], "outputs": ["Ha"]},
            {"name": "stack-bad", "inputs": [], "outputs": ["bad"]},
        ],
    ),
    (
        "continuum",
        [
            {"name": "line-needs-bad", "inputs": ["Ha", "bad"], "outputs": ["L1"]},
            {"name": "line", "inputs": ["Ha", "frame.fits"], "outputs": ["L2"]},
        ],
    ),
    ("color", [{"name": "color", "inputs": ["L2"], "outputs": ["C"]}]),
]


def _check(outcomes, calls):
    assert [o["status"] for o in outcomes["stack"]] == ["done", "failed"]
    assert outcomes["continuum"][0] is None  # its stack failed: left out, not run
    assert outcomes["continuum"][1]["status"] == "done"  # needs only Ha (and a file that is no product)
    assert outcomes["color"][0]["status"] == "done"
    assert "line-needs-bad" not in calls
    assert calls.index("line") > calls.index("stack-Ha") and calls.index("color") > calls.index("line")


def test_local_in_turn(monkeypatch):
    calls = []
    _fake_products(monkeypatch, calls)
    outcomes, ends = _later._run_local(None, STAGES, lambda *args: None)
    _check(outcomes, calls)
    assert ends["continuum"][1] >= ends["stack"][0]
