// The one apply path (src/core/apply/apply.ts), the function the node runs for
// its own writes and for peers' batches: duplicates are no-ops, ops past a gap
// wait for it, and any delivery order of the same ops, with duplicates, gives
// the same replica: the convergence the whole system promises after a
// partition heals. Also the two idempotency rules it applies: the first
// answer to a key is recorded, and a counter write executed at several
// origins counts once (the counter's merge, not a compensating op).

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { admit, applyOps } from "../../src/core/apply/apply.js";
import { counterValue } from "../../src/core/crdt/pn-counter.js";
import { readKv } from "../../src/core/crdt/lww.js";
import { setMembers } from "../../src/core/crdt/or-set.js";
import { asNodeId } from "../../src/core/ids.js";
import type { Hlc } from "../../src/core/hlc.js";
import { addTag, type Op, type OpIdem, type SetOp } from "../../src/core/op.js";
import { makeCounterOp, makeDocOp, makeKvOp, makeSetOp } from "../../src/core/write.js";
import { deliver, deliveryArb, historyArb, runHistory, type ClockMode, type Delivery, type RunResult } from "./arbitraries.js";
import { applyTo, deliverAll, emptyReplica, hasApplied, replicaDigest, replicaOf, stateOf, viewOf, type MemReplica } from "./mem-replica.js";

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
    for (const op of deliverAll(to.replica, from.known)) to.known.push(op);
  };
  for (const n of rest) give(n, hub);
  for (const n of rest) give(hub, n);
}

describe("apply: examples", () => {
  it("a peer's op stamped past the HLC ceiling is stored but does not pull the node's HLC along; its own ops always do", () => {
    const r = emptyReplica();
    const now = 1_000_000;
    const ceiling = { ...viewOf(r), hlcCeilingWallMs: now + 500 };
    const ahead = makeKvOp(undefined, "k", '"ahead"', B, 1, { wallMs: now + 20_000, logical: 0 });
    const out = applyOps(ceiling, [ahead]);
    expect(out.ops).toEqual([ahead]);
    expect(out.hlc).toEqual(r.hlc);
    // Within the ceiling it is adopted, as without one.
    const near = makeKvOp(undefined, "j", '"near"', B, 2, { wallMs: now + 400, logical: 3 });
    expect(applyOps(ceiling, [ahead, near]).hlc).toEqual(near.hlc);
    expect(applyOps(viewOf(r), [ahead]).hlc).toEqual(ahead.hlc);
    // Its own op (replayed from its log, say) keeps the node's HLC ordering its ops.
    const own = makeKvOp(undefined, "k", '"own"', r.self, 1, { wallMs: now + 20_000, logical: 0 });
    expect(applyOps(ceiling, [own]).hlc).toEqual(own.hlc);
  });

  it("applies ops of every namespace and reports kv conflicts", () => {
    const r = emptyReplica();
    const wa = makeKvOp(undefined, "k", '"a"', A, 1, { wallMs: 5, logical: 0 });
    const wb = makeKvOp(undefined, "k", '"b"', B, 1, { wallMs: 6, logical: 0 });
    expect(applyTo(r, [wa])).toMatchObject({ ops: [wa], conflicts: [] });
    const second = applyTo(r, [wb]);
    expect(second.conflicts).toEqual([{ key: "k", winner: { hlc: wb.hlc, node: B }, loser: { hlc: wa.hlc, node: A }, at: wb.hlc }]);
    expect(readKv(stateOf(r, "kv", "k"))?.valueJson).toBe('"b"');

    applyTo(r, [makeCounterOp(undefined, "c", 4, A, 2, T), makeSetOp(undefined, "s", ["x"], [], A, 3, T)]);
    const editor = new Y.Doc({ guid: "example" });
    editor.getText("t").insert(0, "hi");
    const rows = applyTo(r, [makeDocOp("d", Y.encodeStateAsUpdate(editor), A, 4, T)]).rows;
    expect(Object.keys(rows)).toEqual(["docs"]);
    expect(r.vv).toEqual({ a: 4, b: 1 });
    expect(replicaDigest(r)).toMatchObject({
      vv: { a: 4, b: 1 },
      kv: { k: { value: '"b"', node: "b", siblings: ["b:1", "a:1"] } },
      counters: { c: { value: 4, p: { a: 4 }, n: {} } },
      sets: { s: ["x"] },
      docs: { d: { content: { t: { list: ["hi"] } } } },
    });
  });

  it("drops duplicates and ops past a gap; the vector moves only by the next seq", () => {
    const r = emptyReplica();
    // Each +1 carries A's running total, as A's write path would build it.
    const [o1, o2, o3, o4] = [1, 2, 3, 4].map((seq) => ({ ...makeCounterOp(undefined, "c", 1, A, seq, T), pTotal: seq })) as [Op, Op, Op, Op];
    expect(admit(r.vv, o3)).toBe("gap");
    expect(applyTo(r, [o3]).ops).toEqual([]);
    expect(applyTo(r, [o1, o1]).ops).toEqual([o1]);
    expect(r.vv).toEqual({ a: 1 });
    expect(hasApplied(r, o3)).toBe(false);
    expect(admit(r.vv, o1)).toBe("duplicate");
    // One batch may carry a run: each op is admitted against the vector the ones before it made.
    expect(applyTo(r, [o2, o4, o3, o4]).ops).toEqual([o2, o3, o4]);
    expect(r.vv).toEqual({ a: 4 });
    expect(counterValue(stateOf(r, "counters", "c"))).toBe(4);
    expect(() => admit(r.vv, { origin: A, seq: 0 })).toThrow();
  });

  it("reads its view and changes nothing: the caller performs the outcome", () => {
    const r = emptyReplica();
    applyTo(r, [makeCounterOp(undefined, "c", 1, A, 1, T)]);
    const before = replicaDigest(r);
    const view = viewOf(r);
    const op = makeCounterOp(stateOf(r, "counters", "c"), "c", 2, A, 2, T);
    const first = applyOps(view, [op]);
    expect(applyOps(view, [op])).toEqual(first);
    expect(replicaDigest(r)).toEqual(before);
    expect(first).toMatchObject({ vv: { a: 2 }, vvChanged: { a: 2 }, ops: [op] });
  });
});

describe("apply: properties", () => {
  it("any delivery order of all ops, with duplicates, gives the same replica as full anti-entropy", () => {
    fc.assert(
      fc.property(runArb("free"), deliveryArb, deliveryArb, (run, d1, d2) => {
        const digest = replicaDigest(replicaOf(deliver(run.ops, d1)));
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
          expect(counterValue(stateOf(r, "counters", key))).toBe(deltas.reduce((a, b) => a + b, 0));
          const setOps = run.ops.filter((op): op is SetOp => op.ns === "sets" && op.key === key);
          const removed = new Set(setOps.flatMap((op) => op.remove.flatMap((x) => x.tags)));
          const members = new Set(setOps.flatMap((op) => op.add.filter((_, i) => !removed.has(addTag(op.origin, op.seq, i)))));
          expect(setMembers(stateOf(r, "sets", key))).toEqual([...members].sort());
        }
      }),
    );
  });

  it("duplicates change nothing and report nothing; conflicts are only reported for kv ops", () => {
    fc.assert(
      fc.property(runArb("free"), deliveryArb, (run, d) => {
        const r = emptyReplica();
        const seen = new Set<string>();
        const ops = deliver(run.ops, { seed: d.seed, dups: d.dups + 4 });
        for (let pass = 0; pass <= ops.length && seen.size < run.ops.length; pass++) {
          for (const op of ops) {
            const dot = `${op.origin}:${op.seq}`;
            const before = seen.has(dot) ? replicaDigest(r) : undefined;
            const next = admit(r.vv, op) === "next";
            if (next) expect(seen.has(dot)).toBe(false);
            const res = applyTo(r, [op]);
            expect(res.ops.length).toBe(next ? 1 : 0);
            if (op.ns !== "kv" || before !== undefined) expect(res.conflicts).toEqual([]);
            if (before !== undefined) expect(replicaDigest(r)).toEqual(before);
            if (res.ops.length === 1) seen.add(dot);
          }
        }
        expect(seen.size).toBe(run.ops.length);
      }),
    );
  });

  it("with any subset delivered, vv is each origin's gap-free prefix and nothing past a gap is applied", () => {
    fc.assert(
      fc.property(runArb("free"), fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }), deliveryArb, (run, keep, d) => {
        const subset = run.ops.filter((_, i) => keep[i % keep.length]);
        const r = emptyReplica();
        const applied = deliverAll(r, deliver(subset, d));
        for (const node of run.nodes) {
          const seqs = new Set(subset.filter((op) => op.origin === node.id).map((op) => op.seq));
          let prefix = 0;
          while (seqs.has(prefix + 1)) prefix++;
          expect(r.vv[node.id] ?? 0).toBe(prefix);
          expect(applied.filter((op) => op.origin === node.id).map((op) => op.seq)).toEqual(Array.from({ length: prefix }, (_, i) => i + 1));
          for (let seq = 1; seq <= node.seq; seq++) expect(hasApplied(r, { origin: node.id, seq })).toBe(seq <= prefix);
        }
      }),
    );
  });
});

describe("apply: idempotency", () => {
  const K = { key: "K", requestHash: "h" };
  const origins = [A, B, asNodeId("c")] as const;

  it("records the first answer applied for a key; later copies under the key record nothing", () => {
    const copyArb = fc.record({ origin: fc.constantFrom(0, 1, 2), wallMs: fc.integer({ min: 1, max: 5 }), counter: fc.boolean() });
    fc.assert(
      fc.property(fc.array(copyArb, { minLength: 1, maxLength: 6 }), deliveryArb, (copies, d) => {
        const seqs = [0, 0, 0];
        const ops: Op[] = copies.map((c) => {
          const origin = origins[c.origin] as (typeof origins)[number];
          const seq = ++seqs[c.origin]!;
          const hlc = { wallMs: c.wallMs, logical: 0 };
          const op = c.counter ? makeCounterOp(undefined, "c", 1, origin, seq, hlc) : makeKvOp(undefined, "k", "1", origin, seq, hlc);
          return { ...op, idem: K };
        });
        const r = emptyReplica();
        const applied = deliverAll(r, deliver(ops, d));
        const first = applied[0] as Op;
        expect(r.records.size).toBe(1);
        expect(JSON.parse(r.records.get("K")?.body ?? "null")).toMatchObject({ token: `${first.origin}:${first.seq}` });
        expect(r.records.get("K")?.createdAtMs).toBe(first.hlc.wallMs);
      }),
    );
  });

  it("a counter write executed at two origins under one key counts once on every replica, in any delivery order", () => {
    const arb = fc.record({
      delta: fc.integer({ min: -5, max: 5 }).filter((x) => x !== 0),
      wallA: fc.integer({ min: 1, max: 4 }),
      wallB: fc.integer({ min: 1, max: 4 }),
      bFirst: fc.boolean(),
      d: deliveryArb,
    });
    fc.assert(
      fc.property(arb, ({ delta, wallA, wallB, bFirst, d }) => {
        const a = emptyReplica(A);
        const b = emptyReplica(B);
        // Each origin takes the write without having seen the other's copy (a failover).
        const known = new Map<typeof a, Op[]>([[a, []], [b, []]]);
        for (const [r, wallMs] of [[a, wallA], [b, wallB]] as const) {
          const op = { ...makeCounterOp(undefined, "c", delta, r.self, 1, { wallMs, logical: 0 }), idem: K };
          known.get(r)?.push(...applyTo(r, [op]).ops);
        }
        // Exchange until neither learns anything. The merge leaves the losing
        // copy out, so nobody writes anything more: no compensation op.
        const pair = bFirst ? ([[a, b], [b, a]] as const) : ([[b, a], [a, b]] as const);
        for (let round = 0; round < 2; round++) {
          for (const [from, to] of pair) known.get(to)?.push(...deliverAll(to, [...(known.get(from) ?? [])]));
        }
        const all = [...(known.get(a) ?? [])];
        expect(new Set(all.map((op) => `${op.origin}:${op.seq}`)).size).toBe(2);
        expect(a.seq + b.seq).toBe(2);
        const observer = replicaOf(deliver(all, d));
        for (const r of [a, b, observer]) {
          expect(stateOf(r, "counters", "c")).toEqual(stateOf(a, "counters", "c"));
          expect(counterValue(stateOf(r, "counters", "c"))).toBe(delta);
        }
      }),
    );
  });

  it("N copies of one keyed counter write at up to 3 origins, with unrelated ops, count once and give equal states on every replica", () => {
    // Each origin takes its copies cut off from the others (failovers), plus
    // unkeyed deltas to the same counter and a keyed write to another one.
    const writeArb = fc.record({ origin: fc.nat({ max: 2 }), wallMs: fc.integer({ min: 1, max: 6 }), logical: fc.nat({ max: 2 }) });
    const arb = fc.record({
      delta: fc.integer({ min: -5, max: 5 }).filter((x) => x !== 0),
      others: fc.array(writeArb, { maxLength: 6 }),
      copies: fc.array(writeArb, { minLength: 1, maxLength: 4 }),
      deliveries: fc.array(deliveryArb, { minLength: 5, maxLength: 5 }),
    });
    fc.assert(
      fc.property(arb, ({ delta, others, copies, deliveries }) => {
        const origins3 = origins.map((o) => emptyReplica(o));
        let expected = delta;
        const take = (r: MemReplica, key: string, d: number, hlc: Hlc, idem?: OpIdem) => {
          const op = makeCounterOp(stateOf(r, "counters", key), key, d, r.self, r.seq + 1, hlc);
          applyTo(r, [idem === undefined ? op : { ...op, idem }]);
        };
        const writes = [...others.map((w) => ({ kind: "other" as const, ...w })), ...copies.map((c) => ({ kind: "copy" as const, ...c }))];
        for (const [i, s] of writes.entries()) {
          const r = origins3[s.origin] as MemReplica;
          const hlc = { wallMs: s.wallMs, logical: s.logical };
          if (s.kind === "copy") {
            take(r, "c", delta, hlc, K);
          } else {
            take(r, "c", i + 1, hlc);
            take(r, "other", 1, hlc, { key: `other-${i}`, requestHash: "h" });
            expected += i + 1;
          }
        }
        // Every replica (the origins and two observers) gets every op it lacks,
        // in its own order with duplicates, until no replica learns anything.
        const replicas = [...origins3, emptyReplica(asNodeId("x")), emptyReplica(asNodeId("y"))];
        const known = new Map(replicas.map((r) => [r, [...r.own.values()]]));
        for (let round = 0, learned = true; learned; round++) {
          expect(round).toBeLessThan(6);
          learned = false;
          const all = [...new Set(replicas.flatMap((r) => known.get(r) ?? []))];
          for (const [i, r] of replicas.entries()) {
            const got = deliverAll(r, deliver(all, deliveries[i] as Delivery));
            if (got.length > 0) learned = true;
            known.get(r)?.push(...got);
          }
        }
        const state = stateOf(replicas[0] as MemReplica, "counters", "c");
        for (const r of replicas) {
          expect(stateOf(r, "counters", "c")).toEqual(state);
          expect(counterValue(stateOf(r, "counters", "c"))).toBe(expected);
        }
      }),
    );
  });
});
