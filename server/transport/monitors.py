"""MonitorService servicer: thin — decode, call the domain/store, encode."""

from __future__ import annotations

import asyncio
import base64
import dataclasses

from google.protobuf import field_mask_pb2

from driftd.server.domain.alarms import default_rules
from driftd.server.domain.errors import InvalidArgument
from driftd.server.domain.monitor import MUTABLE_FIELDS, check_update, parse_monitor_name, validate_monitor_id
from driftd.server.store.sqlite import SqliteStore
from driftd.server.transport.codec import monitor_to_proto, spec_from_proto
from driftd.server.transport.errors import grpc_errors
from driftd.v1 import monitor_pb2, monitor_pb2_grpc

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


PAGE_TOKEN_PREFIX = "after:"


def encode_page_token(last_key: str) -> str:
    """Opaque to clients: the key of the last item of the page."""
    return base64.urlsafe_b64encode((PAGE_TOKEN_PREFIX + last_key).encode()).decode()


def decode_page_token(token: str, field: str = "page_token") -> str:
    if not token:
        return ""
    try:
        text = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith(PAGE_TOKEN_PREFIX):
        raise InvalidArgument.one(field, "not a page token returned by this service")
    return text[len(PAGE_TOKEN_PREFIX):]


def page_size(value: int, field: str = "page_size") -> int:
    if value < 0:
        raise InvalidArgument.one(field, f"must be >= 0, got {value}")
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class MonitorServicer(monitor_pb2_grpc.MonitorServiceServicer):
    def __init__(self, store: SqliteStore, on_changed=None, on_deleted=None) -> None:
        self._store = store
        self._on_changed = on_changed  # async (Monitor) -> None
        self._on_deleted = on_deleted  # async (monitor_id) -> None

    @grpc_errors
    async def CreateMonitor(self, request, context):
        validate_monitor_id(request.monitor_id, "monitor_id")
        spec = spec_from_proto(request.monitor, "monitor")
        if not spec.rules:
            spec = dataclasses.replace(spec, rules=default_rules(spec.schema))
        monitor = await asyncio.to_thread(self._store.create_monitor, request.monitor_id, spec)
        return monitor_pb2.CreateMonitorResponse(monitor=monitor_to_proto(monitor))

    @grpc_errors
    async def GetMonitor(self, request, context):
        monitor_id = parse_monitor_name(request.name, "name")
        monitor = await asyncio.to_thread(self._store.get_monitor, monitor_id)
        return monitor_pb2.GetMonitorResponse(monitor=monitor_to_proto(monitor))

    @grpc_errors
    async def ListMonitors(self, request, context):
        size = page_size(request.page_size)
        after = decode_page_token(request.page_token)
        monitors, total = await asyncio.to_thread(
            lambda: (self._store.list_monitors(after, size + 1), self._store.count_monitors())
        )
        next_token = encode_page_token(monitors[size - 1].monitor_id) if len(monitors) > size else ""
        return monitor_pb2.ListMonitorsResponse(
            monitors=[monitor_to_proto(m) for m in monitors[:size]], next_page_token=next_token, total_size=total,
        )

    @grpc_errors
    async def UpdateMonitor(self, request, context):
        monitor_id = parse_monitor_name(request.monitor.name, "monitor.name")
        paths = list(request.update_mask.paths)
        unknown = [(i, p) for i, p in enumerate(paths) if p.split(".")[0] not in MUTABLE_FIELDS]
        if unknown:
            i, p = unknown[0]
            raise InvalidArgument.one(f"update_mask.paths[{i}]", f"{p!r} is not a mutable field; mutable: {', '.join(MUTABLE_FIELDS)}")
        current = await asyncio.to_thread(self._store.get_monitor, monitor_id)
        # Merge at the proto level so validation of the result names fields as the client sent them.
        merged = monitor_to_proto(current)
        mask = request.update_mask if paths else field_mask_pb2.FieldMask(paths=list(MUTABLE_FIELDS))
        mask.MergeMessage(request.monitor, merged, replace_message_field=True, replace_repeated_field=True)
        new_spec = spec_from_proto(merged, "monitor")
        check_update(current, new_spec)
        monitor = await asyncio.to_thread(self._store.update_monitor, monitor_id, new_spec,
                                          request.monitor.etag or current.etag)
        if self._on_changed is not None:
            await self._on_changed(monitor)
        return monitor_pb2.UpdateMonitorResponse(monitor=monitor_to_proto(monitor))

    @grpc_errors
    async def DeleteMonitor(self, request, context):
        monitor_id = parse_monitor_name(request.name, "name")
        await asyncio.to_thread(self._store.delete_monitor, monitor_id)
        if self._on_deleted is not None:
            await self._on_deleted(monitor_id)
        return monitor_pb2.DeleteMonitorResponse()
