// Which ops this replica has applied. Ops reach a node over several links
// (transitive forwarding, catch-up racing the live stream), so they can arrive
// out of order and more than once. Per origin we keep the highest contiguous
// seq (the node version vector that replication and acks compare) and the few
// seqs applied above a gap, so a duplicate is recognised exactly and the
// vector never claims an op that a gap is still missing.
//
// Values are immutable: every update returns a new AppliedDots (or the same
// object when nothing changed), so the runtime can persist it before sending
// and a state machine can hold it in its state.

import type { NodeId } from "./ids.js";
import type { Dot } from "./op.js";
import { vvGet, type VersionVector } from "./version-vector.js";

/**
 * How far above its contiguous prefix an origin may have applied seqs. This is
 * the bound on the out-of-order set: a dot further ahead must wait (the caller
 * asks for the gap first), so memory stays bounded whatever peers send.
 */
export const DEFAULT_AHEAD_WINDOW_SEQS = 10_000;

/** An inclusive range of seqs of one origin. */
export interface SeqRange {
  readonly fromSeq: number;
  readonly toSeq: number;
}

export interface AppliedDots {
  /** origin -> the highest seq s such that seqs 1..s are all applied (absent = 0). */
  readonly contiguous: VersionVector;
  /** origin -> ascending seqs applied above contiguous + 1; absent when there are none. */
  readonly ahead: Readonly<Record<string, readonly number[]>>;
  /** The bound on ahead: every seq in it is at most contiguous + aheadWindowSeqs. */
  readonly aheadWindowSeqs: number;
}

/** What addDot would do with a dot: record it, ignore a duplicate, or refuse one beyond the window. */
export type DotAdmission = "new" | "duplicate" | "too_far_ahead";

/** Nothing applied yet. */
export function emptyApplied(aheadWindowSeqs = DEFAULT_AHEAD_WINDOW_SEQS): AppliedDots {
  assertWindow(aheadWindowSeqs);
  return { contiguous: {}, ahead: {}, aheadWindowSeqs };
}

/** The state after a restart or a snapshot: everything up to `vv` applied, no gaps. */
export function appliedFromVv(vv: VersionVector, aheadWindowSeqs = DEFAULT_AHEAD_WINDOW_SEQS): AppliedDots {
  assertWindow(aheadWindowSeqs);
  const contiguous: Record<string, number> = {};
  for (const origin of Object.keys(vv).sort()) {
    const seq = vv[origin] as number;
    if (!Number.isSafeInteger(seq) || seq < 0) throw new Error(`bad vv entry ${origin}=${seq}`);
    if (seq > 0) contiguous[origin] = seq;
  }
  return { contiguous, ahead: {}, aheadWindowSeqs };
}

/** True when the op named by `dot` has been applied. */
export function hasDot(applied: AppliedDots, dot: Dot): boolean {
  if (dot.seq <= vvGet(applied.contiguous, dot.origin)) return true;
  const above = aheadOf(applied, dot.origin);
  return above.length > 0 && indexOfSeq(above, dot.seq) >= 0;
}

/** Whether addDot would record `dot`, ignore it as a duplicate, or refuse it as too far ahead. */
export function admitDot(applied: AppliedDots, dot: Dot): DotAdmission {
  assertDot(dot);
  if (hasDot(applied, dot)) return "duplicate";
  const base = vvGet(applied.contiguous, dot.origin);
  return dot.seq - base > applied.aheadWindowSeqs ? "too_far_ahead" : "new";
}

/**
 * Records `dot` as applied. A duplicate returns `applied` itself. A dot beyond
 * the window throws: callers check admitDot first (the bound is a contract).
 */
export function addDot(applied: AppliedDots, dot: Dot): AppliedDots {
  const admission = admitDot(applied, dot);
  if (admission === "duplicate") return applied;
  if (admission === "too_far_ahead") {
    throw new Error(`dot ${dot.origin}:${dot.seq} is beyond the ${applied.aheadWindowSeqs}-seq window; check admitDot first`);
  }
  const origin = dot.origin;
  const base = vvGet(applied.contiguous, origin);
  const above = aheadOf(applied, origin);

  if (dot.seq === base + 1) {
    // The gap closes: absorb the run of already-applied seqs that now follows.
    let top = dot.seq;
    let i = 0;
    while (i < above.length && above[i] === top + 1) {
      top++;
      i++;
    }
    return withOrigin(applied, origin, top, above.slice(i));
  }
  const at = insertionPoint(above, dot.seq);
  const next = [...above.slice(0, at), dot.seq, ...above.slice(at)];
  return withOrigin(applied, origin, base, next);
}

/** The node version vector: contiguous seqs only, so it never claims an op behind a gap. */
export function appliedVv(applied: AppliedDots): VersionVector {
  return applied.contiguous;
}

/**
 * The seqs of `origin` in 1..upTo not yet applied, as ascending inclusive
 * ranges (at most one more range than there are out-of-order seqs).
 */
export function missingBelow(applied: AppliedDots, origin: NodeId | string, upTo: number): SeqRange[] {
  const out: SeqRange[] = [];
  let from = vvGet(applied.contiguous, origin) + 1;
  for (const seq of aheadOf(applied, origin)) {
    if (from > upTo) break;
    if (seq > from) out.push({ fromSeq: from, toSeq: Math.min(seq - 1, upTo) });
    from = seq + 1;
  }
  if (from <= upTo) out.push({ fromSeq: from, toSeq: upTo });
  return out;
}

/** How many seqs are applied out of order (waiting for a gap to close): a health figure. */
export function aheadCount(applied: AppliedDots): number {
  let n = 0;
  for (const origin in applied.ahead) n += aheadOf(applied, origin).length;
  return n;
}

function aheadOf(applied: AppliedDots, origin: string): readonly number[] {
  return Object.hasOwn(applied.ahead, origin) ? (applied.ahead[origin] as readonly number[]) : [];
}

function withOrigin(applied: AppliedDots, origin: string, contiguousSeq: number, above: readonly number[]): AppliedDots {
  const contiguous = contiguousSeq > 0 ? { ...applied.contiguous, [origin]: contiguousSeq } : applied.contiguous;
  const rest: Record<string, readonly number[]> = { ...applied.ahead };
  delete rest[origin];
  // No empty arrays: one representation per state, so equal histories give equal values.
  // (A computed key, not an assignment: it always makes an own property.)
  const ahead = above.length > 0 ? { ...rest, [origin]: above } : rest;
  return { contiguous, ahead, aheadWindowSeqs: applied.aheadWindowSeqs };
}

// The first index whose seq is >= `seq` (binary search over the sorted gap list).
function insertionPoint(sorted: readonly number[], seq: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function indexOfSeq(sorted: readonly number[], seq: number): number {
  const i = insertionPoint(sorted, seq);
  return sorted[i] === seq ? i : -1;
}

function assertDot(dot: Dot): void {
  if (!Number.isSafeInteger(dot.seq) || dot.seq < 1) throw new Error(`dot seq must be an integer >= 1, got ${dot.seq}`);
}

function assertWindow(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`aheadWindowSeqs must be a positive integer, got ${n}`);
}
