// The PN-counter: merge is a lattice join, delivery order and duplicates do
// not matter, and the value is exactly the sum of the deltas written, a write
// executed at several origins under one Idempotency-Key counted once.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IDEMPOTENCY_TTL_MS } from "../../src/core/apply/idempotency.js";
import { copyLoses } from "../../src/core/crdt/counter-copies.js";
import { applyCounter, counterValue, EMPTY_COUNTER, mergeCounter } from "../../src/core/crdt/pn-counter.js";
import { asNodeId } from "../../src/core/ids.js";
import type { CounterOp, CounterState } from "../../src/core/op.js";
import { makeCounterOp } from "../../src/core/write.js";
import { deliver, deliveryArb, historyArb, runHistory } from "./arbitraries.js";

const A = asNodeId("a");
const B = asNodeId("b");
const T = { wallMs: 1, logical: 0 };
const TTL = IDEMPOTENCY_TTL_MS;

const apply1 = (s: CounterState | undefined, op: CounterOp): CounterState => applyCounter(s, op, TTL);
const stateOf = (ops: readonly CounterOp[]): CounterState => ops.reduce<CounterState>(apply1, EMPTY_COUNTER);

/**
 * Counter ops as replicas make them; some carry an Idempotency-Key named
 * after their delta, so every copy under a key writes the same delta, as the
 * retries of one request do (keys include names special on JS objects).
 */
const idemKeyOf = (delta: number): string => (delta === 1 ? "__proto__" : delta === 2 ? "constructor" : `K${delta}`);
const counterOpsArb = fc
  .tuple(historyArb(["counter"], 24), fc.array(fc.boolean(), { minLength: 24, maxLength: 24 }))
  .map(([h, keyed]) =>
    runHistory(h)
      .ops.filter((op): op is CounterOp => op.ns === "counters")
      .map((op, i) => (keyed[i] === true ? { ...op, idem: { key: idemKeyOf(op.delta), requestHash: "h" } } : op)),
  );

/** What the ops should count: every unkeyed delta, and each keyed write's delta once. */
function countedOnce(ops: readonly CounterOp[]): number {
  const keyed = new Map<string, number>();
  let sum = 0;
  for (const op of ops) {
    if (op.idem === undefined) sum += op.delta;
    else keyed.set(op.idem.key, op.delta);
  }
  for (const delta of keyed.values()) sum += delta;
  return sum;
}

const threeStatesArb = fc
  .tuple(counterOpsArb, fc.array(fc.nat({ max: 2 }), { minLength: 40, maxLength: 40 }))
  .map(([ops, pick]) => {
    const part = (n: number) => ops.filter((op, i) => op.key === "k1" && pick[i % pick.length] !== n);
    return [stateOf(part(0)), stateOf(part(1)), stateOf(part(2))] as const;
  });

describe("pn-counter: examples", () => {
  it("sums increments and decrements across origins", () => {
    const a1 = makeCounterOp(undefined, "c", 5, A, 1, T);
    const s1 = apply1(undefined, a1);
    const a2 = makeCounterOp(s1, "c", -2, A, 2, T);
    const b1 = makeCounterOp(undefined, "c", 10, B, 1, T);
    expect(a2).toMatchObject({ pTotal: 5, nTotal: 2, delta: -2 });
    const s = stateOf([a1, a2, b1]);
    expect(counterValue(s)).toBe(13);
    expect(s).toEqual({ p: { a: 5, b: 10 }, n: { a: 2 } });
  });

  it("an old or duplicated op cannot lower or double a total", () => {
    const a1 = makeCounterOp(undefined, "c", 3, A, 1, T);
    const a2 = makeCounterOp(apply1(undefined, a1), "c", 4, A, 2, T);
    const s = apply1(apply1(undefined, a2), a1);
    expect(counterValue(s)).toBe(7);
    expect(apply1(s, a2)).toEqual(s);
  });

  it("a never-written counter is 0 and zero deltas leave no entries", () => {
    expect(counterValue(undefined)).toBe(0);
    expect(apply1(undefined, makeCounterOp(undefined, "c", 0, A, 1, T))).toEqual({ p: {}, n: {} });
    expect(() => makeCounterOp(undefined, "c", 0.5, A, 1, T)).toThrow();
  });

  it("a write executed at two origins under one key counts once: the later copy is left out", () => {
    const K = { key: "K", requestHash: "h" };
    const first = { ...makeCounterOp(undefined, "c", 5, B, 1, { wallMs: 1, logical: 0 }), idem: K };
    const retry = { ...makeCounterOp(undefined, "c", 5, A, 1, { wallMs: 2, logical: 0 }), idem: K };
    const s = stateOf([retry, first]);
    expect(s).toEqual(stateOf([first, retry, first]));
    expect(counterValue(s)).toBe(5);
    expect(s).toEqual({
      p: { a: 5, b: 5 },
      n: {},
      keyed: [{ key: "K", requestHash: "h", copies: [{ origin: "b", seq: 1, hlc: { wallMs: 1, logical: 0 }, delta: 5 }, { origin: "a", seq: 1, hlc: { wallMs: 2, logical: 0 }, delta: 5 }] }],
    });
    // A counter without keyed writes keeps today's form: no copies, no folded.
    expect(JSON.stringify(stateOf([makeCounterOp(undefined, "c", 5, A, 1, T)]))).toBe('{"p":{"a":5},"n":{}}');
  });
});

describe("pn-counter: properties", () => {
  it("storage's JSON round trip gives back an equal state", () => {
    fc.assert(
      fc.property(counterOpsArb, (ops) => {
        const s = stateOf(ops.filter((op) => op.key === "k1"));
        expect(JSON.parse(JSON.stringify(s))).toEqual(s);
        expect(counterValue(JSON.parse(JSON.stringify(s)) as CounterState)).toBe(counterValue(s));
      }),
    );
  });

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
          expect(JSON.stringify(stateOf(deliver(mine, d2)))).toBe(JSON.stringify(s));
          expect(counterValue(s)).toBe(countedOnce(mine));
          // Canonical form: no zero entries, keys sorted, copies winner first.
          for (const totals of [s.p, s.n]) {
            expect(Object.values(totals).every((v) => v > 0)).toBe(true);
            expect(Object.keys(totals)).toEqual(Object.keys(totals).sort());
          }
          const keys = (s.keyed ?? []).map((e) => e.key);
          expect(keys).toEqual([...new Set(keys)].sort());
          for (const { copies } of s.keyed ?? []) {
            expect(copies.length).toBeGreaterThan(0);
            for (let i = 1; i < copies.length; i++) expect(copyLoses(copies[i]!, copies[i - 1]!)).toBe(true);
          }
          expect(s.folded).toBeUndefined();
        }
      }),
    );
  });
});
