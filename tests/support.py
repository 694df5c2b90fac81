"""Shared test helpers: a real driftd server on a loopback port, and readers of rich error details.

Imported as `from support import ...` (tests/ is on sys.path under pytest's default import mode)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.rpc import error_details_pb2, status_pb2

from driftd.server.app import DriftdServer, build_server
from driftd.server.config import Settings


@dataclass
class Served:
    server: DriftdServer
    port: int
    channel: grpc.aio.Channel
    data_dir: Path


async def start_served(data_dir: Path, **settings) -> Served:
    options = {"grpc_port": 0, "metrics_port": -1, "grace_period_s": 1.0, **settings}
    server, port = await build_server(Settings(data_dir=data_dir, **options))
    await server.start()
    return Served(server, port, grpc.aio.insecure_channel(f"127.0.0.1:{port}"), data_dir)


async def stop_served(s: Served) -> None:
    await s.channel.close()
    await s.server.drain_and_stop(0.5)


def free_port() -> int:
    """A loopback port free right now (for servers started as subprocesses, which cannot report
    the port they bound)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rich_details(err: grpc.aio.AioRpcError) -> dict:
    """Decode the google.rpc.Status trailer into {'ErrorInfo': msg, 'BadRequest': msg, 'RetryInfo': msg}."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            out = {}
            for detail in status.details:
                for cls in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
                    if detail.Is(cls.DESCRIPTOR):
                        msg = cls()
                        detail.Unpack(msg)
                        out[cls.__name__] = msg
            return out
    return {}


def violated_fields(err: grpc.aio.AioRpcError) -> list[str]:
    bad = rich_details(err).get("BadRequest")
    return [v.field for v in bad.field_violations] if bad else []
