"""A real driftd server on a loopback port per test."""

from __future__ import annotations

import pytest

from support import start_served, stop_served


@pytest.fixture
async def served(tmp_path):
    s = await start_served(tmp_path / "data")
    yield s
    await stop_served(s)
