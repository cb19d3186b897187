// First-answer idempotency, as pure decisions. A write with an
// Idempotency-Key carries the key in its op; every replica that applies the
// op records the answer, and the first answer recorded for a key is the one
// every retry gets, wherever it lands. A retry of a different request under
// the same key is a mismatch, never a second write.

import { idemProblem, type Op, type OpIdem } from "../op.js";
import { parseToken } from "./token.js";
import type { IdempotencyRecord } from "./types.js";

/**
 * How long an Idempotency-Key is remembered: records are pruned after it, and
 * a counter's copies of a keyed write are folded after it
 * (crdt/counter-copies.ts). A client retrying later than this is not a retry.
 */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/** What to do with a client write that carries an Idempotency-Key. */
export type IdempotentStart =
  /** The key or hash cannot travel in an op: bad input. */
  | { readonly kind: "refuse"; readonly reason: string }
  /** A write with this key is under way on this node: wait for its answer. */
  | { readonly kind: "await_first" }
  /** The key was answered before: replay that answer (see replayOf). */
  | { readonly kind: "replay"; readonly record: IdempotencyRecord }
  /** Nobody answered this key yet: this write is the first. */
  | { readonly kind: "first" };

/** Decides how a write under `idem` starts, given what this node knows of the key. */
export function startIdempotent(idem: OpIdem, inFlight: boolean, record: IdempotencyRecord | undefined): IdempotentStart {
  // The key travels in the op to every replica, so it must fit the codec's bounds.
  const problem = idemProblem(idem);
  if (problem !== null) return { kind: "refuse", reason: problem };
  if (inFlight) return { kind: "await_first" };
  if (record !== undefined) return { kind: "replay", record };
  return { kind: "first" };
}

/** A replayed answer: the recorded body and its causal token. */
export interface Replay {
  readonly body: Record<string, unknown>;
  readonly token: string;
  /** The dot of the write that answered, when its token names one. */
  readonly dot: { readonly origin: string; readonly seq: number } | null;
}

/** The key was used for a different request. */
export interface IdempotencyMismatch {
  readonly type: "idempotency_mismatch";
}

/** The recorded answer for a retry with `requestHash`, or a mismatch when the request differs. */
export function replayOf(record: IdempotencyRecord, requestHash: string): Replay | IdempotencyMismatch {
  if (record.requestHash !== requestHash) return { type: "idempotency_mismatch" };
  const body = JSON.parse(record.body) as Record<string, unknown>;
  const token = String(body.token);
  return { body, token, dot: parseToken(token) };
}

/** True when `x` is an IdempotencyMismatch. */
export function isIdempotencyMismatch(x: unknown): x is IdempotencyMismatch {
  return typeof x === "object" && x !== null && (x as IdempotencyMismatch).type === "idempotency_mismatch";
}

/**
 * The record a replica keeps for an applied op that carries an
 * Idempotency-Key, or undefined when it carries none or the key already has
 * an answer (`known`): the first answer for a key is the one every retry gets.
 */
export function firstAnswerRecord(op: Op, answer: Record<string, unknown>, known: boolean): IdempotencyRecord | undefined {
  if (op.idem === undefined || known) return undefined;
  return {
    key: op.idem.key,
    requestHash: op.idem.requestHash,
    status: 200,
    body: JSON.stringify(answer),
    // The origin's clock when it took the write: every replica then prunes
    // the record at about the same time, however late the op reached it.
    createdAtMs: op.hlc.wallMs,
  };
}
