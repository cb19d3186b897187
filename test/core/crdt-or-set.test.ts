// The OR-set: merge is a lattice join, delivery order and duplicates do not
// matter, a concurrent add beats a remove (add wins), and a remove removes
// every add its writer had seen.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applySet, EMPTY_SET, hasMember, mergeSet, setMembers } from "../../src/core/crdt/or-set.js";
import { asNodeId, type NodeId } from "../../src/core/ids.js";
import { addTag, type OrSetState, type SetOp } from "../../src/core/op.js";
import { makeSetOp } from "../../src/core/write.js";
import { stateOf as replicaState } from "./mem-replica.js";
import { deliver, deliveryArb, historyArb, MEMBERS, NODE_IDS, runHistory, type RunResult } from "./arbitraries.js";

const A = asNodeId("a");
const B = asNodeId("b");
const T = { wallMs: 1, logical: 0 };

const stateOf = (ops: readonly SetOp[]): OrSetState => ops.reduce<OrSetState>((s, op) => applySet(s, op), EMPTY_SET);
const setOps = (r: RunResult): SetOp[] => r.ops.filter((op): op is SetOp => op.ns === "sets");

const setRunArb = historyArb(["set"], 24).map((h) => runHistory(h));
const setOpsArb = setRunArb.map(setOps);

const threeStatesArb = fc
  .tuple(setOpsArb, fc.array(fc.nat({ max: 2 }), { minLength: 40, maxLength: 40 }))
  .map(([ops, pick]) => {
    const part = (n: number) => ops.filter((op, i) => op.key === "k1" && pick[i % pick.length] !== n);
    return [stateOf(part(0)), stateOf(part(1)), stateOf(part(2))] as const;
  });

/** Brute force from the ops: a member is in when one of its add-tags was never named by a remove. */
function oracleMembers(ops: readonly SetOp[]): string[] {
  const removed = new Set(ops.flatMap((op) => op.remove.flatMap((r) => r.tags)));
  const members = new Set<string>();
  for (const op of ops) op.add.forEach((m, i) => removed.has(addTag(op.origin, op.seq, i)) || members.add(m));
  return [...members].sort();
}

/** The next free seq of a node, given every op made so far. */
const nextSeq = (ops: readonly SetOp[], node: NodeId): number => 1 + Math.max(0, ...ops.filter((op) => op.origin === node).map((op) => op.seq));

describe("or-set: examples", () => {
  it("adds and observed removes", () => {
    const add = makeSetOp(undefined, "s", ["x", "y", "x"], [], A, 1, T);
    expect(add.add).toEqual(["x", "y"]);
    const s1 = applySet(undefined, add);
    expect(setMembers(s1)).toEqual(["x", "y"]);
    const rm = makeSetOp(s1, "s", [], ["x", "nope"], B, 1, T);
    expect(rm.remove).toEqual([{ member: "x", tags: ["a:1:0"] }]);
    const s2 = applySet(s1, rm);
    expect(setMembers(s2)).toEqual(["y"]);
    expect(s2.removed).toEqual(["a:1:0"]);
  });

  it("add wins over a concurrent remove", () => {
    const s1 = applySet(undefined, makeSetOp(undefined, "s", ["x"], [], A, 1, T));
    const rm = makeSetOp(s1, "s", [], ["x"], A, 2, T); // a removes the add it saw
    const re = makeSetOp(s1, "s", ["x"], [], B, 1, T); // b, concurrently, adds x again
    expect(setMembers(applySet(applySet(s1, rm), re))).toEqual(["x"]);
    expect(setMembers(applySet(applySet(s1, re), rm))).toEqual(["x"]);
  });

  it("a remove that arrives before its add still removes it", () => {
    const add = makeSetOp(undefined, "s", ["x"], [], A, 1, T);
    const rm = makeSetOp(applySet(undefined, add), "s", [], ["x"], B, 1, T);
    const s = applySet(applySet(undefined, rm), add);
    expect(setMembers(s)).toEqual([]);
    expect(s).toEqual(applySet(applySet(undefined, add), rm));
  });

  it("members named like Object.prototype properties are ordinary members", () => {
    const s = applySet(undefined, makeSetOp(undefined, "s", ["__proto__", "constructor", "toString"], [], A, 1, T));
    expect(setMembers(s)).toEqual(["__proto__", "constructor", "toString"]);
    expect(Object.getPrototypeOf(s.entries)).toBe(Object.prototype);
    expect(hasMember(undefined, "constructor")).toBe(false);
    expect(hasMember(EMPTY_SET, "__proto__")).toBe(false);
    const rm = makeSetOp(s, "s", [], ["__proto__"], A, 2, T);
    expect(setMembers(applySet(s, rm))).toEqual(["constructor", "toString"]);
  });
});

describe("or-set: properties", () => {
  it("merge is commutative, associative and idempotent", () => {
    fc.assert(
      fc.property(threeStatesArb, ([a, b, c]) => {
        expect(mergeSet(a, b)).toEqual(mergeSet(b, a));
        expect(mergeSet(mergeSet(a, b), c)).toEqual(mergeSet(a, mergeSet(b, c)));
        expect(mergeSet(a, a)).toEqual(a);
        expect(mergeSet(a, EMPTY_SET)).toEqual(a);
      }),
    );
  });

  it("applying ops agrees with merging states", () => {
    fc.assert(
      fc.property(setOpsArb, fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), (ops, pick) => {
        const k1 = ops.filter((op) => op.key === "k1");
        const left = stateOf(k1.filter((_, i) => pick[i] === true));
        const right = stateOf(k1.filter((_, i) => pick[i] !== true));
        expect(mergeSet(left, right)).toEqual(stateOf(k1));
      }),
    );
  });

  it("any delivery order with duplicates gives the same state, and the members the oracle says", () => {
    fc.assert(
      fc.property(setOpsArb, deliveryArb, deliveryArb, (ops, d1, d2) => {
        for (const key of ["k1", "k2", "k3"]) {
          const mine = ops.filter((op) => op.key === key);
          const s = stateOf(deliver(mine, d1));
          expect(stateOf(deliver(mine, d2))).toEqual(s);
          expect(setMembers(s)).toEqual(oracleMembers(mine));
        }
      }),
    );
  });

  it("add wins: a concurrent add and remove of a member leave it in", () => {
    fc.assert(
      fc.property(setRunArb, fc.nat(), fc.nat(), fc.constantFrom(...MEMBERS), deliveryArb, (run, i, j, member, d) => {
        const ops = setOps(run);
        const remover = run.nodes[i % run.nodes.length];
        const adder = run.nodes[(i + 1 + (j % (run.nodes.length - 1))) % run.nodes.length];
        if (remover === undefined || adder === undefined) throw new Error("unreachable");
        // Neither has seen the other's write: both are made from local states only.
        const rm = makeSetOp(replicaState(remover.replica, "sets", "k1"), "k1", [], [member], remover.id, nextSeq(ops, remover.id), T);
        const add = makeSetOp(replicaState(adder.replica, "sets", "k1"), "k1", [member], [], adder.id, nextSeq(ops, adder.id), T);
        const all = [...ops.filter((op) => op.key === "k1"), rm, add];
        expect(hasMember(stateOf(deliver(all, d)), member)).toBe(true);
      }),
    );
  });

  it("a remove after an observed add removes it (and every add its writer saw)", () => {
    fc.assert(
      fc.property(setOpsArb, fc.constantFrom(...NODE_IDS.slice(0, 2)), fc.constantFrom(...MEMBERS), deliveryArb, (ops, remover, member, d) => {
        const k1 = ops.filter((op) => op.key === "k1");
        // The remover has seen everything (delivered in any order): its remove takes the member out.
        const seen = stateOf(deliver(k1, d));
        const rm = makeSetOp(seen, "k1", [], [member], remover, nextSeq(ops, remover), T);
        const after = stateOf(deliver([...k1, rm], d));
        expect(hasMember(after, member)).toBe(false);
        expect(setMembers(after)).toEqual(setMembers(seen).filter((m) => m !== member));
      }),
    );
  });

  it("a remove made on a partial view removes exactly the adds it saw", () => {
    fc.assert(
      fc.property(setRunArb, fc.nat(), fc.constantFrom(...MEMBERS), deliveryArb, (run, i, member, d) => {
        const ops = setOps(run);
        const node = run.nodes[i % run.nodes.length];
        if (node === undefined) throw new Error("unreachable");
        const local = replicaState(node.replica, "sets", "k1");
        const rm = makeSetOp(local, "k1", [], [member], node.id, nextSeq(ops, node.id), T);
        const k1 = [...ops.filter((op) => op.key === "k1"), rm];
        const after = stateOf(deliver(k1, d));
        const seenTags = new Set(rm.remove.flatMap((r) => r.tags));
        for (const tags of Object.values(after.entries)) for (const t of tags) expect(seenTags.has(t)).toBe(false);
        expect(setMembers(after)).toEqual(oracleMembers(k1));
      }),
    );
  });
});
