// Turning a client's intent into an op, at the node that takes the write. The
// op must carry what it saw of the key (the kv context, the observed set tags,
// the origin's running counter totals), because that is what lets every other
// replica apply it in any order and reach the same result. Pure: the caller
// passes the local state, the node id, the next seq and the HLC.

import { isDotOnly } from "./compaction.js";
import { counterTotals } from "./crdt/pn-counter.js";
import { kvContext } from "./crdt/lww.js";
import { liveTags } from "./crdt/or-set.js";
import type { Hlc } from "./hlc.js";
import type { NodeId } from "./ids.js";
import type { CounterOp, CounterState, DocOp, KvOp, KvRegister, OrSetState, SetOp, SetRemove } from "./op.js";
import { mutated } from "./mutations.js";
import { mergeVv, vvGet, vvWith, type VersionVector } from "./version-vector.js";

function assertSeq(seq: number): void {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new Error(`seq must be a positive integer, got ${seq}`);
}

/** True when a version of `reg` is only its dot and under `swept`: one a fold may have made so. */
function mayBeFolded(reg: KvRegister, swept: VersionVector): boolean {
  return reg.siblings.some((s) => isDotOnly(s) && s.seq <= vvGet(swept, s.origin));
}

/** A kv put (valueJson) or delete (null) that overwrites every version this replica has of the key. */
export function makeKvOp(reg: KvRegister | undefined, key: string, valueJson: string | null, origin: NodeId, seq: number, hlc: Hlc, swept: VersionVector = {}): KvOp {
  assertSeq(seq);
  // No register here may mean a tombstone this node dropped, and a stable
  // version that is only its dot may have been folded (compaction.ts): either
  // way the write also claims the swept vector, everything dropped or folded
  // here covered, so it supersedes the full copy on replicas that still keep
  // it. A key whose versions are newer than the swept vector (a hot key) keeps
  // its own, smaller context.
  const context = reg === undefined ? swept : mayBeFolded(reg, swept) && !mutated("fold-without-context") ? mergeVv(kvContext(reg), swept) : kvContext(reg);
  return { ns: "kv", origin, seq, hlc, key, valueJson, vv: vvWith(context, origin, seq) };
}

/** A counter delta, carrying this origin's running totals after it. */
export function makeCounterOp(state: CounterState | undefined, key: string, delta: number, origin: NodeId, seq: number, hlc: Hlc): CounterOp {
  assertSeq(seq);
  // The HTTP layer rejects non-integers; a fraction here would make totals drift between nodes.
  if (!Number.isSafeInteger(delta)) throw new Error(`counter delta must be a safe integer, got ${delta}`);
  const totals = counterTotals(state, origin);
  const pTotal = totals.p + Math.max(delta, 0);
  const nTotal = totals.n + Math.max(-delta, 0);
  if (!Number.isSafeInteger(pTotal) || !Number.isSafeInteger(nTotal)) throw new Error("counter totals overflow the safe integer range");
  return { ns: "counters", origin, seq, hlc, key, delta, pTotal, nTotal };
}

/**
 * A set write. Adds are deduplicated (first occurrence kept, so the tag index
 * is stable); each remove names the tags this replica sees for the member,
 * and members it does not see are skipped (nothing to remove).
 */
export function makeSetOp(
  state: OrSetState | undefined,
  key: string,
  add: readonly string[],
  remove: readonly string[],
  origin: NodeId,
  seq: number,
  hlc: Hlc,
): SetOp {
  assertSeq(seq);
  const removes: SetRemove[] = [];
  for (const member of new Set(remove)) {
    const tags = liveTags(state, member);
    if (tags.length > 0) removes.push({ member, tags: [...tags] });
  }
  return { ns: "sets", origin, seq, hlc, key, add: [...new Set(add)], remove: removes };
}

/** A doc write: one Yjs update, already validated at the edge. */
export function makeDocOp(key: string, update: Uint8Array, origin: NodeId, seq: number, hlc: Hlc): DocOp {
  assertSeq(seq);
  return { ns: "docs", origin, seq, hlc, key, update };
}
