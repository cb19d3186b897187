// Expected failures of the node, as values. The HTTP layer maps each code to a
// status in one place (src/http/errors.ts); everything below it returns these
// instead of throwing, so a bad request can never crash the node.

import type { ErrorCode } from "../api/types.js";

export type { ErrorCode };

/** An expected failure with a human-readable message. */
export interface NodeError {
  readonly type: "node_error";
  readonly code: ErrorCode;
  readonly message: string;
  /** Seconds a client should wait before retrying (no_leader, stale_replica, clock_skew, overloaded). */
  readonly retryAfterS?: number;
}

/** Builds a NodeError. */
export function nodeError(code: ErrorCode, message: string, retryAfterS?: number): NodeError {
  return retryAfterS === undefined ? { type: "node_error", code, message } : { type: "node_error", code, message, retryAfterS };
}

/** True when `x` is a NodeError. */
export function isNodeError(x: unknown): x is NodeError {
  return typeof x === "object" && x !== null && (x as NodeError).type === "node_error";
}
