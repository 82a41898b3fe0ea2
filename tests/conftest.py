# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Shared fixtures: the real third-party data in ../shared/data and a network guard."""

import os
import socket
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """Path to ``../shared/data`` (real third-party files), or skip with the reason."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (../shared/data is absent in this checkout)")
    return SHARED_DATA


_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (
        host in ("localhost", "::1", "0.0.0.0") or host.startswith("127.") or host.startswith("/")
    ):
        return _real_connect(self, address)
    if self.family == getattr(socket, "AF_UNIX", None):
        return _real_connect(self, address)
    raise OSError(f"network access is disabled in the astrophot tests (tried to reach {address!r})")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """No test may reach the network: only loopback and unix sockets connect."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    yield


def pytest_report_header(config):
    have = "present" if SHARED_DATA.is_dir() else "absent (tests that need it skip)"
    return [f"astrophot shared test data: {SHARED_DATA} {have}", f"CI={os.environ.get('CI', '')}"]
