// The write path: client intent -> op -> the core apply path -> group commit
// -> ack wait -> answer. Ops are built by the namespace table and applied by
// the same core function that applies remote batches (apply-driver.ts); this
// file only sequences the steps and turns refusals into NodeErrors.

import { stateAfter } from "../core/apply/apply.js";
import type { IntentOf } from "../core/apply/namespace.js";
import { answerOf, buildOp } from "../core/apply/table.js";
import { tokenOf } from "../core/apply/token.js";
import { isBuildRefusal } from "../core/apply/types.js";
import { isValidHlc, tick } from "../core/hlc.js";
import type { NodeId } from "../core/ids.js";
import type { VersionVector } from "../core/version-vector.js";
import type { Namespace, Op } from "../core/op.js";
import type { ApplyDriver } from "./apply-driver.js";
import { nodeError, type NodeError } from "./errors.js";
import type { AckGate, IdempotentWrites } from "./idempotent-writes.js";
import type { WriteAnswer, WriteMeta } from "./service.js";

/**
 * Decides whether this node may take this client write now (leadership,
 * clock skew, overload); `ackWaiting` is how many admitted writes wait for
 * replicas to confirm them (ack=region/all), counted from admission, not from
 * the moment they start waiting: writes that arrive together pass the gate
 * before the first of them is committed and waits.
 */
export type WriteGate = (meta: WriteMeta, ackWaiting: number) => NodeError | null;

/** What the write path needs. */
export interface WritePathOptions {
  readonly nodeId: NodeId;
  readonly now: () => number;
  readonly driver: ApplyDriver;
  readonly idempotent: IdempotentWrites;
  readonly ackGate: AckGate;
  readonly writeGate: WriteGate;
  /** Covers every kv tombstone this node dropped (the compactor's swept vector): the context of a write to an absent kv key. */
  readonly sweptVv: () => VersionVector;
  /** Called once per acknowledged client write (not for idempotent replays): the writes metric. */
  readonly onWriteAcked: (ns: Namespace) => void;
}

/** Client writes of every namespace. */
export class WritePath {
  /** Admitted writes with ack=region/all not yet answered. */
  private ackWaiting = 0;

  constructor(private readonly o: WritePathOptions) {}

  /** Takes the client's `intent` for `key` (once per Idempotency-Key) and answers once it is acknowledged. */
  write<N extends Namespace>(meta: WriteMeta, ns: N, key: string, intent: IntentOf<N>): Promise<WriteAnswer | NodeError> {
    return this.o.idempotent.run(meta, () => this.writeOnce(meta, ns, key, intent));
  }

  private async writeOnce<N extends Namespace>(meta: WriteMeta, ns: N, key: string, intent: IntentOf<N>): Promise<WriteAnswer | NodeError> {
    const refused = this.o.writeGate(meta, this.ackWaiting);
    if (refused) return refused;
    const waits = meta.ack !== "local";
    if (waits) this.ackWaiting++;
    try {
      return await this.admitted(meta, ns, key, intent);
    } finally {
      if (waits) this.ackWaiting--;
    }
  }

  private async admitted<N extends Namespace>(meta: WriteMeta, ns: N, key: string, intent: IntentOf<N>): Promise<WriteAnswer | NodeError> {
    const { driver, nodeId } = this.o;
    // Everything from here to the commit is synchronous, so concurrent writes
    // to one key are serialized through the driver's overlay.
    const hlc = tick(driver.hlc, this.o.now());
    if (!isValidHlc(hlc)) return nodeError("clock_skew", "this node's clock is outside the range the HLC can encode");
    const stamp = { origin: nodeId, seq: driver.seq + 1, hlc, ...(ns === "kv" ? { swept: this.o.sweptVv() } : {}) };
    const built = buildOp(ns, driver.state(ns, key), key, intent, stamp);
    if (isBuildRefusal(built)) return nodeError("bad_request", built.reason);
    // The key rides in the op, so every replica that applies it can answer a retry.
    const op: Op = meta.idempotencyKey === undefined ? built : { ...built, idem: { key: meta.idempotencyKey, requestHash: meta.requestHash } };
    const run = driver.apply([op]);
    // Our next seq is always the next of our origin; anything else is a bug
    // that must not be acknowledged as a write.
    if (run.outcome.ops.length !== 1 || run.outcome.ops[0] !== op) throw new Error(`own op ${tokenOf(op)} was not applied`);
    if (meta.idempotencyKey !== undefined && !run.outcome.idempotency.some((r) => r.key === meta.idempotencyKey)) {
      throw new Error(`own op ${tokenOf(op)} recorded no answer for its Idempotency-Key`);
    }
    const after = stateAfter(run.outcome, ns, key);
    if (after === undefined) throw new Error(`own op ${tokenOf(op)} changed no state`);
    const body = answerOf(op, after);
    await run.committed;
    const acked = await this.o.ackGate(op, meta.ack);
    if (acked !== true) return acked;
    this.o.onWriteAcked(ns);
    return { body, token: tokenOf(op), replayed: false };
  }
}
