// The PN-counter: each origin keeps running totals of its own increments (p)
// and decrements (n) per key, and every op carries the origin's totals after
// it. Applying an op or merging two states is then an entrywise max, which is
// idempotent and order-free, so duplicated or reordered delivery can never
// count a delta twice or lose one. The value is sum(p) - sum(n).

import type { CounterOp, CounterState } from "../op.js";

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

/** Applies one counter op: the origin's totals become the max of what we had and what it carries. */
export function applyCounter(state: CounterState | undefined, op: CounterOp): CounterState {
  const base = state ?? EMPTY_COUNTER;
  return {
    p: maxTotals(base.p, { [op.origin]: op.pTotal }),
    n: maxTotals(base.n, { [op.origin]: op.nTotal }),
  };
}

/** The state-based join: entrywise max of both totals. */
export function mergeCounter(a: CounterState, b: CounterState): CounterState {
  return { p: maxTotals(a.p, b.p), n: maxTotals(a.n, b.n) };
}

/** The counter's value: all increments minus all decrements. */
export function counterValue(state: CounterState | undefined): number {
  if (state === undefined) return 0;
  let value = 0;
  for (const v of Object.values(state.p)) value += v;
  for (const v of Object.values(state.n)) value -= v;
  return value;
}

/** This origin's running totals for the key (what its next op builds on). */
export function counterTotals(state: CounterState | undefined, origin: string): { p: number; n: number } {
  return { p: own(state?.p ?? {}, origin), n: own(state?.n ?? {}, origin) };
}
