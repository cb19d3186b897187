// Causal stability and op-log compaction, as pure functions.
//
// An op is causally stable once every member of the cluster holds it: no
// node can ever ask for it again, so the op log may forget it. Each node
// knows what its peers hold from the durable vectors they report (acks,
// pings, pongs, link intros); the pointwise minimum of those and its own is
// the stability frontier. A peer's report can only be old, never ahead of
// what the peer holds, so a frontier computed from stale reports is lower
// than the true one: safe, only less eager. A member never heard from since
// this node started reports nothing and holds the frontier at zero.
//
// The frontier only grows: it is persisted, and a restart starts from the
// persisted one (every member held it once; members do not lose data).
//
// Compaction removes op-log entries at or below the frontier once the log is
// longer than the retention bound, in steps of a bounded number of ops so
// that no step holds the event loop for long; the node's driver runs one
// step per turn and reports the new floor back.

import { mutated } from "./mutations.js";
import type { KvRegister, KvVersion } from "./op.js";
import { mergeVv, vvGet, vvIsDot, type VersionVector } from "./version-vector.js";

/**
 * The pointwise minimum of `vectors` (at least one): per origin, the highest
 * seq every vector covers. An origin missing from any vector is 0 and left out.
 */
export function pointwiseMin(vectors: readonly VersionVector[]): VersionVector {
  const [first, ...rest] = vectors;
  if (first === undefined) throw new Error("pointwiseMin needs at least one vector");
  const out: Record<string, number> = {};
  for (const origin of Object.keys(first)) {
    let m = vvGet(first, origin);
    for (const v of rest) {
      m = Math.min(m, vvGet(v, origin));
      if (m === 0) break;
    }
    if (m > 0) out[origin] = m;
  }
  return out;
}

/**
 * The stability frontier: the minimum of this node's durable vector and the
 * latest durable vector every other member reported, never below `persisted`
 * (the frontier this node reached before) and never above what this node
 * holds itself (a persisted frontier from before a data loss must not let
 * the log forget ops this node never had).
 */
export function stabilityFrontier(own: VersionVector, reported: readonly VersionVector[], persisted: VersionVector): VersionVector {
  if (mutated("compact-unstable")) return own;
  return pointwiseMin([own, mergeVv(persisted, pointwiseMin([own, ...reported]))]);
}

/** What one compaction step looks at. */
export interface CompactionInput {
  /** Rows in the op log now. */
  readonly logOps: number;
  /** Rows the log may keep: compaction starts only past this many. */
  readonly retainOps: number;
  /** The stability frontier. */
  readonly stable: VersionVector;
  /** Per origin, the seq up to which ops were already compacted. */
  readonly floor: VersionVector;
  /** Per origin, the highest seq up to which the log is contiguous (logged or compacted). */
  readonly logVv: VersionVector;
  /** The most ops one step may remove. */
  readonly maxOps: number;
}

/**
 * The vector to compact the log to in this step, or null when nothing is
 * due: the log is within its bound, or nothing past the floor is stable.
 * Only the excess over `retainOps` goes, oldest first per origin, and the
 * budget is shared among origins in proportion to what each could give, so
 * one busy origin does not keep another's stable ops forever. The result
 * never passes the frontier nor what the log holds contiguously.
 */
export function planCompactionStep(i: CompactionInput): VersionVector | null {
  if (!(Number.isSafeInteger(i.maxOps) && i.maxOps > 0)) throw new Error(`maxOps must be a positive integer, got ${i.maxOps}`);
  if (!(Number.isSafeInteger(i.retainOps) && i.retainOps >= 0)) throw new Error(`retainOps must be a non-negative integer, got ${i.retainOps}`);
  const excess = i.logOps - i.retainOps;
  if (excess <= 0) return null;
  const removable = new Map<string, number>();
  let total = 0;
  for (const origin of Object.keys(i.stable).sort()) {
    const upTo = Math.min(vvGet(i.stable, origin), vvGet(i.logVv, origin));
    const n = upTo - vvGet(i.floor, origin);
    if (n <= 0) continue;
    removable.set(origin, n);
    total += n;
  }
  if (total === 0) return null;
  let budget = Math.min(excess, i.maxOps, total);
  const out: Record<string, number> = {};
  // Proportional shares rounded down, then what rounding left, in origin order.
  const shares = [...removable].map(([origin, n]) => [origin, Math.floor((n * budget) / total)] as const);
  for (const [, share] of shares) budget -= share;
  for (const [origin, share] of shares) {
    const extra = Math.min(budget, (removable.get(origin) as number) - share);
    budget -= extra;
    const take = share + extra;
    if (take > 0) out[origin] = vvGet(i.floor, origin) + take;
  }
  return Object.keys(out).length === 0 ? null : out;
}

/** True when a peer that holds `peerVv` needs ops this node has compacted (below `floor`): only a snapshot can catch it up. */
export function needsCompactedOps(peerVv: VersionVector, floor: VersionVector): boolean {
  for (const origin of Object.keys(floor)) if (vvGet(peerVv, origin) < vvGet(floor, origin)) return true;
  return false;
}

// ---- kv tombstones ---------------------------------------------------------------
//
// A delete leaves a tombstone, so that a replica which has not seen the
// delete yet cannot bring the key back when it hears an older write. It may
// go once no op concurrent with it can still arrive anywhere, and once no
// write can come to depend on its absence differently on different nodes:
//
// 1. Every member holds it: it is at or below the frontier (and the floor, so
//    tombstones go with the part of the log they belong to).
// 2. Every op concurrent with it is everywhere. A member Y that reported a
//    vector covering the tombstone had received it by then, so Y's ops
//    concurrent with it have seqs up to Y's own entry in that report. The
//    horizon records, when a frontier is taken, each member's own seq; once
//    the frontier passes all of them, those ops are held (and merged) by
//    every member, this node included.
// 3. A write to a key whose tombstone this node dropped carries, as its
//    context, every tombstone dropped here (the swept vector, write.ts), so
//    on a replica that still keeps the tombstone it supersedes it instead of
//    standing beside it as a concurrent sibling.

/** A frontier taken with every member's own seq at the time: tombstones under `covered` may go once the frontier passes `until`. */
export interface TombstoneHorizon {
  readonly covered: VersionVector;
  readonly until: VersionVector;
}

/** What the members reported, as the sweep needs it: their latest durable vectors, and whether each was heard since start. */
export interface MemberReport {
  readonly node: string;
  readonly vv: VersionVector;
  readonly heard: boolean;
}

/**
 * The horizon this node could take now: the frontier of its own vector and
 * every member's report, with each member's own seq from its report. Null
 * until every member was heard since start (a silent member's concurrent
 * ops are unbounded).
 */
export function tombstoneHorizonNow(self: string, own: VersionVector, reports: readonly MemberReport[]): TombstoneHorizon | null {
  if (reports.some((r) => !r.heard)) return null;
  const until: Record<string, number> = {};
  const mine = vvGet(own, self);
  if (mine > 0) until[self] = mine;
  for (const r of reports) {
    const seq = vvGet(r.vv, r.node);
    if (seq > 0) until[r.node] = seq;
  }
  return { covered: pointwiseMin([own, ...reports.map((r) => r.vv)]), until };
}

/** What a sweep pass does: drop tombstones under `sweep` (null: none yet), then keep `next` as the horizon. */
export interface SweepPlan {
  readonly sweep: VersionVector | null;
  readonly next: TombstoneHorizon | null;
}

/**
 * Given the horizon kept so far, the one this node could take now and the
 * op log's floor: once the current frontier passes the kept horizon's own
 * seqs, tombstones under its frontier (and the floor) may go, and the
 * current horizon is kept for the next round.
 */
export function planTombstoneSweep(kept: TombstoneHorizon | null, now: TombstoneHorizon | null, floor: VersionVector): SweepPlan {
  if (now === null) return { sweep: null, next: kept };
  if (kept === null) return { sweep: null, next: now };
  for (const origin of Object.keys(kept.until)) {
    if (vvGet(now.covered, origin) < vvGet(kept.until, origin)) return { sweep: null, next: kept };
  }
  const sweep = pointwiseMin([kept.covered, floor]);
  return { sweep: Object.keys(sweep).length === 0 ? null : sweep, next: now };
}

/** True when a kv register is only deletes, every one of them (its whole context) under `covered`: it may be dropped. */
export function tombstoneDroppable(reg: KvRegister, covered: VersionVector): boolean {
  if (reg.siblings.length === 0) return false;
  for (const s of reg.siblings) {
    if (s.valueJson !== null) return false;
    for (const origin of Object.keys(s.vv)) if (vvGet(s.vv, origin) > vvGet(covered, origin)) return false;
  }
  return true;
}

// ---- folding stable kv versions ----------------------------------------------------
//
// A kv version keeps the vector of everything its writer had seen of the key,
// which is what tells a causal overwrite from a race. Once that whole vector
// is under the swept vector (every member holds every op it names, and every
// op concurrent with them, by the tombstone rules above), the vector can no
// longer tell anything apart that its dot does not: an op that saw the
// version names its dot, since every origin's ops are applied in order, and
// one that did not is concurrent with the version whatever else it names. So
// the version keeps only its dot, and the stored row shrinks to its short form
// (codec/kv-state.ts). The one thing the full vector still did is carried by
// the writes instead: a write to a key holding a folded version claims the
// swept vector as context too (write.ts), so that on a replica that has not
// folded yet it still supersedes the full copy.

/** True when the version's vector is its own dot and nothing else. */
export function isDotOnly(v: KvVersion): boolean {
  return vvIsDot(v.vv, v.origin, v.seq);
}

/** The register with every version whose whole vector is under `swept` folded to its dot; null when none folds. */
export function foldStableKv(reg: KvRegister, swept: VersionVector): KvRegister | null {
  let folded = false;
  const siblings = reg.siblings.map((s) => {
    if (isDotOnly(s)) return s;
    for (const origin of Object.keys(s.vv)) if (vvGet(s.vv, origin) > vvGet(swept, origin)) return s;
    folded = true;
    return { ...s, vv: { [s.origin]: s.seq } };
  });
  return folded ? { siblings } : null;
}
