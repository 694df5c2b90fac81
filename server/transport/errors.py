"""The one place that maps domain errors to gRPC status codes with rich error details.

Every servicer method is wrapped by `grpc_errors`: a `DriftdError` becomes its status code plus a
`google.rpc.Status` in the `grpc-status-details-bin` trailer carrying `ErrorInfo` (always),
`BadRequest` field violations (invalid arguments) and `RetryInfo` (resource exhaustion). Anything
else becomes INTERNAL with an incident id that is also in the server log — never a traceback on the
wire.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from typing import Any, Callable

import grpc
import structlog
from grpc._cython import cygrpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from driftd.server.domain import errors as e
from driftd.server.logs import get_logger

ERROR_DOMAIN = "driftd.v1"
# grpc's own errors when a status can no longer be sent (the call ended or was cancelled meanwhile).
_CALL_ALREADY_OVER = (cygrpc.ExecuteBatchError, cygrpc.UsageError)
log = get_logger("driftd.transport")

STATUS_CODES: dict[type[e.DriftdError], grpc.StatusCode] = {
    e.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    e.NotFound: grpc.StatusCode.NOT_FOUND,
    e.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    e.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    e.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    e.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    e.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    e.Unavailable: grpc.StatusCode.UNAVAILABLE,
    e.Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
}


def status_code_of(exc: e.DriftdError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return grpc.StatusCode.INTERNAL


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_rpc_status(exc: BaseException) -> status_pb2.Status:
    """A `google.rpc.Status` for an exception (also used inside `BatchAck.status`)."""
    if not isinstance(exc, e.DriftdError):
        incident = uuid.uuid4().hex[:12]
        log.error("internal_error", incident=incident, exc_info=exc)
        info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN, metadata={"incident": incident})
        return status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error (incident {incident}; see the server log)",
                                 details=[_pack(info)])
    code = status_code_of(exc)
    details = [_pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=ERROR_DOMAIN, metadata=exc.metadata))]
    if isinstance(exc, e.InvalidArgument):
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description) for v in exc.violations
        ])))
    if isinstance(exc, e.ResourceExhausted):
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(exc.retry_after_s * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=code.value[0], message=exc.message, details=details)


OK_STATUS = status_pb2.Status(code=code_pb2.OK)


async def abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    """End the call with the mapped status. A call the client already cancelled (or that already
    ended) has no one to tell: return quietly instead of raising from inside grpc."""
    if context.cancelled() or context.done():
        return
    rpc = to_rpc_status(exc)
    if isinstance(exc, e.DriftdError):  # internal errors were logged with their traceback above
        level = log.warning if isinstance(exc, (e.Unavailable, e.ResourceExhausted)) else log.info
        level("rpc_failed", code=status_code_of(exc).name,
              reason=exc.reason, message=exc.message)
    status = rpc_status.to_status(rpc)
    try:
        await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)
    except _CALL_ALREADY_OVER:
        return  # the peer went away between the check and the send


def _monitor_of(request) -> dict[str, str]:
    """`monitor=<id>` for the log context, from whichever field of the request names it."""
    for field in ("monitor", "name", "parent"):
        value = getattr(request, field, None)
        if isinstance(value, str) and value.startswith("monitors/"):
            return {"monitor": value.split("/")[1]}
    return {}


def grpc_errors(method: Callable) -> Callable:
    """Wrap a unary or streaming servicer method so domain errors become rich gRPC statuses."""
    if inspect.isasyncgenfunction(method):
        @functools.wraps(method)
        async def stream_wrapper(self, request, context):
            with structlog.contextvars.bound_contextvars(**_monitor_of(request)):
                try:
                    async for item in method(self, request, context):
                        yield item
                except (grpc.aio.AbortError, GeneratorExit):
                    raise
                except _CALL_ALREADY_OVER:
                    return  # sending failed because the call is over: nothing left to report
                except BaseException as exc:  # noqa: BLE001 - mapped to a status, never leaked
                    if _is_cancellation(exc):
                        raise
                    await abort(context, exc)
        return stream_wrapper

    @functools.wraps(method)
    async def unary_wrapper(self, request, context):
        with structlog.contextvars.bound_contextvars(**_monitor_of(request)):
            try:
                return await method(self, request, context)
            except grpc.aio.AbortError:
                raise
            except BaseException as exc:  # noqa: BLE001
                if _is_cancellation(exc):
                    raise
                await abort(context, exc)
    return unary_wrapper


def _is_cancellation(exc: BaseException) -> bool:
    import asyncio

    return isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit))
