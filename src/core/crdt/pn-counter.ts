// The PN-counter: each origin keeps running totals of its own increments (p)
// and decrements (n) per key, and every op carries the origin's totals after
// it. Applying an op or merging two states is then an entrywise max, which is
// idempotent and order-free, so duplicated or reordered delivery can never
// count a delta twice or lose one. One client write executed at several
// origins (a retry across a failover) is several ops, though; the state also
// keeps the copies of idempotency-keyed writes, and the value leaves out every
// copy but the winner (counter-copies.ts):
//
//   value = sum(p) - sum(n) - (losers' deltas of the live copies) - folded

import type { CounterOp, CounterState } from "../op.js";
import { copyOf, expireCopies, losingDeltas, unionCopies, withCopy, type CopiesList } from "./counter-copies.js";

/** The state of a counter nobody has written: value 0. */
export const EMPTY_COUNTER: CounterState = { p: {}, n: {} };

/**
 * Sorted keys and no zero entries: one form per value, so states compare with
 * deep equality and serialize the same way on every node. (JS still lists
 * integer-like keys such as node "7" first; that is one order per key set too.)
 */
function canonical(totals: Readonly<Record<string, number>>): Readonly<Record<string, number>> {
  const entries = Object.entries(totals)
    .filter(([, v]) => v > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries);
}

function own(totals: Readonly<Record<string, number>>, origin: string): number {
  return Object.hasOwn(totals, origin) ? (totals[origin] as number) : 0;
}

function maxTotals(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Readonly<Record<string, number>> {
  const out: Record<string, number> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Math.max(own(out, k), v);
  return canonical(out);
}

/** A state with the optional fields present only when they hold something, so it serializes one way. */
function counterState(p: CounterState["p"], n: CounterState["n"], keyed: CopiesList | undefined, folded: number): CounterState {
  return { p, n, ...(keyed === undefined ? {} : { keyed }), ...(folded === 0 ? {} : { folded }) };
}

/**
 * Applies one counter op: the origin's totals become the max of what we had
 * and what it carries; the `keyed` entries more than `ttlMs` older than the
 * op are folded (counter-copies.ts); a keyed op adds its copy.
 */
export function applyCounter(state: CounterState | undefined, op: CounterOp, ttlMs: number): CounterState {
  const base = state ?? EMPTY_COUNTER;
  const expired = expireCopies(base.keyed, op.hlc.wallMs, ttlMs);
  const keyed = op.idem === undefined ? expired.list : withCopy(expired.list, op.idem, copyOf(op));
  return counterState(
    maxTotals(base.p, { [op.origin]: op.pTotal }),
    maxTotals(base.n, { [op.origin]: op.nTotal }),
    keyed,
    (base.folded ?? 0) + expired.folded,
  );
}

/**
 * The state-based join: entrywise max of both totals and the union of the
 * `keyed` copies per key. `folded` cannot be joined (that would take the dropped
 * entries): it is exact when both sides folded the same entries, as replicas
 * that applied the same ops have; otherwise the larger is kept, so the merge
 * stays commutative, associative and idempotent, but an entry one side has
 * already folded comes back from the other and its losers are left out
 * twice. So merge states of the same TTL window (nothing merges states today:
 * replicas exchange ops).
 */
export function mergeCounter(a: CounterState, b: CounterState): CounterState {
  return counterState(maxTotals(a.p, b.p), maxTotals(a.n, b.n), unionCopies(a.keyed, b.keyed), Math.max(a.folded ?? 0, b.folded ?? 0));
}

/** The counter's value: all increments minus all decrements, each keyed write counted once. */
export function counterValue(state: CounterState | undefined): number {
  if (state === undefined) return 0;
  let value = 0;
  for (const v of Object.values(state.p)) value += v;
  for (const v of Object.values(state.n)) value -= v;
  return value - losingDeltas(state.keyed) - (state.folded ?? 0);
}

/** This origin's running totals for the key (what its next op builds on). */
export function counterTotals(state: CounterState | undefined, origin: string): { p: number; n: number } {
  return { p: own(state?.p ?? {}, origin), n: own(state?.n ?? {}, origin) };
}
