// The PN-counter: merge is a lattice join, delivery order and duplicates do
// not matter, and the value is exactly the sum of the deltas written.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyCounter, counterValue, EMPTY_COUNTER, mergeCounter } from "../../src/core/crdt/pn-counter.js";
import { asNodeId } from "../../src/core/ids.js";
import type { CounterOp, CounterState } from "../../src/core/op.js";
import { makeCounterOp } from "../../src/core/write.js";
import { deliver, deliveryArb, historyArb, runHistory } from "./arbitraries.js";

const A = asNodeId("a");
const B = asNodeId("b");
const T = { wallMs: 1, logical: 0 };

const stateOf = (ops: readonly CounterOp[]): CounterState => ops.reduce<CounterState>((s, op) => applyCounter(s, op), EMPTY_COUNTER);

const counterOpsArb = historyArb(["counter"], 24).map((h) => runHistory(h).ops.filter((op): op is CounterOp => op.ns === "counters"));

const threeStatesArb = fc
  .tuple(counterOpsArb, fc.array(fc.nat({ max: 2 }), { minLength: 40, maxLength: 40 }))
  .map(([ops, pick]) => {
    const part = (n: number) => ops.filter((op, i) => op.key === "k1" && pick[i % pick.length] !== n);
    return [stateOf(part(0)), stateOf(part(1)), stateOf(part(2))] as const;
  });

describe("pn-counter: examples", () => {
  it("sums increments and decrements across origins", () => {
    const a1 = makeCounterOp(undefined, "c", 5, A, 1, T);
    const s1 = applyCounter(undefined, a1);
    const a2 = makeCounterOp(s1, "c", -2, A, 2, T);
    const b1 = makeCounterOp(undefined, "c", 10, B, 1, T);
    expect(a2).toMatchObject({ pTotal: 5, nTotal: 2, delta: -2 });
    const s = [a1, a2, b1].reduce<CounterState>((st, op) => applyCounter(st, op), EMPTY_COUNTER);
    expect(counterValue(s)).toBe(13);
    expect(s).toEqual({ p: { a: 5, b: 10 }, n: { a: 2 } });
  });

  it("an old or duplicated op cannot lower or double a total", () => {
    const a1 = makeCounterOp(undefined, "c", 3, A, 1, T);
    const a2 = makeCounterOp(applyCounter(undefined, a1), "c", 4, A, 2, T);
    const s = applyCounter(applyCounter(undefined, a2), a1);
    expect(counterValue(s)).toBe(7);
    expect(applyCounter(s, a2)).toEqual(s);
  });

  it("a never-written counter is 0 and zero deltas leave no entries", () => {
    expect(counterValue(undefined)).toBe(0);
    expect(applyCounter(undefined, makeCounterOp(undefined, "c", 0, A, 1, T))).toEqual({ p: {}, n: {} });
    expect(() => makeCounterOp(undefined, "c", 0.5, A, 1, T)).toThrow();
  });
});

describe("pn-counter: properties", () => {
  it("merge is commutative, associative and idempotent", () => {
    fc.assert(
      fc.property(threeStatesArb, ([a, b, c]) => {
        expect(mergeCounter(a, b)).toEqual(mergeCounter(b, a));
        expect(mergeCounter(mergeCounter(a, b), c)).toEqual(mergeCounter(a, mergeCounter(b, c)));
        expect(mergeCounter(a, a)).toEqual(a);
        expect(mergeCounter(a, EMPTY_COUNTER)).toEqual(a);
      }),
    );
  });

  it("applying ops agrees with merging states", () => {
    fc.assert(
      fc.property(counterOpsArb, fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), (ops, pick) => {
        const k1 = ops.filter((op) => op.key === "k1");
        const left = stateOf(k1.filter((_, i) => pick[i] === true));
        const right = stateOf(k1.filter((_, i) => pick[i] !== true));
        expect(mergeCounter(left, right)).toEqual(stateOf(k1));
      }),
    );
  });

  it("any delivery order with duplicates gives the same state, and the value is the sum of the deltas", () => {
    fc.assert(
      fc.property(counterOpsArb, deliveryArb, deliveryArb, (ops, d1, d2) => {
        for (const key of ["k1", "k2", "k3"]) {
          const mine = ops.filter((op) => op.key === key);
          const s = stateOf(deliver(mine, d1));
          expect(stateOf(deliver(mine, d2))).toEqual(s);
          expect(counterValue(s)).toBe(mine.reduce((sum, op) => sum + op.delta, 0));
          // Canonical form: no zero entries, keys sorted.
          for (const totals of [s.p, s.n]) {
            expect(Object.values(totals).every((v) => v > 0)).toBe(true);
            expect(Object.keys(totals)).toEqual(Object.keys(totals).sort());
          }
        }
      }),
    );
  });
});
