"""/metrics answers on its own port with the service metrics."""

from __future__ import annotations

import urllib.request

from support import start_served, stop_served


async def test_metrics_served_on_own_port(tmp_path):
    s = await start_served(tmp_path / "data", metrics_port=0)
    try:
        assert s.server.metrics_port and s.server.metrics_port != s.port
        body = urllib.request.urlopen(f"http://127.0.0.1:{s.server.metrics_port}/metrics", timeout=5).read().decode()
        assert 'driftd_build_info{protocol="driftd.v1",version="0.1.0"} 1.0' in body
        assert "driftd_monitors 0.0" in body
    finally:
        await stop_served(s)
