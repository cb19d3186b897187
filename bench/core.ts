// Core throughput: how many ops per second each CRDT's apply takes, and how
// many version-vector comparisons per second, each next to a baseline run in
// the same process (a plain Map.set for LWW and counters, a Set.add for sets,
// a plain array compare for vectors), so the ratio says what the merge logic
// costs on top of storing a value at all.

import * as Y from "yjs";
import { IDEMPOTENCY_TTL_MS } from "../src/core/apply/idempotency.js";
import { applyCounter } from "../src/core/crdt/pn-counter.js";
import { applyDoc } from "../src/core/crdt/ydoc.js";
import { applyKv } from "../src/core/crdt/lww.js";
import { applySet } from "../src/core/crdt/or-set.js";
import type { Hlc } from "../src/core/hlc.js";
import { asNodeId, type NodeId } from "../src/core/ids.js";
import type { CounterOp, CounterState, DocOp, DocState, KvOp, KvRegister, OrSetState, SetOp } from "../src/core/op.js";
import { compareVv, type VersionVector } from "../src/core/version-vector.js";
import { makeCounterOp, makeKvOp, makeSetOp } from "../src/core/write.js";
import { mulberry32 } from "../src/core/prng.js";
import { fmt, type BenchSection } from "./report.js";

const NODES: NodeId[] = ["us-east-1", "eu-west-1", "ap-south-1"].map(asNodeId);
const KEYS = 1000;
const MIN_MS = 400;

/** Runs `body` over `n` items repeatedly for at least MIN_MS; returns items per second. */
function rate(n: number, body: () => void): number {
  body(); // warm-up: JIT and caches
  let iters = 0;
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  while (elapsedMs < MIN_MS) {
    body();
    iters++;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return (iters * n) / (elapsedMs / 1000);
}

/** A deterministic PRNG, so every run measures the same ops. */
const prng = mulberry32;

function hlcAt(i: number): Hlc {
  return { wallMs: 1_700_000_000_000 + Math.floor(i / 4), logical: i % 4 };
}

/** kv ops written by three nodes that each see only their own writes: a realistic mix of overwrites and conflicts. */
function kvOps(count: number): KvOp[] {
  const rnd = prng(1);
  const local = NODES.map(() => new Map<string, KvRegister>());
  const seqs = NODES.map(() => 0);
  const ops: KvOp[] = [];
  for (let i = 0; i < count; i++) {
    const n = Math.floor(rnd() * NODES.length);
    const key = `k${Math.floor(rnd() * KEYS)}`;
    const seq = ++seqs[n]!;
    const op = makeKvOp(local[n]!.get(key), key, JSON.stringify({ i }), NODES[n]!, seq, hlcAt(i));
    local[n]!.set(key, applyKv(local[n]!.get(key), op).reg);
    ops.push(op);
  }
  return ops;
}

function counterOps(count: number): CounterOp[] {
  const rnd = prng(2);
  const local = NODES.map(() => new Map<string, CounterState>());
  const seqs = NODES.map(() => 0);
  const ops: CounterOp[] = [];
  for (let i = 0; i < count; i++) {
    const n = Math.floor(rnd() * NODES.length);
    const key = `c${Math.floor(rnd() * KEYS)}`;
    const op = makeCounterOp(local[n]!.get(key), key, rnd() < 0.8 ? 1 : -1, NODES[n]!, ++seqs[n]!, hlcAt(i));
    local[n]!.set(key, applyCounter(local[n]!.get(key), op, IDEMPOTENCY_TTL_MS));
    ops.push(op);
  }
  return ops;
}

function setOps(count: number): SetOp[] {
  const rnd = prng(3);
  const local = NODES.map(() => new Map<string, OrSetState>());
  const seqs = NODES.map(() => 0);
  const ops: SetOp[] = [];
  for (let i = 0; i < count; i++) {
    const n = Math.floor(rnd() * NODES.length);
    const key = `s${Math.floor(rnd() * KEYS)}`;
    const member = `m${Math.floor(rnd() * 8)}`;
    const add = rnd() < 0.7;
    const op = makeSetOp(local[n]!.get(key), key, add ? [member] : [], add ? [] : [member], NODES[n]!, ++seqs[n]!, hlcAt(i));
    local[n]!.set(key, applySet(local[n]!.get(key), op));
    ops.push(op);
  }
  return ops;
}

/** Small text edits to 100 docs, as a collaborative editor sends them. */
function docOps(count: number): DocOp[] {
  const docs = Array.from({ length: 100 }, (_, d) => {
    const doc = new Y.Doc();
    doc.clientID = d + 1;
    return doc;
  });
  const ops: DocOp[] = [];
  for (let i = 0; i < count; i++) {
    const d = i % docs.length;
    const doc = docs[d]!;
    let update: Uint8Array | undefined;
    const listener = (u: Uint8Array) => (update = u);
    doc.on("update", listener);
    doc.getText("t").insert(doc.getText("t").length, "x");
    doc.off("update", listener);
    ops.push({ ns: "docs", origin: NODES[0]!, seq: i + 1, hlc: hlcAt(i), key: `d${d}`, update: update! });
  }
  return ops;
}

function vectors(count: number, width: number): { maps: VersionVector[]; arrays: number[][] } {
  const rnd = prng(4);
  const maps: VersionVector[] = [];
  const arrays: number[][] = [];
  const names = Array.from({ length: width }, (_, i) => `node-${i}`);
  for (let i = 0; i < count; i++) {
    const arr = names.map(() => Math.floor(rnd() * 1000));
    arrays.push(arr);
    maps.push(Object.fromEntries(names.map((n, j) => [n, arr[j]!])));
  }
  return { maps, arrays };
}

/** Runs the core benchmark and returns its BENCHMARKS.md section. */
export async function run(): Promise<BenchSection> {
  const rows: string[][] = [["workload", "geokv ops/s", "baseline", "baseline ops/s", "geokv / baseline"]];
  const add = (name: string, ours: number, baseName: string, base: number) => {
    rows.push([name, fmt(ours), baseName, fmt(base), `${((ours / base) * 100).toFixed(1)}%`]);
    console.log(`${name}: ${fmt(ours)} ops/s (${baseName}: ${fmt(base)} ops/s)`);
  };

  const kv = kvOps(20_000);
  const kvRate = rate(kv.length, () => {
    const m = new Map<string, KvRegister>();
    for (const op of kv) m.set(op.key, applyKv(m.get(op.key), op).reg);
  });
  const mapRate = rate(kv.length, () => {
    const m = new Map<string, string | null>();
    for (const op of kv) m.set(op.key, op.valueJson);
  });
  add("LWW register apply (3 writers, 1000 keys)", kvRate, "Map.set", mapRate);

  const cs = counterOps(20_000);
  const counterRate = rate(cs.length, () => {
    const m = new Map<string, CounterState>();
    for (const op of cs) m.set(op.key, applyCounter(m.get(op.key), op, IDEMPOTENCY_TTL_MS));
  });
  const sumRate = rate(cs.length, () => {
    const m = new Map<string, number>();
    for (const op of cs) m.set(op.key, (m.get(op.key) ?? 0) + op.delta);
  });
  add("PN-counter apply", counterRate, "Map.set of a sum", sumRate);

  const ss = setOps(20_000);
  const setRate = rate(ss.length, () => {
    const m = new Map<string, OrSetState>();
    for (const op of ss) m.set(op.key, applySet(m.get(op.key), op));
  });
  const plainSetRate = rate(ss.length, () => {
    const m = new Map<string, Set<string>>();
    for (const op of ss) {
      let s = m.get(op.key);
      if (!s) m.set(op.key, (s = new Set()));
      for (const a of op.add) s.add(a);
      for (const r of op.remove) s.delete(r.member);
    }
  });
  add("OR-set apply (add 70%, remove 30%)", setRate, "Set.add/delete", plainSetRate);

  const ds = docOps(5_000);
  const docRate = rate(ds.length, () => {
    const m = new Map<string, DocState>();
    for (const op of ds) m.set(op.key, applyDoc(m.get(op.key), op.update));
  });
  const ydocRate = rate(ds.length, () => {
    const m = new Map<string, Y.Doc>();
    for (const op of ds) {
      let d = m.get(op.key);
      if (!d) m.set(op.key, (d = new Y.Doc()));
      Y.applyUpdate(d, op.update);
    }
  });
  add("Yjs doc apply (1-char edits, 100 docs, merged update kept)", docRate, "Y.applyUpdate to a live Y.Doc", ydocRate);

  const { maps, arrays } = vectors(10_000, 9);
  let sink = 0;
  const vvRate = rate(maps.length - 1, () => {
    for (let i = 1; i < maps.length; i++) if (compareVv(maps[i - 1]!, maps[i]!) === "concurrent") sink++;
  });
  const arrRate = rate(arrays.length - 1, () => {
    for (let i = 1; i < arrays.length; i++) {
      const a = arrays[i - 1]!;
      const b = arrays[i]!;
      let lt = false;
      let gt = false;
      for (let j = 0; j < a.length; j++) {
        if (a[j]! < b[j]!) lt = true;
        else if (a[j]! > b[j]!) gt = true;
      }
      if (lt && gt) sink++;
    }
  });
  add("version-vector compare (9 nodes)", vvRate, "compare of two number arrays", arrRate);
  if (sink < 0) console.log(sink);

  return {
    name: "core",
    title: "Core: CRDT applies and version-vector compares",
    table: rows,
    notes: [
      "Single thread, in memory, no I/O: the cost of the merge logic itself. Each figure is the best sustained rate over at least 400 ms after a warm-up pass.",
      "States are immutable values (a new object per apply), which is what makes them safe to hand to storage and the simulator; the baselines mutate in place.",
      "The Yjs row keeps each doc as one merged update (what storage persists) and merges with Y.mergeUpdates; the baseline keeps a live Y.Doc in memory. The merged-update form costs more per edit as a doc grows; a node that serves one doc heavily would do better keeping it live in memory (not built yet).",
    ],
  };
}
