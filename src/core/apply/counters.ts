// The counters namespace's entry: PN-counters whose ops carry the origin's
// running totals, so applying one is an entrywise max (pn-counter.ts), and
// whose copies of one keyed write count once for as long as an idempotency
// record lives (counter-copies.ts).

import { applyCounter, counterTotals, counterValue } from "../crdt/pn-counter.js";
import type { CounterOp } from "../op.js";
import { makeCounterOp } from "../write.js";
import { IDEMPOTENCY_TTL_MS } from "./idempotency.js";
import type { NamespaceEntry } from "./namespace.js";

interface CounterLogBody { readonly delta: number; readonly pTotal: number; readonly nTotal: number }

/** The counters entry. */
export const countersEntry: NamespaceEntry<"counters"> = {
  ns: "counters",
  wireTag: 2,
  build: (state, key, intent, at) => {
    // Refused here, not thrown by makeCounterOp: a client's delta that would
    // push this origin's totals or the value out of the safe integer range is
    // bad input (400), not a node failure (500).
    const { delta } = intent;
    const totals = counterTotals(state, at.origin);
    const value = counterValue(state) + delta;
    if (!Number.isSafeInteger(totals.p + Math.max(delta, 0)) || !Number.isSafeInteger(totals.n + Math.max(-delta, 0)) || !Number.isSafeInteger(value)) {
      return { type: "build_refusal", reason: "this delta would take the counter's value or its running increment/decrement totals past ±(2^53-1)" };
    }
    return makeCounterOp(state, key, delta, at.origin, at.seq, at.hlc);
  },
  apply: (state, op) => ({ state: applyCounter(state, op, IDEMPOTENCY_TTL_MS), conflicts: [] }),
  read: (state) => counterValue(state),
  answer: (op, after, token) => ({ key: op.key, value: counterValue(after), token }),
  load: (reader, key) => reader.getCounter(key),
  row: (key, state) => ({ key, state }),

  toLogBody: (op) => {
    const body: CounterLogBody = { delta: op.delta, pTotal: op.pTotal, nTotal: op.nTotal };
    return { body: JSON.stringify(body), payload: null };
  },
  fromLogBody: (head, text) => {
    const body = JSON.parse(text) as CounterLogBody;
    return { ...head, ns: "counters", delta: body.delta, pTotal: body.pTotal, nTotal: body.nTotal };
  },

  wireHint: () => 24,
  checkWire: (op) => {
    if (!Number.isSafeInteger(op.delta)) throw new Error(`counter delta must be a safe integer, got ${op.delta}`);
    if (op.delta > 0 && op.pTotal < op.delta) throw new Error("counter pTotal must include the delta");
    if (op.delta < 0 && op.nTotal < -op.delta) throw new Error("counter nTotal must include the delta");
  },
  writeWire: (w, op) => {
    w.float64(op.delta);
    w.varint(op.pTotal);
    w.varint(op.nTotal);
  },
  readWire: (r, head) => {
    const deltaAt = r.pos;
    const delta = r.float64("counter delta");
    if (!Number.isSafeInteger(delta)) r.fail("counter delta is not a safe integer", deltaAt);
    const pAt = r.pos;
    const pTotal = r.varint("counter pTotal");
    const nAt = r.pos;
    const nTotal = r.varint("counter nTotal");
    // The totals include this op's own delta (op.ts), so a smaller total is a forged op.
    if (delta > 0 && pTotal < delta) r.fail("counter pTotal smaller than the delta", pAt);
    if (delta < 0 && nTotal < -delta) r.fail("counter nTotal smaller than the delta", nAt);
    return { ns: "counters", ...head, delta, pTotal, nTotal } satisfies CounterOp;
  },
};
