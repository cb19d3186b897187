// The replica reducer: duplicates are no-ops, gaps are tracked, and any
// delivery order of the same ops, with duplicates, gives the same replica:
// the convergence the whole system promises after a partition heals.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { counterValue } from "../../src/core/crdt/pn-counter.js";
import { readKv } from "../../src/core/crdt/lww.js";
import { setMembers } from "../../src/core/crdt/or-set.js";
import { asNodeId } from "../../src/core/ids.js";
import { addTag, type Op, type SetOp } from "../../src/core/op.js";
import { apply, applyAll, cloneReplica, emptyReplica, hasApplied, replicaDigest } from "../../src/core/replica.js";
import { makeCounterOp, makeDocOp, makeKvOp, makeSetOp } from "../../src/core/write.js";
import { deliver, deliveryArb, historyArb, replicaOf, runHistory, type ClockMode, type RunResult } from "./arbitraries.js";

const A = asNodeId("a");
const B = asNodeId("b");
const T = { wallMs: 1, logical: 0 };

const allKinds = ["kv", "counter", "set", "doc"] as const;
const runArb = (clock: ClockMode) => historyArb(allKinds, 20).map((h) => runHistory(h, clock));

/** Every node sends all it knows to the first, which sends all to everyone: full anti-entropy. */
function syncAll(run: RunResult): void {
  const [hub, ...rest] = run.nodes;
  if (hub === undefined) return;
  const give = (from: typeof hub, to: typeof hub) => {
    for (const op of from.known) {
      if (hasApplied(to.replica, op)) continue;
      apply(to.replica, op);
      to.known.push(op);
    }
  };
  for (const n of rest) give(n, hub);
  for (const n of rest) give(hub, n);
}

describe("replica: examples", () => {
  it("applies ops of every namespace and reports kv conflicts", () => {
    const r = emptyReplica();
    const wa = makeKvOp(undefined, "k", '"a"', A, 1, { wallMs: 5, logical: 0 });
    const wb = makeKvOp(undefined, "k", '"b"', B, 1, { wallMs: 6, logical: 0 });
    expect(apply(r, wa)).toMatchObject({ applied: true, conflicts: [] });
    const second = apply(r, wb);
    expect(second.conflicts).toEqual([{ key: "k", winner: { hlc: wb.hlc, node: B }, loser: { hlc: wa.hlc, node: A }, at: wb.hlc }]);
    expect(readKv(r.kv.get("k"))?.valueJson).toBe('"b"');

    apply(r, makeCounterOp(undefined, "c", 4, A, 2, T));
    apply(r, makeSetOp(undefined, "s", ["x"], [], A, 3, T));
    const editor = new Y.Doc({ guid: "example" });
    editor.getText("t").insert(0, "hi");
    apply(r, makeDocOp("d", Y.encodeStateAsUpdate(editor), A, 4, T));
    expect(r.vv).toEqual({ a: 4, b: 1 });
    expect(replicaDigest(r)).toMatchObject({
      vv: { a: 4, b: 1 },
      ahead: {},
      kv: { k: { value: '"b"', node: "b", siblings: ["b:1", "a:1"] } },
      counters: { c: { value: 4, p: { a: 4 }, n: {} } },
      sets: { s: ["x"] },
      docs: { d: { content: { t: { list: ["hi"] } } } },
    });
  });

  it("drops duplicates and tracks gaps", () => {
    const r = emptyReplica();
    const ops = [1, 2, 3, 4].map((seq) => makeCounterOp(undefined, "c", 1, A, seq, T));
    const [o1, o2, o3, o4] = ops as [Op, Op, Op, Op];
    apply(r, o3);
    apply(r, o1);
    expect(r.vv).toEqual({ a: 1 });
    expect(replicaDigest(r).ahead).toEqual({ a: [3] });
    expect(hasApplied(r, o2)).toBe(false);
    expect(hasApplied(r, o3)).toBe(true);
    expect(apply(r, o3)).toMatchObject({ applied: false, conflicts: [] });
    apply(r, o2);
    expect(r.vv).toEqual({ a: 3 });
    expect(replicaDigest(r).ahead).toEqual({});
    apply(r, o4);
    expect(r.vv).toEqual({ a: 4 });
  });

  it("mutates the replica it is given; cloneReplica keeps an independent copy", () => {
    const r = emptyReplica();
    apply(r, makeCounterOp(undefined, "c", 1, A, 2, T));
    const copy = cloneReplica(r);
    const res = apply(r, makeCounterOp(undefined, "c", 1, A, 1, T));
    expect(res.state).toBe(r);
    expect(r.vv).toEqual({ a: 2 });
    expect(copy.vv).toEqual({});
    expect(hasApplied(copy, { origin: A, seq: 1 })).toBe(false);
    expect(() => apply(r, { ...makeCounterOp(undefined, "c", 1, A, 1, T), seq: 0 })).toThrow();
  });
});

describe("replica: properties", () => {
  it("any delivery order of all ops, with duplicates, gives the same replica as full anti-entropy", () => {
    fc.assert(
      fc.property(runArb("free"), deliveryArb, deliveryArb, (run, d1, d2) => {
        const r1 = replicaOf(deliver(run.ops, d1));
        const digest = replicaDigest(r1);
        expect(replicaDigest(replicaOf(deliver(run.ops, d2)))).toEqual(digest);
        syncAll(run);
        for (const node of run.nodes) expect(replicaDigest(node.replica)).toEqual(digest);
      }),
    );
  });

  it("converges with real hybrid logical clocks too", () => {
    fc.assert(
      fc.property(runArb("hlc"), deliveryArb, (run, d) => {
        syncAll(run);
        const digest = replicaDigest(replicaOf(deliver(run.ops, d)));
        for (const node of run.nodes) expect(replicaDigest(node.replica)).toEqual(digest);
      }),
    );
  });

  it("counters equal the sum of their deltas and sets hold the members no remove saw added", () => {
    fc.assert(
      fc.property(runArb("free"), deliveryArb, (run, d) => {
        const r = replicaOf(deliver(run.ops, d));
        for (const key of ["k1", "k2", "k3"]) {
          const deltas = run.ops.flatMap((op) => (op.ns === "counters" && op.key === key ? [op.delta] : []));
          expect(counterValue(r.counters.get(key))).toBe(deltas.reduce((a, b) => a + b, 0));
          const setOps = run.ops.filter((op): op is SetOp => op.ns === "sets" && op.key === key);
          const removed = new Set(setOps.flatMap((op) => op.remove.flatMap((x) => x.tags)));
          const members = new Set(setOps.flatMap((op) => op.add.filter((_, i) => !removed.has(addTag(op.origin, op.seq, i)))));
          expect(setMembers(r.sets.get(key))).toEqual([...members].sort());
        }
      }),
    );
  });

  it("duplicates change nothing and report nothing; conflicts are only reported for kv ops", () => {
    fc.assert(
      fc.property(runArb("free"), deliveryArb, (run, d) => {
        const r = emptyReplica();
        const firstSeen = new Set<string>();
        for (const op of deliver(run.ops, { seed: d.seed, dups: d.dups + 4 })) {
          const dot = `${op.origin}:${op.seq}`;
          const before = firstSeen.has(dot) ? replicaDigest(r) : undefined;
          const res = apply(r, op);
          expect(res.applied).toBe(!firstSeen.has(dot));
          if (op.ns !== "kv" || before !== undefined) expect(res.conflicts).toEqual([]);
          if (before !== undefined) expect(replicaDigest(r)).toEqual(before);
          firstSeen.add(dot);
        }
      }),
    );
  });

  it("with any subset delivered, vv is each origin's contiguous prefix and the rest is ahead", () => {
    fc.assert(
      fc.property(runArb("free"), fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }), deliveryArb, (run, keep, d) => {
        const subset = run.ops.filter((_, i) => keep[i % keep.length]);
        const { state, conflicts } = applyAll(emptyReplica(), deliver(subset, d));
        expect(conflicts.every((c) => run.ops.some((op) => op.ns === "kv" && op.key === c.key))).toBe(true);
        const digest = replicaDigest(state);
        for (const node of run.nodes) {
          const seqs = new Set(subset.filter((op) => op.origin === node.id).map((op) => op.seq));
          let prefix = 0;
          while (seqs.has(prefix + 1)) prefix++;
          expect(state.vv[node.id] ?? 0).toBe(prefix);
          const ahead = [...seqs].filter((s) => s > prefix).sort((a, b) => a - b);
          expect(digest.ahead[node.id] ?? []).toEqual(ahead);
          for (let seq = 1; seq <= node.seq; seq++) expect(hasApplied(state, { origin: node.id, seq })).toBe(seqs.has(seq));
        }
      }),
    );
  });
});
