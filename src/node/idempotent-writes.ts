// Runs client writes that carry an Idempotency-Key so that retries are safe:
// the decisions (first answer wins, replay, mismatch) are the core's
// (src/core/apply/idempotency.ts); this file keeps what only the runtime has,
// the writes under way per key, so a concurrent retry waits for the first
// answer instead of writing again.

import { isIdempotencyMismatch, replayOf, startIdempotent } from "../core/apply/idempotency.js";
import type { IdempotencyRecord } from "../core/apply/types.js";
import type { NodeId } from "../core/ids.js";
import { isNodeError, nodeError, type NodeError } from "./errors.js";
import type { AckLevel, WriteAnswer, WriteMeta } from "./service.js";

/** Waits until a committed op is durable at the level the client asked for. */
export type AckGate = (dot: { readonly origin: NodeId; readonly seq: number }, level: AckLevel) => Promise<true | NodeError>;

type Answer = WriteAnswer | NodeError;

/** The writes under way per Idempotency-Key, and how a retry is answered. */
export class IdempotentWrites {
  /** Writes under way per Idempotency-Key, so a concurrent retry waits for the first answer. */
  private readonly inflight = new Map<string, Promise<Answer>>();

  constructor(
    /** The recorded answer for a key: committed, or from a batch still committing. */
    private readonly recordOf: (key: string) => IdempotencyRecord | undefined,
    private readonly ackGate: AckGate,
  ) {}

  /** True when a write with this key is under way here. */
  held(key: string): boolean {
    return this.inflight.has(key);
  }

  /** True when this node holds the answer for a key (committed, committing or in flight). */
  knows(key: string): boolean {
    return this.inflight.has(key) || this.recordOf(key) !== undefined;
  }

  /** Runs `write` unless `meta`'s Idempotency-Key was answered or is being answered already. */
  run(meta: WriteMeta, write: () => Promise<Answer>): Promise<Answer> {
    const key = meta.idempotencyKey;
    if (key === undefined) return write();
    const start = startIdempotent({ key, requestHash: meta.requestHash }, this.inflight.has(key), this.recordOf(key));
    switch (start.kind) {
      case "refuse":
        return Promise.resolve(nodeError("bad_request", start.reason));
      case "await_first":
        return (this.inflight.get(key) as Promise<Answer>).then((first) => this.afterFirst(key, meta, first));
      case "replay":
        return this.replayAcked(start.record, meta);
      case "first": {
        const p = write().finally(() => this.inflight.delete(key));
        this.inflight.set(key, p);
        return p;
      }
      default:
        return assertNever(start);
    }
  }

  /**
   * A retry of a recorded write: the first answer, but only once the write is
   * durable at the level this retry asks for. The record is stored with the
   * op, before the acknowledgement; if the first attempt timed out waiting for
   * its region, replaying success at once would acknowledge a write that no
   * majority confirmed.
   */
  private async replayAcked(rec: IdempotencyRecord, meta: WriteMeta): Promise<Answer> {
    const r = replayOf(rec, meta.requestHash);
    if (isIdempotencyMismatch(r)) return mismatch();
    const answer: WriteAnswer = { body: r.body, token: r.token, replayed: true };
    if (r.dot === null) return answer;
    const acked = await this.ackGate({ origin: r.dot.origin as NodeId, seq: r.dot.seq }, meta.ack);
    return acked === true ? answer : acked;
  }

  /** A concurrent duplicate of an in-flight write: same answer, or a mismatch. */
  private afterFirst(key: string, meta: WriteMeta, first: Answer): Answer {
    const stored = this.recordOf(key);
    if (stored === undefined) {
      // The first attempt failed before it was recorded; the retry may try again.
      return isNodeError(first) ? first : nodeError("internal", "idempotent write finished without a record");
    }
    const r = replayOf(stored, meta.requestHash);
    return isIdempotencyMismatch(r) ? mismatch() : { body: r.body, token: r.token, replayed: true };
  }
}

function mismatch(): NodeError {
  return nodeError("idempotency_mismatch", "this Idempotency-Key was already used for a different request");
}

function assertNever(x: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(x)}`);
}
