// The bounded in-memory tail of recently committed ops, shared by every peer
// link: live streaming is served from here (each op object encoded once, see
// encodedOpBody), and only a peer that fell behind the tail is served from the
// op log. Bounded in ops and in encoded bytes, so a burst of large values
// cannot grow it past its budget.

import type { NodeId } from "../core/ids.js";
import type { Op } from "../core/op.js";
import { encodedOpBody } from "../net/frames.js";

export interface OpTailLimits {
  readonly opsMax: number;
  readonly bytesMax: number;
}

export const DEFAULT_TAIL_LIMITS: OpTailLimits = { opsMax: 16_384, bytesMax: 32 * 1024 * 1024 };

/** One origin's contiguous run of ops; evicted ones are before `head` until compacted. */
interface Run {
  ops: Op[];
  head: number;
}

/** Per origin, the contiguous run of its latest committed ops. */
export class OpTail {
  private readonly runs = new Map<string, Run>();
  /** Insertion order over all origins, for eviction: oldest first. */
  private readonly order: Op[] = [];
  private orderHead = 0;
  private bytes = 0;

  constructor(private readonly limits: OpTailLimits = DEFAULT_TAIL_LIMITS) {}

  /** Adds committed ops (encoding each once); evicts the oldest past the bounds. */
  add(ops: readonly Op[]): void {
    for (const op of ops) {
      const run = this.runs.get(op.origin);
      const last = run?.ops[run.ops.length - 1];
      if (run === undefined) this.runs.set(op.origin, { ops: [op], head: 0 });
      else if (last !== undefined && op.seq !== last.seq + 1) {
        // Ops are committed in seq order per origin, so this does not happen; restart the run rather than serve a gap.
        run.ops = [op];
        run.head = 0;
      } else run.ops.push(op);
      this.order.push(op);
      this.bytes += encodedOpBody(op).length;
    }
    while (this.order.length - this.orderHead > this.limits.opsMax || (this.bytes > this.limits.bytesMax && this.order.length - this.orderHead > 1)) this.evictOldest();
    // Compact the eviction queue now and then instead of shifting on every eviction.
    if (this.orderHead > 4096 && this.orderHead * 2 > this.order.length) {
      this.order.splice(0, this.orderHead);
      this.orderHead = 0;
    }
  }

  /** The ops of `origin` with seq fromSeq..toSeq, or undefined unless all of them are here. */
  get(origin: NodeId, fromSeq: number, toSeq: number): Op[] | undefined {
    const run = this.runs.get(origin);
    const first = run?.ops[run.head];
    if (run === undefined || first === undefined) return undefined;
    const i = run.head + fromSeq - first.seq;
    const j = run.head + toSeq - first.seq;
    if (i < run.head || j >= run.ops.length) return undefined;
    return run.ops.slice(i, j + 1);
  }

  private evictOldest(): void {
    const op = this.order[this.orderHead++];
    if (op === undefined) return;
    this.bytes -= encodedOpBody(op).length;
    const run = this.runs.get(op.origin);
    if (run === undefined || run.ops[run.head] !== op) return;
    run.head++;
    if (run.head > 1024 && run.head * 2 > run.ops.length) {
      run.ops.splice(0, run.head);
      run.head = 0;
    }
  }
}
