"""Domain errors. Raised by the domain and store; mapped to gRPC status codes in exactly one place
(`driftd.server.transport.errors`). Nothing here knows about grpc."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: `field` is a dotted path into the request (``monitor.schema.numeric[2].name``)."""

    field: str
    description: str


class DriftdError(Exception):
    """Base class. `reason` is a stable UPPER_SNAKE identifier sent as `ErrorInfo.reason`."""

    reason: str = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(DriftdError):
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation] | FieldViolation, message: str | None = None):
        if isinstance(violations, FieldViolation):
            violations = [violations]
        self.violations: list[FieldViolation] = list(violations)
        if message is None:
            message = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(message)

    @classmethod
    def one(cls, field_path: str, description: str) -> "InvalidArgument":
        return cls([FieldViolation(field_path, description)])


class NotFound(DriftdError):
    reason = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_name: str):
        super().__init__(f"{resource_type} {resource_name!r} not found", metadata={"resource": resource_name})
        self.resource_type = resource_type
        self.resource_name = resource_name


class AlreadyExists(DriftdError):
    reason = "ALREADY_EXISTS"

    def __init__(self, resource_type: str, resource_name: str):
        super().__init__(f"{resource_type} {resource_name!r} already exists", metadata={"resource": resource_name})
        self.resource_type = resource_type
        self.resource_name = resource_name


class FailedPrecondition(DriftdError):
    reason = "FAILED_PRECONDITION"


class ResourceExhausted(DriftdError):
    reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after_s: float, reason: str | None = None):
        super().__init__(message, reason=reason)
        self.retry_after_s = retry_after_s


class OutOfRange(DriftdError):
    reason = "OUT_OF_RANGE"


class Unauthenticated(DriftdError):
    reason = "UNAUTHENTICATED"


class Unavailable(DriftdError):
    reason = "UNAVAILABLE"


class Unimplemented(DriftdError):
    """An RPC whose capability has not been built yet. The message names the capability; never a fake success."""

    reason = "UNIMPLEMENTED"

    def __init__(self, capability: str):
        super().__init__(f"not implemented yet: {capability}", metadata={"capability": capability})
        self.capability = capability


__all__ = [
    "AlreadyExists",
    "DriftdError",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
]
