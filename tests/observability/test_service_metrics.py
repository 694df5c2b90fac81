"""Service metrics through a real server: RPC outcomes by code (incl. deadlines), unary timing only
for unary RPCs, gzip on request, the 0.0.4 content type, and a scrape that survives a snapshot the
collector cannot read."""

from __future__ import annotations

import asyncio
import gzip
import urllib.request

import grpc
import pytest

from driftd.v1 import alarm_pb2, alarm_pb2_grpc, monitor_pb2, monitor_pb2_grpc
from support import start_served, stop_served

from .tools import exposition_samples


def get(port: int, gzip_ok: bool = False) -> tuple[dict, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"} if gzip_ok else {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return dict(resp.headers), resp.read()


@pytest.fixture
async def served(tmp_path):
    s = await start_served(tmp_path / "data", metrics_port=0)
    yield s
    await stop_served(s)


async def test_rpc_codes_deadlines_and_timing(served):
    stub = monitor_pb2_grpc.MonitorServiceStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetMonitor(monitor_pb2.GetMonitorRequest(name="monitors/nope"))
    await stub.ListMonitors(monitor_pb2.ListMonitorsRequest())
    with pytest.raises(grpc.aio.AioRpcError) as err:  # a stream that outlives its deadline
        async for _ in alarm_pb2_grpc.AlarmServiceStub(served.channel).SubscribeAlarms(alarm_pb2.SubscribeAlarmsRequest(), timeout=0.3):
            pass
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    subscribe = "/driftd.v1.AlarmService/SubscribeAlarms"
    for _ in range(50):  # the server side notices the deadline a moment later
        headers, body = await asyncio.to_thread(get, served.server.metrics_port)
        got = exposition_samples(body.decode())
        if (("driftd_rpc_requests_total", (("code", "DEADLINE_EXCEEDED"), ("method", subscribe)))) in got:
            break
        await asyncio.sleep(0.1)
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert got[("driftd_rpc_requests_total", (("code", "NOT_FOUND"), ("method", "/driftd.v1.MonitorService/GetMonitor")))] == 1
    assert got[("driftd_rpc_requests_total", (("code", "OK"), ("method", "/driftd.v1.MonitorService/ListMonitors")))] == 1
    assert got[("driftd_rpc_requests_total", (("code", "DEADLINE_EXCEEDED"), ("method", subscribe)))] == 1
    timed = {dict(labels)["method"] for name, labels in got if name == "driftd_rpc_duration_seconds_count"}
    assert timed == {"/driftd.v1.MonitorService/GetMonitor", "/driftd.v1.MonitorService/ListMonitors"}


async def test_gzip_when_asked_and_a_bad_snapshot_does_not_break_the_scrape(served):
    runtimes = served.server.runtimes

    class Broken:  # a runtime whose latest snapshot the collector cannot turn into series
        monitor_id = "broken"
        queued_batches = 0
        latest_snapshot = {"snapshot_id": 1, "numeric_features": "not a list"}

        class monitor:  # noqa: N801 - stands in for a Monitor
            monitor_id = "broken"

            class spec:  # noqa: N801
                rules = ()

    runtimes._runtimes["broken"] = Broken()
    try:
        headers, body = await asyncio.to_thread(get, served.server.metrics_port, True)
        assert headers.get("Content-Encoding") == "gzip"
        text = gzip.decompress(body).decode()
        assert "driftd_build_info" in text and "driftd_ingest_queue_depth" in text
        broken = [line for line in text.splitlines() if 'monitor="broken"' in line]
        assert broken and all(line.startswith(("driftd_alarms_firing{", "driftd_ingest_queue_depth{")) for line in broken), broken
    finally:
        del runtimes._runtimes["broken"]
