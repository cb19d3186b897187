// The one place where error codes become HTTP statuses and the JSON error
// shape {"error": {"code", "message"}} of the contract.

import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ErrorCode } from "../api/types.js";
import type { NodeError } from "../node/errors.js";

const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  bad_request: 400,
  invalid_key: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  idempotency_mismatch: 409,
  value_too_large: 413,
  no_leader: 503,
  stale_replica: 503,
  clock_skew: 503,
  overloaded: 503,
  refused: 409,
  internal: 500,
};

/** The HTTP status for an error code. */
export function statusOf(code: ErrorCode): ContentfulStatusCode {
  return STATUS[code];
}

/** The JSON body of an error response. */
export function errorBody(code: ErrorCode, message: string): { error: { code: ErrorCode; message: string } } {
  return { error: { code, message } };
}

/** Requests answered 503 overloaded: the request log leaves them to the shedder's summary. */
const overloadedAnswers = new WeakSet<Context>();

/** True when `c` was answered with the overloaded error. */
export function answeredOverloaded(c: Context): boolean {
  return overloadedAnswers.has(c);
}

/** Answers `c` with the error, its status and Retry-After where it has one. */
export function sendError(c: Context, err: NodeError): Response {
  if (err.code === "overloaded") overloadedAnswers.add(c);
  if (err.retryAfterS !== undefined) c.header("Retry-After", String(err.retryAfterS));
  return c.json(errorBody(err.code, err.message), statusOf(err.code));
}
