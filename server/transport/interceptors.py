"""Server interceptor: refuse calls while draining, and bearer-token auth."""

from __future__ import annotations

import hmac
from typing import Awaitable, Callable

import grpc

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
