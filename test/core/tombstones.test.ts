// The kv tombstone rules of compaction.ts: when a tombstone may be dropped,
// the horizon that waits for the ops concurrent with it, and the swept
// context that makes a later write supersede a tombstone a replica still
// keeps, so replicas that drop it at different moments hold the same register.

import { describe, expect, it } from "vitest";
import { planTombstoneSweep, tombstoneDroppable, tombstoneHorizonNow } from "../../src/core/compaction.js";
import { applyKv } from "../../src/core/crdt/lww.js";
import { asNodeId } from "../../src/core/ids.js";
import type { KvRegister } from "../../src/core/op.js";
import { makeKvOp } from "../../src/core/write.js";

const A = asNodeId("a-1");
const B = asNodeId("b-1");
const C = asNodeId("c-1");
const hlc = (wallMs: number) => ({ wallMs, logical: 0 });
const regOf = (...ops: ReturnType<typeof makeKvOp>[]): KvRegister => {
  let reg: KvRegister | undefined;
  for (const op of ops) reg = applyKv(reg, op).reg;
  return reg as KvRegister;
};

describe("tombstoneDroppable", () => {
  const del = makeKvOp(undefined, "k", null, A, 3, hlc(10));
  it("takes a register of deletes whose whole context is covered", () => {
    expect(tombstoneDroppable(regOf(del), { [A]: 3 })).toBe(true);
    expect(tombstoneDroppable(regOf(del), { [A]: 2 })).toBe(false);
  });
  it("keeps a register with a live sibling, and one whose context is not covered", () => {
    const live = makeKvOp(undefined, "k", "1", B, 1, hlc(5));
    const both = regOf(del, live);
    expect(both.siblings.length).toBe(2);
    expect(tombstoneDroppable(both, { [A]: 9, [B]: 9 })).toBe(false);
    const afterB = makeKvOp(regOf(live), "k", null, A, 4, hlc(11));
    expect(tombstoneDroppable(regOf(live, afterB), { [A]: 4 })).toBe(false);
    expect(tombstoneDroppable(regOf(live, afterB), { [A]: 4, [B]: 1 })).toBe(true);
    expect(tombstoneDroppable({ siblings: [] }, { [A]: 4 })).toBe(false);
  });
});

describe("the tombstone horizon", () => {
  it("is none until every member was heard since start", () => {
    expect(tombstoneHorizonNow(A, { [A]: 5 }, [{ node: B, vv: { [A]: 5, [B]: 2 }, heard: false }])).toBeNull();
    expect(tombstoneHorizonNow(A, { [A]: 5, [B]: 2 }, [{ node: B, vv: { [A]: 4, [B]: 7 }, heard: true }])).toEqual({
      covered: { [A]: 4, [B]: 2 },
      until: { [A]: 5, [B]: 7 },
    });
  });

  it("sweeps only once the frontier passes every member's own seq of the kept horizon, and never past the floor", () => {
    const kept = { covered: { [A]: 4, [B]: 2 }, until: { [A]: 5, [B]: 7 } };
    // B's ops up to 7 (some maybe concurrent with a tombstone under `covered`) are not everywhere yet.
    const early = { covered: { [A]: 6, [B]: 6 }, until: { [A]: 6, [B]: 9 } };
    expect(planTombstoneSweep(kept, early, { [A]: 9, [B]: 9 })).toEqual({ sweep: null, next: kept });
    const later = { covered: { [A]: 6, [B]: 7 }, until: { [A]: 6, [B]: 9 } };
    expect(planTombstoneSweep(kept, later, { [A]: 9, [B]: 9 })).toEqual({ sweep: { [A]: 4, [B]: 2 }, next: later });
    expect(planTombstoneSweep(kept, later, { [A]: 3 })).toEqual({ sweep: { [A]: 3 }, next: later });
    // Nothing compacted: nothing to sweep yet, but the round moves on.
    expect(planTombstoneSweep(kept, later, {})).toEqual({ sweep: null, next: later });
    // The first round only takes a horizon; a silent member keeps the kept one.
    expect(planTombstoneSweep(null, later, { [A]: 9 })).toEqual({ sweep: null, next: later });
    expect(planTombstoneSweep(kept, null, { [A]: 9 })).toEqual({ sweep: null, next: kept });
  });
});

describe("a write to a key whose tombstone was dropped", () => {
  const del = makeKvOp(undefined, "k", null, A, 3, hlc(10));
  const kept = regOf(del);

  it("supersedes the tombstone on a replica that still keeps it: both replicas hold the same register", () => {
    // b-1 dropped the tombstone under swept {a-1: 3}, then takes a write of k.
    const w = makeKvOp(undefined, "k", "2", B, 1, hlc(20), { [A]: 3 });
    expect(w.vv).toEqual({ [A]: 3, [B]: 1 });
    const atDropped = applyKv(undefined, w);
    const atKept = applyKv(kept, w);
    expect(atKept.reg).toEqual(atDropped.reg);
    expect(atKept.conflicts).toEqual([]);
  });

  it("without the swept context would stand beside the tombstone as a conflict (why the context is needed)", () => {
    const w = makeKvOp(undefined, "k", "2", B, 1, hlc(20));
    const atKept = applyKv(kept, w);
    expect(atKept.reg.siblings.length).toBe(2);
    expect(atKept.reg).not.toEqual(applyKv(undefined, w).reg);
  });

  it("a write to a key this node holds, newer than the swept vector, keeps the key's own context", () => {
    const live = makeKvOp(undefined, "k", "1", B, 10, hlc(5));
    expect(makeKvOp(regOf(live), "k", "3", A, 4, hlc(30), { [A]: 3, [B]: 9 }).vv).toEqual({ [A]: 4, [B]: 10 });
  });

  it("a write to a key whose version is only its dot and under the swept vector (perhaps folded) claims the swept vector too", () => {
    const stable = makeKvOp(undefined, "k", "1", B, 1, hlc(5));
    expect(makeKvOp(regOf(stable), "k", "3", A, 4, hlc(30), { [A]: 3, [B]: 9, [C]: 2 }).vv).toEqual({ [A]: 4, [B]: 9, [C]: 2 });
  });
});
