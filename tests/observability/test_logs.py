"""Structured JSON logs: a failed RPC logs one JSON line with the method, the peer, the monitor and
the mapped code; the configured level filters."""

from __future__ import annotations

import io
import json

import grpc
import pytest
import structlog

from driftd.server.logs import configure_logging, get_logger
from driftd.v1 import monitor_pb2, monitor_pb2_grpc
from support import start_served, stop_served


@pytest.fixture
def json_logs():
    buffer = io.StringIO()
    configure_logging("info", "json", stream=buffer)
    yield buffer
    structlog.reset_defaults()


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


async def test_failed_rpc_logs_method_peer_monitor_and_code(tmp_path, json_logs):
    served = await start_served(tmp_path / "data")
    try:
        stub = monitor_pb2_grpc.MonitorServiceStub(served.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetMonitor(monitor_pb2.GetMonitorRequest(name="monitors/nope"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await stop_served(served)
    records = lines(json_logs)
    failed = [r for r in records if r["event"] == "rpc_failed"]
    assert len(failed) == 1, records
    record = failed[0]
    assert record["code"] == "NOT_FOUND" and record["monitor"] == "nope"
    assert record["method"] == "/driftd.v1.MonitorService/GetMonitor"
    assert record["peer"].startswith(("ipv4:127.0.0.1:", "ipv6:"))
    assert record["level"] == "info" and "timestamp" in record
    assert any(r["event"] == "serving" for r in records)


def test_level_filters(json_logs):
    configure_logging("warning", "json", stream=json_logs)
    log = get_logger("driftd.test")
    log.info("hidden")
    log.warning("shown", monitor="m")
    events = [r["event"] for r in lines(json_logs)]
    assert events == ["shown"]
