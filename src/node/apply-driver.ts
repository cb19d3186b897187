// Performs what the core apply path returns. Local writes and remote batches
// both hand their ops to apply(): it runs src/core/apply's applyOps against
// the node's current state and persists the outcome through group commit. It
// decides nothing; it keeps the small amount of state that must outlive one
// call: the node's vector, clock and seq, and an overlay of what batches
// still committing changed (key states, idempotency records), so the next op
// builds on them and a retry or a duplicate sees them already.

import { applyOps, type ApplyOutcome, type ApplyView } from "../core/apply/apply.js";
import { loadState } from "../core/apply/table.js";
import type { AnyState, IdempotencyRecord, StateOf } from "../core/apply/types.js";
import { compareHlc, type Hlc } from "../core/hlc.js";
import type { NodeId } from "../core/ids.js";
import type { Conflict, Namespace, Op } from "../core/op.js";
import { vvGet, type VersionVector } from "../core/version-vector.js";
import type { GroupCommitter } from "../storage/group-commit.js";
import { readNodeMeta, type Batch, type Storage } from "../storage/port.js";

/** What the driver needs. */
export interface ApplyDriverOptions {
  readonly nodeId: NodeId;
  readonly storage: Storage;
  readonly committer: GroupCommitter;
  /** True when a client write under way on this node holds an Idempotency-Key. */
  readonly idempotencyKeyHeld: (key: string) => boolean;
  /** Called after ops are committed (local or remote). */
  readonly onCommitted: (ops: readonly Op[], conflicts: readonly Conflict[]) => void;
  /** The wall clock plus maxClockSkewMs, past which a peer's HLC is not adopted (see ApplyView); none when absent. */
  readonly hlcCeilingWallMs?: () => number;
}

/** An apply under way: what it changed, and when that is durable. */
export interface ApplyRun {
  readonly outcome: ApplyOutcome;
  /** Resolves once the outcome is committed; rejects when the commit failed (nothing was acknowledged). */
  readonly committed: Promise<void>;
}

const keyId = (ns: Namespace, key: string): string => `${ns}\0${key}`;

/** What an apply outcome writes, as one storage batch: rows, ops, conflicts, records, the vector's change, seq and clock. */
export function batchOf(outcome: ApplyOutcome): Batch {
  return {
    ...outcome.rows,
    ops: outcome.ops,
    conflicts: outcome.conflicts,
    idempotency: outcome.idempotency,
    appliedVv: outcome.vvChanged,
    meta: { lastSeq: outcome.seq, lastHlc: outcome.hlc },
  };
}

/** Runs the core apply path and persists its outcome. */
export class ApplyDriver {
  private hlcNow: Hlc;
  private seqNow: number;
  private vvNow: VersionVector;
  /** Key states changed by batches not yet committed, so the next op builds on them. */
  private readonly overlay = new Map<string, AnyState>();
  /** Idempotency records of batches not yet committed, so a retry or a duplicate sees them already. */
  private readonly pendingRecords = new Map<string, IdempotencyRecord>();

  constructor(private readonly o: ApplyDriverOptions) {
    const meta = readNodeMeta(o.storage);
    this.hlcNow = meta.lastHlc;
    // The op log is the truth for our own seq: never reuse a logged dot.
    this.seqNow = Math.max(meta.lastSeq, vvGet(o.storage.opLogVv(), o.nodeId));
    this.vvNow = o.storage.appliedVv();
  }

  /** The node vector: per origin, the highest contiguous seq applied. */
  get vv(): VersionVector {
    return this.vvNow;
  }

  /** The node's HLC. */
  get hlc(): Hlc {
    return this.hlcNow;
  }

  /** The seq of this node's last own op. */
  get seq(): number {
    return this.seqNow;
  }

  /** A key's current state: from a batch still committing, else committed. */
  state<N extends Namespace>(ns: N, key: string): StateOf<N> | undefined {
    const o = this.overlay.get(keyId(ns, key));
    return o !== undefined ? (o as StateOf<N>) : loadState(this.o.storage, ns, key);
  }

  /** The record for an Idempotency-Key: committed, or from a batch still committing. */
  idempotencyRecord(key: string): IdempotencyRecord | undefined {
    return this.pendingRecords.get(key) ?? this.o.storage.getIdempotency(key);
  }

  /**
   * Applies `ops` through the core and starts committing what changed. The
   * part up to the commit is synchronous, so ops applied one after another
   * build on each other through the overlay.
   */
  apply(ops: readonly Op[]): ApplyRun {
    const outcome = applyOps(this.view(), ops);
    return { outcome, committed: outcome.ops.length === 0 ? Promise.resolve() : this.persist(outcome) };
  }

  /**
   * Runs `run` (a snapshot install) once every batch under way is committed,
   * with nothing else in between, then takes the node's vector, seq and clock
   * from the store again: the install raised them.
   */
  async install<R>(run: () => R): Promise<R> {
    for (let quiet = false; !quiet; ) {
      await this.o.committer.flush();
      // The overlay empties after each commit's promise settles: a turn later at most.
      await new Promise((resolve) => setImmediate(resolve));
      quiet = this.overlay.size === 0 && this.pendingRecords.size === 0 && this.o.committer.stats().queuedBatches === 0;
    }
    const out = run();
    const meta = readNodeMeta(this.o.storage);
    this.vvNow = this.o.storage.appliedVv();
    this.seqNow = Math.max(this.seqNow, meta.lastSeq, vvGet(this.vvNow, this.o.nodeId));
    if (compareHlc(meta.lastHlc, this.hlcNow) > 0) this.hlcNow = meta.lastHlc;
    return out;
  }

  private view(): ApplyView {
    return {
      self: this.o.nodeId,
      vv: this.vvNow,
      hlc: this.hlcNow,
      seq: this.seqNow,
      state: (ns, key) => this.state(ns, key),
      idempotencyRecord: (key) => this.idempotencyRecord(key),
      idempotencyKeyHeld: this.o.idempotencyKeyHeld,
      ...(this.o.hlcCeilingWallMs === undefined ? {} : { hlcCeilingWallMs: this.o.hlcCeilingWallMs() }),
    };
  }

  private async persist(outcome: ApplyOutcome): Promise<void> {
    const batch = batchOf(outcome);
    for (const c of outcome.changes) this.overlay.set(keyId(c.ns, c.key), c.state);
    for (const r of outcome.idempotency) this.pendingRecords.set(r.key, r);
    this.vvNow = outcome.vv;
    this.hlcNow = outcome.hlc;
    this.seqNow = outcome.seq;
    try {
      // A failed commit rejects: nothing was acknowledged, and the request
      // fails with a 500 that the client may retry (with its Idempotency-Key).
      await this.o.committer.submit(batch);
    } finally {
      for (const c of outcome.changes) {
        const k = keyId(c.ns, c.key);
        if (this.overlay.get(k) === c.state) this.overlay.delete(k);
      }
      for (const r of outcome.idempotency) if (this.pendingRecords.get(r.key) === r) this.pendingRecords.delete(r.key);
    }
    this.o.onCommitted(outcome.ops, outcome.conflicts);
  }
}
