// One client write executed twice. A leader takes a write and dies before any
// follower has it; the client's retry (same Idempotency-Key) is taken by the
// next leader; the first copy comes back with the old leader and is merged, as
// deposed leaders' writes are. For kv, sets and docs the second copy changes
// nothing a reader sees; a counter would count the delta twice. Every replica
// must agree on which copy counts, so the choice is a total order on the
// copies: the earlier one wins, and the loser's origin, when it sees the
// winner arrive, undoes its own copy with a compensating delta.

import { compareHlc, type Hlc } from "./hlc.js";
import type { IdempotencyRecord } from "./apply/types.js";
import { parseToken } from "./apply/token.js";
import type { NodeId } from "./ids.js";
import type { CounterOp, Op } from "./op.js";

/** The parts of an op that order its copies. */
export interface WriteCopy {
  readonly hlc: Hlc;
  readonly origin: string;
  readonly seq: number;
}

/** True when copy `a` loses to copy `b`: it is the later one by (hlc, origin, seq). */
export function copyLoses(a: WriteCopy, b: WriteCopy): boolean {
  const c = compareHlc(a.hlc, b.hlc);
  if (c !== 0) return c > 0;
  if (a.origin !== b.origin) return a.origin > b.origin;
  return a.seq > b.seq;
}

/**
 * Our own losing copy of the counter write `remote`, which this node must
 * undo, or null. `record` is this node's answer for remote's Idempotency-Key
 * (committed or committing); `ownOp` reads one of this node's logged ops.
 */
export function copyToUndo(remote: Op, self: NodeId, record: IdempotencyRecord | undefined, ownOp: (seq: number) => Op | undefined): CounterOp | null {
  if (remote.ns !== "counters" || remote.idem === undefined || remote.origin === self) return null;
  if (record === undefined || record.requestHash !== remote.idem.requestHash) return null;
  const dot = parseToken(String((JSON.parse(record.body) as { token?: unknown }).token ?? ""));
  if (dot === null || dot.origin !== self) return null;
  const mine = ownOp(dot.seq);
  if (mine === undefined || mine.ns !== "counters" || mine.idem?.key !== remote.idem.key) return null;
  return copyLoses(mine, remote) ? mine : null;
}
