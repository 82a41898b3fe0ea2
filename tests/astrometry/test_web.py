# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The astrometry.net web backend with its HTTP layer replaced by recorded answers.

The WCS answer and the star list are the ones astroquery records in its own
tests (``astroquery/astrometry_net/tests/data``: a 1000-star source list and
the TAN-SIP solution nova.astrometry.net returned for it). The JSON
exchanges (login, upload, submission and job status) follow the
nova.astrometry.net API documentation; this machine has no network to
record them live. The solution is then verified against real Tycho-2 stars
of that field.
"""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable, Table

import astrophot.astrometry._web as web
from astrophot.astrometry import solve_astrometry
from astrophot.astrometry._hints import SolveHint
from astrophot.astrometry._result import BackendUnavailable, StarList
from astrophot.exceptions import AstrometryError
from astrophot.frames import CalibratedFrame

from ._fields import TEST_CATALOG

SECRET = "s3cr3t-api-key-for-tests"


def _astroquery_data():
    import astroquery.astrometry_net

    path = Path(astroquery.astrometry_net.__file__).parent / "tests" / "data"
    if not (path / "test-source-list.fit").is_file():
        pytest.skip(f"astroquery's recorded astrometry.net test data is not installed ({path})")
    return path


class _Response:
    def __init__(self, *, payload=None, text=None, content=None, status_code=200):
        self._payload = payload
        self.text = text if text is not None else (json.dumps(payload) if payload is not None else "")
        self.content = content if content is not None else self.text.encode()
        self.status_code = status_code

    def json(self):
        if self._payload is None:
            raise ValueError("not JSON")
        return self._payload


class _Nova:
    """A stand-in for nova.astrometry.net at the HTTP layer (astroquery's ``_request``)."""

    def __init__(self, wcs_text, *, statuses=("solving", "success"), jobs_after=1):
        self.wcs_text = wcs_text
        self.statuses = list(statuses)
        self.jobs_after = jobs_after
        self.calls = []
        self.uploads = []

    def __call__(self, method, url, data=None, cache=False, **kwargs):
        path = url.split("nova.astrometry.net/", 1)[1]
        self.calls.append((method, path))
        if path == "api/login":
            request = json.loads(data["request-json"])
            if request["apikey"] != SECRET:
                return _Response(payload={"status": "error", "errormessage": "bad apikey"})
            return _Response(
                payload={"status": "success", "message": "authenticated user: test", "session": "4f2a"}
            )
        if path == "api/url_upload":
            request = json.loads(data["request-json"])
            self.uploads.append(request)
            return _Response(payload={"status": "success", "subid": 9265337, "hash": "0" * 40})
        if path == "api/submissions/9265337":
            seen = sum(1 for c in self.calls if c[1] == path)
            jobs = [11021570] if seen > self.jobs_after else []
            return _Response(
                payload={"processing_started": "2023-06-13 14:57:20", "jobs": jobs, "job_calibrations": []}
            )
        if path == "api/jobs/11021570/info":
            status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            return _Response(
                payload={"status": status, "tags": [], "machine_tags": [], "objects_in_field": []}
            )
        if path == "wcs_file/11021570":
            return _Response(text=self.wcs_text)
        if path == "rdls_file/11021570":
            return _Response(text="not found", status_code=404)
        raise AssertionError(f"unexpected request {method} {url}")


@pytest.fixture
def recorded(monkeypatch):
    data = _astroquery_data()
    header = fits.getheader(data / "wcs-sol-from-source-list-index-5200.fit")
    nova = _Nova(header.tostring())
    from astroquery.astrometry_net import AstrometryNetClass

    monkeypatch.setattr(AstrometryNetClass, "_request", lambda self, *a, **k: nova(*a, **k))
    clock = {"t": 0.0, "sleeps": []}

    def sleep(seconds):
        clock["sleeps"].append(seconds)
        clock["t"] += seconds

    monkeypatch.setattr(web, "_sleep", sleep)
    monkeypatch.setattr(web, "_clock", lambda: clock["t"])
    sources = Table.read(data / "test-source-list.fit")
    # the recorded list is in FITS (1-based) pixels, as it was uploaded
    stars = QTable({"x": np.asarray(sources["X"]) - 1.0, "y": np.asarray(sources["Y"]) - 1.0,
                    "flux": np.asarray(sources["FLUX"])})  # fmt: skip
    frame = CalibratedFrame(np.zeros((header["IMAGEH"], header["IMAGEW"]), dtype=np.float32))
    return nova, clock, frame, stars


def test_recorded_solution_verifies_against_tycho2(recorded, caplog):
    nova, clock, frame, stars = recorded
    with caplog.at_level(logging.DEBUG):
        solved = solve_astrometry(
            frame, stars=stars, backend="web", api_key=SECRET, catalog=TEST_CATALOG, time_limit=120
        )
    solution = solved.solution
    assert solution["backend"] == "web"
    assert solution["details"]["submission"] == 9265337
    assert solution["details"]["job"] == 11021570
    # recorded field: 135.6186 +49.7860, 0.5552"/px (from the CD matrix)
    assert solution["center"] == pytest.approx([135.6186, 49.7860], abs=2e-3)
    assert solution["pixel_scale"] == pytest.approx(0.5627, rel=2e-3)
    assert solution["n_matched"] >= 6
    assert solution["rms_arcsec"] < 1.0
    # one upload, 1-based positions, nothing public, then polls with a growing interval
    assert len(nova.uploads) == 1
    upload = nova.uploads[0]
    assert upload["x"][0] == pytest.approx(float(stars["x"][np.argmax(stars["flux"])]) + 1.0)
    assert upload["publicly_visible"] == "n"
    assert upload["image_width"] == 4109 and upload["image_height"] == 4096
    assert clock["sleeps"] == sorted(clock["sleeps"])
    # the key is never logged, recorded or returned
    assert SECRET not in caplog.text
    assert SECRET not in json.dumps(solution, default=str)
    step = solved.provenance.steps[-1]
    assert SECRET not in json.dumps(step.parameters, default=str) + json.dumps(step.outcome, default=str)


def test_time_limit_stops_polling_without_resubmitting(recorded):
    nova, clock, frame, stars = recorded
    nova.statuses = ["solving"]
    with pytest.raises(AstrometryError, match="not solved within the time limit") as info:
        solve_astrometry(
            frame, stars=stars, backend="web", api_key=SECRET, catalog=TEST_CATALOG, time_limit=60
        )
    assert "not resubmitted" in str(info.value)
    assert len(nova.uploads) == 1
    assert clock["t"] <= 60
    assert max(clock["sleeps"]) == web.POLL_INTERVALS[-1]
    assert clock["sleeps"][:3] == list(web.POLL_INTERVALS[:3])


def test_failed_job_and_refused_key(recorded):
    nova, clock, frame, stars = recorded
    nova.statuses = ["solving", "failure"]
    with pytest.raises(AstrometryError, match="job 11021570 failed"):
        solve_astrometry(frame, stars=stars, backend="web", api_key=SECRET, catalog=TEST_CATALOG)
    with pytest.raises(AstrometryError, match="refused the API key"):
        solve_astrometry(frame, stars=stars, backend="web", api_key="wrong", catalog=TEST_CATALOG)


def test_offline_is_a_clear_error():
    # the test suite's network guard stands for a machine without network
    stars = StarList(
        x=np.arange(10.0), y=np.arange(10.0), flux=np.ones(10), selected=np.arange(10), shape=(50, 50)
    )
    with pytest.raises(AstrometryError, match="are you offline"):
        web.solve_with_web(stars, SolveHint(), api_key=SECRET, time_limit=10)


def test_no_api_key(monkeypatch):
    from astroquery.astrometry_net import conf

    monkeypatch.setattr(conf, "api_key", "")
    stars = StarList(
        x=np.arange(10.0), y=np.arange(10.0), flux=np.ones(10), selected=np.arange(10), shape=(50, 50)
    )
    with pytest.raises(BackendUnavailable, match="astroquery.cfg"):
        web.solve_with_web(stars, SolveHint(), time_limit=10)


def test_gaia_offline_is_a_clear_error():
    from astropy.coordinates import SkyCoord

    from astrophot.astrometry._catalog import reference_stars

    with pytest.raises(AstrometryError, match="are you offline"):
        reference_stars("gaia", SkyCoord(10.0, 41.0, unit="deg"), 0.5)


_NO_IMPORT_PROBE = """
import sys
import astrophot.astrometry._web as web
from astrophot.astrometry._hints import SolveHint
from astrophot.astrometry._result import BackendUnavailable
key = web._configured_key()
print("key:", repr(key))
if not key:  # with a key the service would be called: only the key lookup is probed then
    try:
        web.solve_with_web(None, SolveHint(), time_limit=10)
    except BackendUnavailable as exc:
        print("unavailable:", exc)
print("astroquery imported:", "astroquery.astrometry_net" in sys.modules)
from astroquery.astrometry_net import conf
print("astroquery's own key:", repr(conf.api_key))
"""


def _probe(home):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "ASTROPY_"))}
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / "config")
    done = subprocess.run(
        [sys.executable, "-c", _NO_IMPORT_PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_no_api_key_is_known_without_importing_astroquery(tmp_path):
    # importing astroquery.astrometry_net only to learn there is no key took 14 s at load 16
    out = _probe(tmp_path)
    assert "unavailable: no astrometry.net API key" in out
    assert "key: ''" in out
    assert "astroquery imported: False" in out
    assert "astroquery's own key: ''" in out


def test_configured_key_is_read_from_astroquery_cfg(tmp_path):
    # the key astroquery itself reads from its config file (the peer's answer) is the one found
    config = tmp_path / "config" / "astropy"
    config.mkdir(parents=True)
    (tmp_path / ".astropy" / "config").mkdir(parents=True)  # astropy < 8 reads here
    (tmp_path / ".astropy" / "config" / "astroquery.cfg").write_text(
        "[astrometry_net]\napi_key = abc123key\n"
    )
    (config / "astroquery.cfg").write_text("[astrometry_net]\napi_key = abc123key\n")
    out = _probe(tmp_path)
    assert "astroquery imported: False" in out
    assert "key: 'abc123key'" in out
    assert "astroquery's own key: 'abc123key'" in out
