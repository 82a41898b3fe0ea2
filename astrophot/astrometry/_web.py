# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The astrometry.net web service (nova.astrometry.net) through astroquery.

The API key comes from astroquery's own configuration (``api_key`` in the
``[astrometry_net]`` section of ``astroquery.cfg``) or the ``api_key``
argument; it is never logged and never written to provenance. The star list
is submitted once, then the submission is polled with a growing interval
until the job succeeds, fails, or the total time limit passes; a timeout
never resubmits.
"""

import io
import json
import logging
import sys
import time

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import QTable, Table
from astropy.wcs import WCS

from astrophot._warnings import quiet
from astrophot.astrometry._result import BackendUnavailable, Candidate
from astrophot.exceptions import AstrometryError

__all__ = ["solve_with_web"]

log = logging.getLogger(__name__)

_KEY_HINT = (
    "set api_key in the [astrometry_net] section of astroquery.cfg (in astropy's config directory, "
    "astropy.config.get_config_dir(): ~/.astropy/config or, from astropy 8, ~/.config/astropy) or pass api_key="
)
#: Seconds between polls: starts at the first value and grows to the last.
POLL_INTERVALS = (1.0, 2.0, 4.0, 8.0, 15.0)

# indirections so that tests can run the polling loop on a fake clock
_sleep = time.sleep
_clock = time.monotonic


def _configured_key():
    """
    astroquery's configured API key, read without importing astroquery.

    Importing ``astroquery.astrometry_net`` takes seconds (tens on a loaded
    machine), too much to spend only to learn that no key is set. When the
    module is already loaded its ``conf`` is the answer (it honours
    ``conf.set_temp``); otherwise astropy's configuration is asked for the same item
    astroquery's ``ConfigItem`` reads: ``api_key`` in the ``[astrometry_net]``
    section of ``astroquery.cfg`` in astropy's configuration directory.
    """
    module = sys.modules.get("astroquery.astrometry_net")
    if module is not None:
        return module.conf.api_key
    from astropy.config import get_config

    # the very lookup astroquery's ConfigItem makes (its rootname is astropy's)
    return str(get_config("astroquery.astrometry_net").get("api_key", "") or "")


def _client():
    try:
        from astroquery.astrometry_net import AstrometryNetClass, conf
    except Exception as exc:
        raise BackendUnavailable(f"astroquery.astrometry_net cannot be imported ({exc})") from exc
    return AstrometryNetClass(), conf


class _Service:
    """The few JSON calls astrophot makes, over astroquery's HTTP session."""

    def __init__(self, client, server):
        self.client = client
        self.server = server.rstrip("/")

    def _call(self, method, path, *, api=True, data=None):
        url = f"{self.server}/api/{path}" if api else f"{self.server}/{path}"
        try:
            response = self.client._request(method, url, data=data, cache=False)
        except Exception as exc:
            raise AstrometryError(
                f"cannot reach {self.server} ({type(exc).__name__}: {exc}); are you offline?"
            ) from exc
        status = getattr(response, "status_code", 200)
        if status != 200:
            raise AstrometryError(f"{self.server} answered HTTP {status} to {path.split('/')[0]}")
        return response

    def json(self, method, path, payload=None):
        data = None if payload is None else {"request-json": json.dumps(payload)}
        response = self._call(method, path, data=data)
        try:
            return response.json()
        except ValueError as exc:
            raise AstrometryError(
                f"{self.server} sent a reply that is not JSON to {path.split('/')[0]}"
            ) from exc


def solve_with_web(stars, hint, *, time_limit=120.0, api_key=None, server=None, sip_order=None):
    """
    Solve a star list with the astrometry.net web service.

    Parameters
    ----------
    stars : `~astrophot.astrometry._result.StarList`
    hint : `~astrophot.astrometry._hints.SolveHint`
    time_limit : float, optional
        Total seconds for login, submission, polling and downloads.
    api_key : str, optional
        Overrides astroquery's configured key.
    server : str, optional
        Overrides astroquery's configured server.
    sip_order : int, optional
        ``tweak_order`` (default 2 with 30 or more stars, else 0).

    Returns
    -------
    list of Candidate

    Raises
    ------
    BackendUnavailable
        No API key is configured.
    astrophot.exceptions.AstrometryError
        Offline, the service failed the job, or the time limit passed.
    """
    key = api_key or _configured_key()
    if not key:
        raise BackendUnavailable(f"no astrometry.net API key; {_KEY_HINT}")
    client, conf = _client()
    service = _Service(client, server or conf.server)
    deadline = _clock() + float(time_limit)

    login = service.json("POST", "login", {"apikey": key})
    if login.get("status") != "success":
        raise AstrometryError(
            f"{service.server} refused the API key ({login.get('errormessage', 'login failed')})"
        )
    session = login["session"]

    ny, nx = stars.shape
    sel = stars.selected
    n = len(sel)
    settings = _settings(client, hint, n, sip_order)
    # the service's source-list upload is 1-based like every FITS tool
    settings.update(
        x=[float(v) + 1.0 for v in stars.x[sel]],
        y=[float(v) + 1.0 for v in stars.y[sel]],
        image_width=int(nx),
        image_height=int(ny),
        session=session,
    )
    upload = service.json("POST", "url_upload", settings)
    if upload.get("status") != "success" or "subid" not in upload:
        raise AstrometryError(
            f"{service.server} did not accept the star list ({upload.get('errormessage', upload)})"
        )
    subid = upload["subid"]
    log.info("astrometry.net: submission %s (%d stars)", subid, n)

    job_id, polls = _poll_job(service, subid, deadline, time_limit)
    wcs = _fetch_wcs(service, job_id)
    reference = _fetch_reference(service, job_id) if _clock() < deadline else None
    details = {"server": service.server, "submission": subid, "job": job_id, "polls": polls}
    return [Candidate(wcs=wcs, reference=reference, details=details)]


def _settings(client, hint, n, sip_order):
    """The submission settings: scale and position hints, SIP order."""
    settings = {
        "publicly_visible": "n",
        "allow_commercial_use": "n",
        "allow_modifications": "n",
        "tweak_order": int(sip_order if sip_order is not None else (2 if n >= 30 else 0)),
        "crpix_center": True,
        "parity": 2,
        "positional_error": 3.0,
    }
    scale_range = hint.scale_range_arcsec()
    if scale_range is not None:
        settings.update(
            scale_units="arcsecperpix",
            scale_type="ul",
            scale_lower=float(scale_range[0]),
            scale_upper=float(scale_range[1]),
        )
    if hint.has_position:
        settings.update(
            center_ra=float(hint.center.ra.deg),
            center_dec=float(hint.center.dec.deg),
            radius=float(hint.radius.to_value(u.deg)),
        )
    client._validate_settings(settings)
    return settings


def _poll_job(service, subid, deadline, time_limit):
    """Poll a submission until its job succeeds: ``(job_id, polls)``."""
    job_id, status, polls = None, "", 0
    while True:
        interval = POLL_INTERVALS[min(polls, len(POLL_INTERVALS) - 1)]
        if _clock() + interval > deadline:
            raise AstrometryError(
                f"astrometry.net: submission {subid} not solved within the time limit ({time_limit:.0f} s, "
                f"{polls} polls, last status {status or 'queued'}); not resubmitted"
            )
        _sleep(interval)
        polls += 1
        if job_id is None:
            jobs = [j for j in service.json("GET", f"submissions/{subid}").get("jobs", []) if j is not None]
            if jobs:
                job_id = jobs[0]
        if job_id is not None:
            status = service.json("GET", f"jobs/{job_id}/info").get("status", "")
            if status == "success":
                return job_id, polls
            if status == "failure":
                raise AstrometryError(f"astrometry.net: job {job_id} failed (no solution)")


def _fetch_wcs(service, job_id):
    wcs_text = service._call("GET", f"wcs_file/{job_id}", api=False)
    try:
        with quiet():
            header = fits.Header.fromstring(wcs_text.text if hasattr(wcs_text, "text") else wcs_text.content)
            return WCS(header)
    except Exception as exc:
        raise AstrometryError(f"astrometry.net: job {job_id} returned an unreadable WCS ({exc})") from exc


def _fetch_reference(service, job_id):
    """The job's reference stars, or None (then the local catalogue verifies)."""
    try:
        rdls = service._call("GET", f"rdls_file/{job_id}", api=False)
        with fits.open(io.BytesIO(rdls.content)) as hdul:
            rd = Table(hdul[1].data)
        return QTable(
            {
                "ra": np.asarray(rd["RA"], float) * u.deg,
                "dec": np.asarray(rd["DEC"], float) * u.deg,
                "mag": np.full(len(rd), np.nan),
            }
        )
    except (AstrometryError, OSError, KeyError, IndexError, TypeError, ValueError) as exc:
        log.info(
            "astrometry.net: no reference stars for job %s (%s); verifying against the local catalogue",
            job_id,
            exc,
        )
        return None
