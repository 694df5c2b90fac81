"""Server interceptors: refuse calls while draining, bearer-token auth, and RPC metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import time
from typing import Awaitable, Callable

import grpc
import structlog

from driftd.server.domain.errors import DriftdError, Unauthenticated, Unavailable
from driftd.server.logs import get_logger
from driftd.server.transport.errors import abort
from driftd.server.transport.lifecycle import DRAINING_MESSAGE, Lifecycle

log = get_logger("driftd.access")

# Load balancers probe health without credentials; reflection only describes the public contract.
UNAUTHENTICATED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _refusing_handler(handler: grpc.RpcMethodHandler, exc: DriftdError) -> grpc.RpcMethodHandler:
    async def unary(request_or_iterator, context):
        await abort(context, exc)

    async def streaming(request_or_iterator, context):
        await abort(context, exc)
        yield  # pragma: no cover - makes this an async generator; abort raises first

    kwargs = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary, **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming, **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary, **kwargs)
    return grpc.stream_stream_rpc_method_handler(streaming, **kwargs)


class GuardInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, lifecycle: Lifecycle, tokens: list[str]) -> None:
        self._lifecycle = lifecycle
        self._tokens = [t.encode() for t in tokens]

    def _authorized(self, metadata) -> bool:
        for key, value in metadata or ():
            if key == "authorization":
                raw = value.encode() if isinstance(value, str) else value
                if raw.lower().startswith(b"bearer "):
                    presented = raw[7:].strip()
                    return any(hmac.compare_digest(presented, t) for t in self._tokens)
        return False

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        if self._lifecycle.is_draining and not method.startswith("/grpc.health.v1.Health/"):
            return _refusing_handler(handler, Unavailable(DRAINING_MESSAGE, reason="DRAINING"))
        if self._tokens and not method.startswith(UNAUTHENTICATED_PREFIXES) and not self._authorized(details.invocation_metadata):
            log.warning("unauthenticated", method=method)
            return _refusing_handler(handler, Unauthenticated("missing or invalid bearer token (metadata 'authorization: Bearer <token>')",
                                                               reason="BAD_TOKEN"))
        return handler


_CODE_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}


def _code_name(context) -> str:
    code = context.code()  # None until a handler sets or aborts with a code
    if code is None:
        return "OK"
    if isinstance(code, grpc.StatusCode):
        return code.name
    return _CODE_NAMES.get(int(code), str(code))


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts every finished RPC by method and status code, and times unary-unary ones (a stream's
    duration is its lifetime, not a latency). Binds `method` and `peer` into the structlog context,
    so every log line an RPC causes says who and what."""

    def __init__(self, metrics) -> None:
        self._metrics = metrics

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        requests, seconds = self._metrics.rpc_requests, self._metrics.rpc_seconds
        kwargs = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)

        def finish(context, started: float | None, outcome: str | None) -> None:
            # outcome: None = ended normally (the context's code, OK if unset), "cancelled", "error"
            if outcome == "cancelled":
                remaining = context.time_remaining()
                code = "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
            else:
                code = _code_name(context)
                if outcome == "error" and code == "OK":  # raised without a status: grpc answers UNKNOWN
                    code = "UNKNOWN"
            requests.labels(method, code).inc()
            if started is not None:
                seconds.labels(method).observe(time.perf_counter() - started)

        def outcome_of(exc: BaseException) -> str:
            return "cancelled" if isinstance(exc, (asyncio.CancelledError, GeneratorExit)) else "error"

        def unary(behavior, timed: bool):
            async def call(request_or_iterator, context):
                started, outcome = (time.perf_counter() if timed else None), None
                try:
                    with structlog.contextvars.bound_contextvars(method=method, peer=context.peer()):
                        return await behavior(request_or_iterator, context)
                except BaseException as exc:
                    outcome = outcome_of(exc)
                    raise
                finally:
                    finish(context, started, outcome)
            return call

        def streaming(behavior):
            if not inspect.isasyncgenfunction(behavior):  # e.g. reflection: writes with context.write()
                return unary(behavior, timed=False)

            async def call(request_or_iterator, context):
                outcome = None
                try:
                    with structlog.contextvars.bound_contextvars(method=method, peer=context.peer()):
                        async with contextlib.aclosing(behavior(request_or_iterator, context)) as responses:
                            async for response in responses:
                                yield response
                except BaseException as exc:
                    outcome = outcome_of(exc)
                    raise
                finally:
                    finish(context, None, outcome)
            return call

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary, timed=True), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary, timed=False), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **kwargs)
        return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **kwargs)
