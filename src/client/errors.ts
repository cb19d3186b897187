// The SDK's one error type. Every failure a caller can meet (a refusal from a
// node, a malformed answer, or a call that ran out of nodes or time) is a
// GeokvError with a code from the HTTP contract, or "unavailable" when no
// node gave a usable answer before the deadline, so callers switch on `code`
// instead of parsing messages.

import { ERROR_CODES, type ErrorCode } from "../api/types.js";

/** The contract's error codes, plus "unavailable": retries exhausted, nodes unreachable, or the client closed. */
export type GeokvErrorCode = ErrorCode | "unavailable";

// Every code of the contract: a body naming one is the node's own error (this list once lacked "refused", so a refusal read as idempotency_mismatch).
const CONTRACT_CODES: ReadonlySet<string> = new Set<ErrorCode>(ERROR_CODES);

/** Codes for statuses whose body is not our error shape (a proxy answered, or a route is missing). */
const CODE_BY_STATUS: Readonly<Record<number, ErrorCode>> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  409: "idempotency_mismatch",
  413: "value_too_large",
  503: "no_leader",
};

export interface GeokvErrorInit {
  readonly code: GeokvErrorCode;
  readonly message: string;
  /** HTTP status of the answer; null when no node answered (network error, timeout). */
  readonly status: number | null;
  /** The node id from X-Geokv-Node, else the base URL that was tried, else null. */
  readonly node: string | null;
  /** For "unavailable": the last retryable failure, so its code and node stay visible. */
  readonly cause?: GeokvError | undefined;
}

/** A failed SDK call. */
export class GeokvError extends Error {
  readonly code: GeokvErrorCode;
  readonly status: number | null;
  readonly node: string | null;
  override readonly cause: GeokvError | undefined;

  constructor(init: GeokvErrorInit) {
    super(init.message);
    this.name = "GeokvError";
    this.code = init.code;
    this.status = init.status;
    this.node = init.node;
    this.cause = init.cause;
  }
}

/** True when `x` is a GeokvError (also across copies of this module). */
export function isGeokvError(x: unknown): x is GeokvError {
  return x instanceof GeokvError || (x instanceof Error && x.name === "GeokvError" && typeof (x as GeokvError).code === "string");
}

/** The code and message of a body in the contract's error shape; undefined parts when it is not. */
export function contractError(bodyText: string): { code?: ErrorCode; message?: string } {
  try {
    const e = (JSON.parse(bodyText) as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = typeof e?.code === "string" && CONTRACT_CODES.has(e.code) ? (e.code as ErrorCode) : undefined;
    const message = typeof e?.message === "string" ? e.message : undefined;
    return { ...(code ? { code } : {}), ...(message !== undefined ? { message } : {}) };
  } catch {
    // Not JSON: something between us and the node answered.
    return {};
  }
}

/**
 * The error an HTTP error answer describes: the contract's JSON shape when the
 * body has it, else a code picked from the status with the body as message.
 */
export function errorFromAnswer(status: number, bodyText: string, node: string | null): GeokvError {
  const { code, message } = contractError(bodyText);
  const fallbackCode: ErrorCode = CODE_BY_STATUS[status] ?? (status >= 500 ? "internal" : "bad_request");
  // Bounded so a proxy's HTML page does not become a 100 KB message.
  const text = message ?? (bodyText.trim().slice(0, 300) || `HTTP ${status}`);
  return new GeokvError({ code: code ?? fallbackCode, message: text, status, node });
}
