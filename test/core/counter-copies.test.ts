// Which copy of a twice-executed counter write counts (src/core/crdt/counter-copies.ts):
// the order is total, antisymmetric and the same on every replica; and the
// copies a counter keeps expire with the idempotency TTL without changing
// its value, so a counter's state stays bounded.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IDEMPOTENCY_TTL_MS } from "../../src/core/apply/idempotency.js";
import { copyLoses, type WriteCopy } from "../../src/core/crdt/counter-copies.js";
import { applyCounter, counterValue } from "../../src/core/crdt/pn-counter.js";
import type { Hlc } from "../../src/core/hlc.js";
import { asNodeId, type NodeId } from "../../src/core/ids.js";
import type { CounterOp, CounterState } from "../../src/core/op.js";
import { makeCounterOp } from "../../src/core/write.js";

const copy: fc.Arbitrary<WriteCopy> = fc.record({
  hlc: fc.record({ wallMs: fc.integer({ min: 0, max: 5 }), logical: fc.integer({ min: 0, max: 3 }) }),
  origin: fc.constantFrom("r-1", "r-2", "r-3"),
  seq: fc.integer({ min: 1, max: 4 }),
});

describe("which copy of a duplicated write loses", () => {
  it("the later HLC loses, whatever the origin", () => {
    expect(copyLoses({ hlc: { wallMs: 2, logical: 0 }, origin: "a", seq: 1 }, { hlc: { wallMs: 1, logical: 9 }, origin: "z", seq: 9 })).toBe(true);
  });
  it("exactly one of two distinct copies loses (so exactly one counts)", () => {
    fc.assert(
      fc.property(copy, copy, (a, b) => {
        const same = a.hlc.wallMs === b.hlc.wallMs && a.hlc.logical === b.hlc.logical && a.origin === b.origin && a.seq === b.seq;
        if (same) expect(copyLoses(a, b)).toBe(false);
        else expect(Number(copyLoses(a, b)) + Number(copyLoses(b, a))).toBe(1);
      }),
    );
  });
  it("is transitive", () => {
    fc.assert(fc.property(copy, copy, copy, (a, b, c) => {
      if (copyLoses(a, b) && copyLoses(b, c)) expect(copyLoses(a, c)).toBe(true);
    }));
  });
});

const HOUR_MS = 60 * 60 * 1000;
const A = asNodeId("a");
const B = asNodeId("b");

/** Origins taking counter writes on one key, each building on its own running totals. */
function writers() {
  const states = new Map<NodeId, CounterState | undefined>();
  const seqs = new Map<NodeId, number>();
  return (origin: NodeId, delta: number, wallMs: number, idemKey?: string): CounterOp => {
    const seq = (seqs.get(origin) ?? 0) + 1;
    seqs.set(origin, seq);
    const hlc: Hlc = { wallMs, logical: 0 };
    const made = makeCounterOp(states.get(origin), "c", delta, origin, seq, hlc);
    const op = idemKey === undefined ? made : { ...made, idem: { key: idemKey, requestHash: "h" } };
    states.set(origin, applyCounter(states.get(origin), op, IDEMPOTENCY_TTL_MS));
    return op;
  };
}

const keysOf = (s: CounterState): string[] => (s.keyed ?? []).map((e) => e.key);
const applyAll = (ops: readonly CounterOp[], s?: CounterState): CounterState | undefined =>
  ops.reduce<CounterState | undefined>((st, op) => applyCounter(st, op, IDEMPOTENCY_TTL_MS), s);

describe("copies expire with the idempotency TTL", () => {
  it("an op more than the TTL after an entry's newest copy folds it, and the value does not change", () => {
    const write = writers();
    const t0 = 1_700_000_000_000;
    // Two copies of K (the retry at b is the later, losing one) and a lone keyed write L.
    const k1 = write(A, 5, t0, "K");
    const k2 = write(B, 5, t0 + 2 * HOUR_MS, "K");
    const l = write(A, 3, t0 + 3 * HOUR_MS, "L");
    const live = applyAll([k1, k2, l]) as CounterState;
    expect(counterValue(live)).toBe(8);
    expect(keysOf(live)).toEqual(["K", "L"]);
    expect(live.folded).toBeUndefined();

    // Exactly the TTL after K's newest copy: kept.
    const atTtl = applyAll([write(B, 1, k2.hlc.wallMs + IDEMPOTENCY_TTL_MS)], live) as CounterState;
    expect(keysOf(atTtl)).toEqual(["K", "L"]);
    expect(counterValue(atTtl)).toBe(9);
    // One ms later: K is folded (its loser's 5 moves into `folded`), L is not yet due.
    const past = applyAll([write(B, 1, k2.hlc.wallMs + IDEMPOTENCY_TTL_MS + 1)], atTtl) as CounterState;
    expect(keysOf(past)).toEqual(["L"]);
    expect(past.folded).toBe(5);
    expect(counterValue(past)).toBe(10);
    // Past L too: L had no loser, nothing more is folded, and the fields go.
    const later = applyAll([write(A, 0, l.hlc.wallMs + IDEMPOTENCY_TTL_MS + 1)], past) as CounterState;
    expect(later.keyed).toBeUndefined();
    expect(later.folded).toBe(5);
    expect(counterValue(later)).toBe(10);
  });

  it("the honest limit: a copy that arrives after its entry expired counts as a new write", () => {
    const write = writers();
    const t0 = 1_700_000_000_000;
    const k1 = write(A, 5, t0, "K");
    const k2 = write(B, 5, t0 + 1, "K");
    const late = write(A, 1, t0 + IDEMPOTENCY_TTL_MS + 2);
    expect(counterValue(applyAll([k1, k2, late]))).toBe(6);
    // k2 reaches this replica only after K expired here: it counts.
    expect(counterValue(applyAll([k1, late, k2]))).toBe(11);
  });

  it("10,000 keyed writes over ten simulated days leave only the last TTL's entries, and count each write once", () => {
    const write = writers();
    const t0 = 1_700_000_000_000;
    const spanMs = 10 * 24 * HOUR_MS;
    const writesN = 10_000;
    const origins = [A, B, asNodeId("c")];
    let state: CounterState | undefined;
    let expected = 0;
    let lastMs = t0;
    for (let i = 0; i < writesN; i++) {
      const wallMs = t0 + Math.floor((i * spanMs) / writesN);
      const origin = origins[i % origins.length] as NodeId;
      const delta = (i % 7) - 3;
      state = applyAll([write(origin, delta, wallMs, `req-${i}`)], state);
      // Every tenth write is retried at another origin a few seconds later (a failover).
      if (i % 10 === 0) state = applyAll([write(origins[(i + 1) % origins.length] as NodeId, delta, wallMs + 3000, `req-${i}`)], state);
      expected += delta;
      lastMs = wallMs;
    }
    const final = state as CounterState;
    expect(counterValue(final)).toBe(expected);
    const keys = keysOf(final);
    // Live: the writes whose newest copy is at most the TTL older than the last op.
    const liveN = Array.from({ length: writesN }, (_, i) => i).filter((i) => {
      const wallMs = t0 + Math.floor((i * spanMs) / writesN);
      return lastMs - (i % 10 === 0 ? wallMs + 3000 : wallMs) <= IDEMPOTENCY_TTL_MS;
    }).length;
    expect(keys.length).toBe(liveN);
    expect(keys.length).toBeLessThanOrEqual(Math.ceil(writesN / 10) + 2);
    expect(JSON.stringify(final).length).toBeLessThan(200_000);
  });
});
