// Shared fast-check arbitraries for the core CRDT tests. Ops are not drawn at
// random field by field: a small cluster of simulated replicas builds ops with
// the namespace table's build (as the node's write path does) against its own
// local state, applies them with the node's applyOps (mem-replica.ts), and
// exchanges ops at random points (whole or partial, so causal gaps happen), so
// version vectors, observed tags, counter totals and Yjs updates look like
// production ones.
// The arbitrary only draws the commands; `runHistory` plays them
// deterministically, so a failure shrinks to a short command list.

import fc from "fast-check";
import * as Y from "yjs";
import { observe, tick, type Hlc } from "../../src/core/hlc.js";
import { asNodeId, type NodeId } from "../../src/core/ids.js";
import type { Op } from "../../src/core/op.js";
import { buildOp } from "../../src/core/apply/table.js";
import { isBuildRefusal, type BuildRefusal } from "../../src/core/apply/types.js";
import { mulberry32 } from "../../src/core/prng.js";
import { applyTo, emptyReplica, hasApplied, stateOf, type MemReplica } from "./mem-replica.js";

export { replicaOf } from "./mem-replica.js";

export const NODE_IDS: readonly NodeId[] = ["n1", "n2", "n3", "n4"].map(asNodeId);
export const KEYS = ["k1", "k2", "k3"] as const;
/** Includes names that are special on plain JS objects. */
export const MEMBERS = ["a", "b", "c", "__proto__", "constructor"] as const;

export type DocEdit =
  | { readonly kind: "insert"; readonly pos: number; readonly text: string }
  | { readonly kind: "delete"; readonly pos: number; readonly len: number }
  | { readonly kind: "mapSet"; readonly field: string; readonly value: number }
  | { readonly kind: "mapDelete"; readonly field: string };

/** One command of a history. Node indices are taken modulo the node count. */
export type Step =
  | { readonly t: "kv"; readonly node: number; readonly key: string; readonly value: number | null; readonly wallMs: number }
  | { readonly t: "counter"; readonly node: number; readonly key: string; readonly delta: number; readonly wallMs: number }
  | { readonly t: "set"; readonly node: number; readonly key: string; readonly add: string[]; readonly remove: string[]; readonly wallMs: number }
  | { readonly t: "doc"; readonly node: number; readonly key: string; readonly edit: DocEdit; readonly wallMs: number }
  /** Deliver what `from` knows to `to`; `mask` -1 delivers all, else op i only when bit i%30 is set. */
  | { readonly t: "sync"; readonly from: number; readonly to: number; readonly mask: number };

export interface History {
  readonly nodeCount: number;
  readonly steps: readonly Step[];
}

export type Kind = "kv" | "counter" | "set" | "doc";

const nodeArb = fc.nat({ max: 3 });
const keyArb = fc.constantFrom(...KEYS);
// A tiny range, from 1 so HLC_ZERO is below all: equal HLCs and backwards clocks are common.
const wallArb = fc.integer({ min: 1, max: 7 });
const memberArb = fc.constantFrom(...MEMBERS);

const docEditArb: fc.Arbitrary<DocEdit> = fc.oneof(
  fc.record({ kind: fc.constant("insert" as const), pos: fc.nat({ max: 20 }), text: fc.constantFrom("x", "yz", "hello") }),
  fc.record({ kind: fc.constant("delete" as const), pos: fc.nat({ max: 20 }), len: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant("mapSet" as const), field: fc.constantFrom("f", "g"), value: fc.nat({ max: 9 }) }),
  fc.record({ kind: fc.constant("mapDelete" as const), field: fc.constantFrom("f", "g") }),
);

const writeArbs: Record<Kind, fc.Arbitrary<Step>> = {
  kv: fc.record({ t: fc.constant("kv" as const), node: nodeArb, key: keyArb, value: fc.oneof({ arbitrary: fc.constant(null), weight: 1 }, { arbitrary: fc.nat({ max: 99 }), weight: 4 }), wallMs: wallArb }),
  counter: fc.record({ t: fc.constant("counter" as const), node: nodeArb, key: keyArb, delta: fc.integer({ min: -5, max: 5 }), wallMs: wallArb }),
  set: fc.record({
    t: fc.constant("set" as const),
    node: nodeArb,
    key: keyArb,
    add: fc.array(memberArb, { maxLength: 3 }),
    remove: fc.array(memberArb, { maxLength: 2 }),
    wallMs: wallArb,
  }),
  doc: fc.record({ t: fc.constant("doc" as const), node: nodeArb, key: keyArb, edit: docEditArb, wallMs: wallArb }),
};

const syncArb: fc.Arbitrary<Step> = fc.record({
  t: fc.constant("sync" as const),
  from: nodeArb,
  to: nodeArb,
  mask: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 2 ** 30 - 1 })),
});

/** Histories of 2-4 nodes writing the given kinds of ops and syncing at random. */
export function historyArb(kinds: readonly Kind[], maxSteps = 16): fc.Arbitrary<History> {
  const step = fc.oneof(...kinds.map((k) => ({ arbitrary: writeArbs[k], weight: 3 })), { arbitrary: syncArb, weight: 2 });
  return fc.record({ nodeCount: fc.integer({ min: 2, max: 4 }), steps: fc.array(step, { maxLength: maxSteps, size: "max" }) });
}

/** A simulated node: its replica, the ops it knows in the order it learned them, its seq and clock. */
export interface SimNode {
  readonly id: NodeId;
  readonly index: number;
  readonly replica: MemReplica;
  readonly known: Op[];
  /** Live Y.Docs per doc key, standing in for the node's connected editors. */
  readonly editors: Map<string, Y.Doc>;
  seq: number;
  clock: Hlc;
}

export interface RunResult {
  readonly nodes: readonly SimNode[];
  /** Every op made, in the order it was made. */
  readonly ops: readonly Op[];
}

/**
 * "hlc": each node runs a real hybrid logical clock (observing what it
 * receives). "free": each write's HLC is just its drawn wall time, so a
 * causally later write may carry a smaller HLC, which must not matter.
 */
export type ClockMode = "hlc" | "free";

/**
 * The node's editor for a doc key: a live Y.Doc fed with every doc op the
 * node applies, as a client connected to it would be (cheaper than loading
 * the state for every edit). Its client id is fixed per node, so histories
 * replay exactly; the node never receives its own ops back, so Yjs never sees
 * that id in a remote update (it would replace it with a random one).
 */
function editorOf(node: SimNode, key: string): Y.Doc {
  let doc = node.editors.get(key);
  if (doc === undefined) {
    doc = new Y.Doc({ gc: true, guid: `${node.id}/${key}` });
    doc.clientID = node.index + 1;
    node.editors.set(key, doc);
  }
  return doc;
}

function docUpdate(node: SimNode, key: string, edit: DocEdit): Uint8Array | undefined {
  const doc = editorOf(node, key);
  const updates: Uint8Array[] = [];
  const collect = (u: Uint8Array): void => {
    updates.push(u);
  };
  doc.on("update", collect);
  const text = doc.getText("t");
  const map = doc.getMap<number>("m");
  switch (edit.kind) {
    case "insert":
      text.insert(edit.pos % (text.length + 1), edit.text);
      break;
    case "delete":
      if (text.length > 0) {
        const pos = edit.pos % text.length;
        text.delete(pos, Math.min(edit.len, text.length - pos));
      }
      break;
    case "mapSet":
      map.set(edit.field, edit.value);
      break;
    case "mapDelete":
      map.delete(edit.field);
      break;
  }
  doc.off("update", collect);
  return updates.length === 0 ? undefined : Y.mergeUpdates(updates);
}

/**
 * Applies a received op to the node: its replica and, for docs, its editor.
 * An op past a gap is dropped, as the node drops it; false then.
 */
function receive(node: SimNode, op: Op): boolean {
  if (applyTo(node.replica, [op]).ops.length === 0) return false;
  node.known.push(op);
  if (op.ns === "docs") Y.applyUpdate(editorOf(node, op.key), op.update);
  return true;
}

function makeOp(node: SimNode, step: Exclude<Step, { t: "sync" }>, hlc: Hlc): Op | undefined {
  const at = { origin: node.id, seq: node.seq + 1, hlc };
  const r = node.replica;
  switch (step.t) {
    case "kv":
      return unrefused(buildOp("kv", stateOf(r, "kv", step.key), step.key, { valueJson: step.value === null ? null : JSON.stringify(step.value) }, at));
    case "counter":
      return unrefused(buildOp("counters", stateOf(r, "counters", step.key), step.key, { delta: step.delta }, at));
    case "set":
      return unrefused(buildOp("sets", stateOf(r, "sets", step.key), step.key, { add: step.add, remove: step.remove }, at));
    case "doc": {
      const update = docUpdate(node, step.key, step.edit);
      return update === undefined ? undefined : unrefused(buildOp("docs", undefined, step.key, { update }, at));
    }
  }
}

function unrefused<T extends Op>(x: T | BuildRefusal): T {
  if (isBuildRefusal(x)) throw new Error(`history built a refused op: ${x.reason}`);
  return x;
}

/** Plays a history: returns the nodes' final states and every op made. */
export function runHistory(h: History, clock: ClockMode = "free"): RunResult {
  const nodes: SimNode[] = NODE_IDS.slice(0, h.nodeCount).map((id, index) => ({
    id,
    index,
    replica: emptyReplica(id),
    known: [],
    editors: new Map(),
    seq: 0,
    clock: { wallMs: 0, logical: 0 },
  }));
  const ops: Op[] = [];
  const at = (i: number): SimNode => nodes[i % nodes.length] as SimNode;
  for (const step of h.steps) {
    if (step.t === "sync") {
      const from = at(step.from);
      const to = at(step.to);
      if (from === to) continue;
      from.known.forEach((op, i) => {
        if (step.mask !== -1 && ((step.mask >> i % 30) & 1) === 0) return;
        if (hasApplied(to.replica, op)) return;
        if (receive(to, op)) to.clock = observe(to.clock, op.hlc, 0);
      });
      continue;
    }
    const node = at(step.node);
    const hlc = clock === "hlc" ? tick(node.clock, step.wallMs) : { wallMs: step.wallMs, logical: 0 };
    const op = makeOp(node, step, hlc);
    if (op === undefined) continue;
    node.seq = op.seq;
    node.clock = hlc;
    applyTo(node.replica, [op]);
    node.known.push(op);
    ops.push(op);
  }
  return { nodes, ops };
}

/** A seeded generator (mulberry32, src/core/prng.ts), so runs replay from their seed. */
export const prng = mulberry32;

/** A delivery schedule: a shuffle seed and how many duplicates to add. */
export interface Delivery {
  readonly seed: number;
  readonly dups: number;
}

export const deliveryArb: fc.Arbitrary<Delivery> = fc.record({ seed: fc.integer(), dups: fc.nat({ max: 8 }) });

/** Every item at least once, plus `dups` repeats, in a shuffled order. */
export function deliver<T>(items: readonly T[], d: Delivery): T[] {
  const rnd = prng(d.seed);
  const out = [...items];
  if (items.length > 0) {
    for (let i = 0; i < d.dups; i++) out.push(items[Math.floor(rnd() * items.length)] as T);
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
