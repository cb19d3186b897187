// The kv register: version vectors decide overwrites, (hlc, node, seq) decides
// races, conflicts are recorded exactly for races, and the state is a
// lattice (merge is commutative, associative, idempotent) that does not depend
// on delivery order.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyKv, kvContext, mergeKv, readKv } from "../../src/core/crdt/lww.js";
import { HLC_ZERO, type Hlc } from "../../src/core/hlc.js";
import { asNodeId } from "../../src/core/ids.js";
import type { Conflict, KvOp, KvRegister } from "../../src/core/op.js";
import { compareVv, dominates } from "../../src/core/version-vector.js";
import { makeKvOp } from "../../src/core/write.js";
import { deliver, deliveryArb, historyArb, runHistory, type ClockMode } from "./arbitraries.js";

const A = asNodeId("a");
const B = asNodeId("b");
const C = asNodeId("c");
const hlc = (wallMs: number, logical = 0): Hlc => ({ wallMs, logical });

function fold(ops: readonly KvOp[]): { reg: KvRegister | undefined; conflicts: Conflict[] } {
  let reg: KvRegister | undefined;
  const conflicts: Conflict[] = [];
  for (const op of ops) {
    const r = applyKv(reg, op);
    reg = r.reg;
    conflicts.push(...r.conflicts);
  }
  return { reg, conflicts };
}

const regOf = (ops: readonly KvOp[]): KvRegister => fold(ops).reg ?? { siblings: [] };

interface Ranked {
  readonly hlc: Hlc;
  readonly origin: string;
  readonly seq: number;
}

/** Independent total order: hlc, then node id, then seq. */
function wins(x: Ranked, y: Ranked): boolean {
  if (x.hlc.wallMs !== y.hlc.wallMs) return x.hlc.wallMs > y.hlc.wallMs;
  if (x.hlc.logical !== y.hlc.logical) return x.hlc.logical > y.hlc.logical;
  if (x.origin !== y.origin) return x.origin > y.origin;
  return x.seq > y.seq;
}

const kvOpsArb = (clock: ClockMode) =>
  historyArb(["kv"], 24).map((h) => runHistory(h, clock).ops.filter((op): op is KvOp => op.ns === "kv"));

/** Ops of one key and three subsets of them, as registers. */
const threeRegsArb = fc
  .tuple(kvOpsArb("free"), fc.array(fc.nat({ max: 2 }), { minLength: 40, maxLength: 40 }))
  .map(([ops, pick]) => {
    const byKey = ops.filter((op) => op.key === "k1");
    const part = (n: number) => byKey.filter((_, i) => pick[i % pick.length] !== n);
    return [regOf(part(0)), regOf(part(1)), regOf(part(2))] as const;
  });

describe("lww register: examples", () => {
  it("a causal overwrite replaces the old version and is not a conflict", () => {
    const w1 = makeKvOp(undefined, "k", '"v1"', A, 1, hlc(10));
    const r1 = applyKv(undefined, w1);
    // b saw w1; its clock is behind, yet it overwrites.
    const w2 = makeKvOp(r1.reg, "k", '"v2"', B, 1, hlc(5));
    const r2 = applyKv(r1.reg, w2);
    expect(r2.conflicts).toEqual([]);
    expect(r2.reg.siblings).toHaveLength(1);
    expect(readKv(r2.reg)?.valueJson).toBe('"v2"');
    expect(kvContext(r2.reg)).toEqual({ a: 1, b: 1 });
  });

  it("concurrent writes are a conflict won by the higher hlc, then node id", () => {
    const wa = makeKvOp(undefined, "k", "1", A, 1, hlc(7));
    const wb = makeKvOp(undefined, "k", "2", B, 1, hlc(7));
    const r = applyKv(applyKv(undefined, wa).reg, wb);
    expect(r.conflicts).toEqual([{ key: "k", winner: { hlc: hlc(7), node: B }, loser: { hlc: hlc(7), node: A }, at: hlc(7) }]);
    expect(readKv(r.reg)?.valueJson).toBe("2");
    expect(r.reg.siblings.map((s) => s.origin)).toEqual([B, A]);
    // A write that saw both siblings resolves them.
    const wc = makeKvOp(r.reg, "k", "3", C, 1, hlc(1));
    const r2 = applyKv(r.reg, wc);
    expect(r2.conflicts).toEqual([]);
    expect(r2.reg.siblings.map((s) => s.valueJson)).toEqual(["3"]);
  });

  it("a stale or duplicate op changes nothing", () => {
    const w1 = makeKvOp(undefined, "k", "1", A, 1, hlc(1));
    const r1 = applyKv(undefined, w1);
    const w2 = makeKvOp(r1.reg, "k", "2", A, 2, hlc(2));
    const r2 = applyKv(r1.reg, w2);
    expect(applyKv(r2.reg, w1)).toEqual({ reg: r2.reg, conflicts: [], changed: false });
    expect(applyKv(r2.reg, w2).changed).toBe(false);
  });

  it("a delete is a tombstone that wins like any write", () => {
    const w1 = makeKvOp(undefined, "k", "1", A, 1, hlc(1));
    const r1 = applyKv(undefined, w1);
    const del = makeKvOp(r1.reg, "k", null, A, 2, hlc(2));
    expect(readKv(applyKv(r1.reg, del).reg)).toMatchObject({ valueJson: null, origin: A, seq: 2 });
    expect(readKv(undefined)).toBeUndefined();
  });
});

describe("lww register: properties", () => {
  it("merge is commutative, associative and idempotent", () => {
    fc.assert(
      fc.property(threeRegsArb, ([a, b, c]) => {
        expect(mergeKv(a, b)).toEqual(mergeKv(b, a));
        expect(mergeKv(mergeKv(a, b), c)).toEqual(mergeKv(a, mergeKv(b, c)));
        expect(mergeKv(a, a)).toEqual(a);
        expect(mergeKv(a, { siblings: [] })).toEqual(a);
      }),
    );
  });

  it("applying ops agrees with merging states (apply is a join with the op)", () => {
    fc.assert(
      fc.property(kvOpsArb("free"), fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), (ops, pick) => {
        const k1 = ops.filter((op) => op.key === "k1");
        const left = k1.filter((_, i) => pick[i] === true);
        const right = k1.filter((_, i) => pick[i] !== true);
        expect(mergeKv(regOf(left), regOf(right))).toEqual(regOf(k1));
      }),
    );
  });

  it("any delivery order, with duplicates, gives the same register and the same winner", () => {
    fc.assert(
      fc.property(kvOpsArb("free"), deliveryArb, deliveryArb, (ops, d1, d2) => {
        for (const key of new Set(ops.map((op) => op.key))) {
          const mine = ops.filter((op) => op.key === key);
          const r1 = regOf(deliver(mine, d1));
          expect(regOf(deliver(mine, d2))).toEqual(r1);
          // Oracle: the winner is the highest of the versions no other version saw past.
          const maximal = mine.filter((x) => !mine.some((y) => y !== x && compareVv(y.vv, x.vv) === "after"));
          const best = maximal.reduce((w, x) => (wins(x, w) ? x : w));
          expect(readKv(r1)).toMatchObject({ origin: best.origin, seq: best.seq, valueJson: best.valueJson });
          expect(r1.siblings.map((s) => `${s.origin}:${s.seq}`).sort()).toEqual(maximal.map((s) => `${s.origin}:${s.seq}`).sort());
        }
      }),
    );
  });

  it("a causally later write always wins, even with a smaller hlc", () => {
    fc.assert(
      fc.property(kvOpsArb("free"), deliveryArb, fc.constantFrom(...["n1", "n2", "n3", "n4"].map(asNodeId)), (ops, d, writer) => {
        const k1 = ops.filter((op) => op.key === "k1");
        const reg = regOf(k1);
        const seq = 1 + Math.max(0, ...ops.filter((op) => op.origin === writer).map((op) => op.seq));
        // HLC_ZERO is below every hlc the history used (drawn wall times start at 1).
        const later = makeKvOp(reg, "k1", '"later"', writer, seq, HLC_ZERO);
        const r = applyKv(reg, later);
        expect(r.conflicts).toEqual([]);
        expect(r.reg.siblings).toHaveLength(1);
        expect(readKv(r.reg)).toMatchObject({ origin: writer, seq, valueJson: '"later"' });
        // Whatever order the older ops arrive in, around it, the later write stays the only version.
        expect(regOf(deliver([...k1, later], d))).toEqual(r.reg);
      }),
    );
  });

  it("a conflict is recorded exactly when an arriving version races a current one", () => {
    fc.assert(
      fc.property(kvOpsArb("free"), deliveryArb, (ops, d) => {
        const order = deliver(ops, d);
        const got: string[] = [];
        const regs = new Map<string, KvRegister>();
        for (const op of order) {
          const r = applyKv(regs.get(op.key), op);
          regs.set(op.key, r.reg);
          for (const c of r.conflicts) {
            expect(c.key).toBe(op.key);
            expect(c.at).toEqual(op.hlc);
            got.push(`${c.key} ${c.winner.node}@${c.winner.hlc.wallMs} > ${c.loser.node}@${c.loser.hlc.wallMs}`);
          }
        }
        // Brute force from the vectors alone: when op k first arrives, it is stale if an earlier
        // arrival dominates it; otherwise it conflicts with each earlier arrival that nothing
        // earlier has overwritten and that is concurrent with it.
        const want: string[] = [];
        const seen: KvOp[] = [];
        for (const k of order) {
          if (seen.some((j) => j.origin === k.origin && j.seq === k.seq)) continue;
          const before = seen.filter((j) => j.key === k.key);
          seen.push(k);
          if (before.some((j) => dominates(j.vv, k.vv))) continue;
          for (const j of before) {
            const current = !before.some((i) => i !== j && compareVv(i.vv, j.vv) === "after");
            if (!current || compareVv(j.vv, k.vv) !== "concurrent") continue;
            const [w, l] = wins(k, j) ? [k, j] : [j, k];
            want.push(`${k.key} ${w.origin}@${w.hlc.wallMs} > ${l.origin}@${l.hlc.wallMs}`);
          }
        }
        expect(got.sort()).toEqual(want.sort());
        // And whatever the order, two versions left standing side by side were recorded as a conflict.
        for (const [key, reg] of regs) {
          for (const x of reg.siblings) {
            for (const y of reg.siblings) {
              if (x !== y && wins(x, y)) expect(got).toContain(`${key} ${x.origin}@${x.hlc.wallMs} > ${y.origin}@${y.hlc.wallMs}`);
            }
          }
        }
      }),
    );
  });

  it("with real hybrid logical clocks too, replicas agree on the winner", () => {
    fc.assert(
      fc.property(kvOpsArb("hlc"), deliveryArb, (ops, d) => {
        const k1 = ops.filter((op) => op.key === "k1");
        expect(regOf(deliver(k1, d))).toEqual(regOf(k1));
      }),
    );
  });
});
