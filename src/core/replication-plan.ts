// Replication planning: what a peer lacks. On connect, on a follower's
// heartbeat reply and when a peer falls off the live stream, the runtime
// compares the peer's version vector with ours and sends only the difference,
// read from the op log in bounded batches. Deciding that here, as a pure
// function of two vectors, keeps the runtime free of logic and lets the
// simulator check that catch-up always converges.

import type { NodeId } from "./ids.js";
import type { Op } from "./op.js";
import { vvGet, type VersionVector } from "./version-vector.js";

/** The ops of one origin with seq in fromSeq..toSeq (inclusive) that the peer lacks. */
export interface CatchUpRange {
  readonly origin: NodeId;
  readonly fromSeq: number;
  readonly toSeq: number;
}

/**
 * The ranges the peer lacks, given our contiguous node vector: one per origin
 * where we are ahead, in ascending origin order. With `maxOps` the plan holds
 * at most that many ops (the last range cut short); the caller sends it, lets
 * the peer's vector advance, and plans again until the plan is empty.
 */
export function planCatchUp(localVv: VersionVector, peerVv: VersionVector, maxOps = Infinity): CatchUpRange[] {
  // Zero would plan nothing forever: the caller's loop would never end.
  if (!(maxOps >= 1) || (maxOps !== Infinity && !Number.isSafeInteger(maxOps))) {
    throw new Error(`maxOps must be a positive integer, got ${maxOps}`);
  }
  const out: CatchUpRange[] = [];
  let budget = maxOps;
  for (const origin of Object.keys(localVv).sort()) {
    if (budget <= 0) break;
    const local = localVv[origin] as number;
    const peer = vvGet(peerVv, origin);
    if (local <= peer) continue;
    const toSeq = Math.min(local, peer + budget);
    out.push({ origin: origin as NodeId, fromSeq: peer + 1, toSeq });
    budget -= toSeq - peer;
  }
  return out;
}

/** Total ops in a plan. */
export function planOpCount(plan: readonly CatchUpRange[]): number {
  let n = 0;
  for (const r of plan) n += r.toSeq - r.fromSeq + 1;
  return n;
}

/** The ops (in the given order) whose dot the peer's vector does not cover: for in-memory op indexes and live streams. */
export function opsPeerLacks(peerVv: VersionVector, ops: Iterable<Op>): Op[] {
  const out: Op[] = [];
  for (const op of ops) if (op.seq > vvGet(peerVv, op.origin)) out.push(op);
  return out;
}
