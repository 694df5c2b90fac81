"""Shared fixture of the client tests: an in-process fake driftd (tests/client/fake_server.py)."""

import pytest

from client.fake_server import FakeServer


@pytest.fixture
def server():
    """A fake server with monitor "m" (numeric features f0..f7), stopped after the test."""
    srv = FakeServer().start()
    srv.add_monitor("m", numeric=[f"f{k}" for k in range(8)])
    yield srv
    srv.stop()
