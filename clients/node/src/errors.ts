/**
 * Rich gRPC errors: every failure the client reports is a `DriftdError` carrying the gRPC status
 * code and the server's `google.rpc.Status` details (ErrorInfo reason, BadRequest field violations,
 * RetryInfo delay), decoded from the `grpc-status-details-bin` trailer or from a `BatchAck.status`.
 */
import { Metadata, status as GrpcStatus } from "@grpc/grpc-js";
import type { ServiceError } from "@grpc/grpc-js";
import { BadRequest, ErrorInfo, RetryInfo } from "./gen/google/rpc/error_details";
import { Status } from "./gen/google/rpc/status";

export { GrpcStatus as Code };

export interface FieldViolation {
  field: string;
  description: string;
}

const TYPE_PREFIX = "type.googleapis.com/";

export class DriftdError extends Error {
  /** gRPC status code (`Code.INVALID_ARGUMENT`, ...). */
  readonly code: GrpcStatus;
  /** ErrorInfo.reason (e.g. `UNKNOWN_FEATURE`, `NOT_FOUND`, `QUEUE_FULL`), or "" when the server sent none. */
  readonly reason: string;
  /** ErrorInfo.metadata. */
  readonly errorMetadata: Record<string, string>;
  /** BadRequest field violations (INVALID_ARGUMENT). */
  readonly fieldViolations: FieldViolation[];
  /** RetryInfo.retry_delay in milliseconds, when the server asked for one. */
  readonly retryDelayMs: number | undefined;

  constructor(code: GrpcStatus, message: string, opts: { reason?: string; errorMetadata?: Record<string, string>;
    fieldViolations?: FieldViolation[]; retryDelayMs?: number; cause?: unknown } = {}) {
    super(`${GrpcStatus[code] ?? code}: ${message}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "DriftdError";
    this.code = code;
    this.reason = opts.reason ?? "";
    this.errorMetadata = opts.errorMetadata ?? {};
    this.fieldViolations = opts.fieldViolations ?? [];
    this.retryDelayMs = opts.retryDelayMs;
  }

  /** Name of the status code, e.g. "INVALID_ARGUMENT". */
  get codeName(): string {
    return GrpcStatus[this.code] ?? String(this.code);
  }

  /** From a google.rpc.Status message (BatchAck.status, or the decoded trailer). */
  static fromStatus(status: Status, cause?: unknown): DriftdError {
    let reason = "";
    let errorMetadata: Record<string, string> = {};
    let fieldViolations: FieldViolation[] = [];
    let retryDelayMs: number | undefined;
    for (const detail of status.details) {
      const type = detail.typeUrl.startsWith(TYPE_PREFIX) ? detail.typeUrl.slice(TYPE_PREFIX.length) : detail.typeUrl;
      if (type === "google.rpc.ErrorInfo") {
        const info = ErrorInfo.decode(detail.value);
        reason = info.reason;
        errorMetadata = info.metadata;
      } else if (type === "google.rpc.BadRequest") {
        fieldViolations = BadRequest.decode(detail.value).fieldViolations.map((v) => ({ field: v.field, description: v.description }));
      } else if (type === "google.rpc.RetryInfo") {
        const d = RetryInfo.decode(detail.value).retryDelay;
        if (d) retryDelayMs = d.seconds * 1000 + d.nanos / 1e6;
      }
    }
    return new DriftdError(status.code as GrpcStatus, status.message, { reason, errorMetadata, fieldViolations, retryDelayMs, cause });
  }

  /** From a grpc-js error (its trailer carries the rich status, when the server sent one). */
  static fromServiceError(err: ServiceError | Error): DriftdError {
    if (err instanceof DriftdError) return err;
    const se = err as Partial<ServiceError>;
    if (typeof se.code !== "number") return new DriftdError(GrpcStatus.UNKNOWN, err.message, { cause: err });
    const raw = se.metadata instanceof Metadata ? se.metadata.get("grpc-status-details-bin") : [];
    if (raw.length > 0 && Buffer.isBuffer(raw[0])) {
      try {
        const status = Status.decode(raw[0]);
        return DriftdError.fromStatus({ ...status, code: se.code, message: status.message || (se.details ?? "") }, err);
      } catch {
        // a malformed trailer: fall back to the plain status below
      }
    }
    return new DriftdError(se.code, se.details ?? err.message, { cause: err });
  }
}

/** Wrap a promise-returning gRPC call so failures reject with DriftdError. */
export async function rich<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw DriftdError.fromServiceError(err as Error);
  }
}
