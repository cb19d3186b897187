// Group commit: an fsync costs the same for one op as for a thousand, so
// writes that arrive together share one transaction. Batches submitted in the
// same event-loop turn — or while the previous group was being written, when
// their requests queue up behind the synchronous commit — are concatenated and
// committed with ONE storage.commit call on the next turn. Each submit's
// promise settles only after that transaction committed (or failed), so a
// caller that awaits it may acknowledge the write.

import { mergeVv } from "../core/version-vector.js";
import type { VersionVector } from "../core/version-vector.js";
import { concatRows } from "../core/apply/table.js";
import type { Conflict, Op } from "../core/op.js";
import type { Batch, IdempotencyRecord, Storage } from "./port.js";

/** Options of createGroupCommitter. */
export interface GroupCommitOptions {
  /** Ops per group; the rest waits for the next group. A single larger batch still commits alone. */
  readonly maxBatchOps?: number;
  /** Runs a group later; setImmediate by default (the simulator passes its own scheduler). */
  readonly schedule?: (run: () => void) => void;
}

/** Counters for metrics. */
export interface GroupCommitStats {
  readonly groupsCommitted: number;
  readonly groupsFailed: number;
  readonly batchesCommitted: number;
  readonly opsCommitted: number;
  /** Batches waiting for a group now. */
  readonly queuedBatches: number;
  /** Ops of those batches (a batch without ops counts one): what the pending-write-ops bound counts. */
  readonly queuedOps: number;
}

/** Batches in, shared transactions out. */
export interface GroupCommitter {
  /** Resolves once `batch` is committed; rejects with the commit's error if its group failed. */
  submit(batch: Batch): Promise<void>;
  /** Resolves once every batch submitted before the call has settled (committed or failed). */
  flush(): Promise<void>;
  /** Refuses new batches, then flushes. Does not close the storage (its owner does). */
  close(): Promise<void>;
  stats(): GroupCommitStats;
}

export const MAX_BATCH_OPS_DEFAULT = 512;

interface Pending {
  readonly batch: Batch;
  readonly sizeOps: number;
  readonly settled: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** One batch that does what `batches` do one after the other (later states win, vectors merge). */
export function concatBatches(batches: readonly Batch[]): Batch {
  if (batches.length === 1) return batches[0] as Batch;
  const ops: Op[] = [];
  const conflicts: Conflict[] = [];
  const idempotency: IdempotencyRecord[] = [];
  let appliedVv: VersionVector | undefined;
  let meta: Record<string, unknown> | undefined;
  for (const b of batches) {
    if (b.ops) ops.push(...b.ops);
    if (b.conflicts) conflicts.push(...b.conflicts);
    if (b.idempotency) idempotency.push(...b.idempotency);
    if (b.appliedVv) appliedVv = appliedVv === undefined ? b.appliedVv : mergeVv(appliedVv, b.appliedVv);
    if (b.meta) meta = { ...meta, ...b.meta };
  }
  return {
    ops, ...concatRows(batches), conflicts, idempotency,
    ...(appliedVv === undefined ? {} : { appliedVv }),
    ...(meta === undefined ? {} : { meta }),
  };
}

/** A group committer writing to `storage`. */
export function createGroupCommitter(storage: Storage, opts: GroupCommitOptions = {}): GroupCommitter {
  const maxBatchOps = opts.maxBatchOps ?? MAX_BATCH_OPS_DEFAULT;
  if (!Number.isSafeInteger(maxBatchOps) || maxBatchOps < 1) throw new RangeError(`maxBatchOps must be a positive integer, got ${maxBatchOps}`);
  const schedule = opts.schedule ?? ((run: () => void) => void setImmediate(run));
  const queue: Pending[] = [];
  let scheduled = false;
  let closed = false;
  let groupsCommitted = 0;
  let groupsFailed = 0;
  let batchesCommitted = 0;
  let opsCommitted = 0;
  let queuedOps = 0;

  function ensureScheduled(): void {
    if (scheduled || queue.length === 0) return;
    scheduled = true;
    schedule(runGroup);
  }

  function takeGroup(): Pending[] {
    // At least one batch, then as many as fit under maxBatchOps, in submit order.
    let sizeOps = (queue[0] as Pending).sizeOps;
    let n = 1;
    while (n < queue.length && sizeOps + (queue[n] as Pending).sizeOps <= maxBatchOps) {
      sizeOps += (queue[n] as Pending).sizeOps;
      n++;
    }
    queuedOps -= sizeOps;
    return queue.splice(0, n);
  }

  function runGroup(): void {
    scheduled = false;
    if (queue.length === 0) return;
    const group = takeGroup();
    try {
      storage.commit(concatBatches(group.map((p) => p.batch)));
    } catch (err) {
      groupsFailed++;
      for (const p of group) p.reject(err);
      ensureScheduled();
      return;
    }
    groupsCommitted++;
    batchesCommitted += group.length;
    for (const p of group) {
      opsCommitted += p.batch.ops?.length ?? 0;
      p.resolve();
    }
    ensureScheduled();
  }

  function submit(batch: Batch): Promise<void> {
    if (closed) return Promise.reject(new Error("group committer is closed"));
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A batch with no ops (meta only) still takes a slot, so groups stay bounded.
    const sizeOps = Math.max(1, batch.ops?.length ?? 0);
    queuedOps += sizeOps;
    queue.push({ batch, sizeOps, settled: done.then(() => undefined, () => undefined), resolve, reject });
    ensureScheduled();
    return done;
  }

  async function flush(): Promise<void> {
    await Promise.all(queue.map((p) => p.settled));
  }

  return {
    submit,
    flush,
    async close() {
      closed = true;
      await flush();
    },
    stats: () => ({ groupsCommitted, groupsFailed, batchesCommitted, opsCommitted, queuedBatches: queue.length, queuedOps }),
  };
}
