// A whole replica in memory for the core property tests, driven by the same
// applyOps the node runs (src/core/apply/apply.ts): the view reads these maps
// instead of storage, and applyTo performs the outcome as the node's apply
// driver does (states, records, own ops, vector, clock, seq). So every
// convergence and CRDT-law property proves the function the node runs.

import { applyOps, type ApplyOutcome, type ApplyView } from "../../src/core/apply/apply.js";
import type { AnyState, IdempotencyRecord, StateOf } from "../../src/core/apply/types.js";
import { counterValue } from "../../src/core/crdt/pn-counter.js";
import { docDigest, type DocDigest } from "../../src/core/crdt/ydoc.js";
import { readKv } from "../../src/core/crdt/lww.js";
import { setMembers } from "../../src/core/crdt/or-set.js";
import { encodeHlc, HLC_ZERO, type Hlc } from "../../src/core/hlc.js";
import type { NodeId } from "../../src/core/ids.js";
import type { CounterState, Dot, DocState, KvRegister, Namespace, Op, OrSetState } from "../../src/core/op.js";
import { normalizeVv, vvGet, type VersionVector } from "../../src/core/version-vector.js";

/** A replica: per-key states, first answers, own ops, and the node's vector, clock and seq. */
export interface MemReplica {
  readonly self: NodeId;
  readonly states: Map<string, AnyState>;
  readonly records: Map<string, IdempotencyRecord>;
  readonly own: Map<number, Op>;
  vv: VersionVector;
  hlc: Hlc;
  seq: number;
}

const keyId = (ns: Namespace, key: string): string => `${ns}\0${key}`;

/** A replica of node `self` that has applied nothing. */
export function emptyReplica(self: NodeId = "observer" as NodeId): MemReplica {
  return { self, states: new Map(), records: new Map(), own: new Map(), vv: {}, hlc: HLC_ZERO, seq: 0 };
}

/** The key's state, or undefined when never written. */
export function stateOf<N extends Namespace>(r: MemReplica, ns: N, key: string): StateOf<N> | undefined {
  return r.states.get(keyId(ns, key)) as StateOf<N> | undefined;
}

/** The view applyOps reads: this replica. */
export function viewOf(r: MemReplica): ApplyView {
  return {
    self: r.self,
    vv: r.vv,
    hlc: r.hlc,
    seq: r.seq,
    state: (ns, key) => stateOf(r, ns, key),
    idempotencyRecord: (key) => r.records.get(key),
    idempotencyKeyHeld: () => false,
  };
}

/** Applies `ops` with applyOps and performs the outcome on the replica; returns the outcome. */
export function applyTo(r: MemReplica, ops: readonly Op[]): ApplyOutcome {
  const outcome = applyOps(viewOf(r), ops);
  for (const c of outcome.changes) r.states.set(keyId(c.ns, c.key), c.state);
  for (const rec of outcome.idempotency) r.records.set(rec.key, rec);
  for (const op of outcome.ops) if (op.origin === r.self) r.own.set(op.seq, op);
  r.vv = outcome.vv;
  r.hlc = outcome.hlc;
  r.seq = outcome.seq;
  return outcome;
}

/**
 * Delivers `ops` one by one, again and again, until nothing is new: an op
 * past a gap is dropped, as the node drops it, and its sender resends it.
 * Returns the ops applied, in order.
 */
export function deliverAll(r: MemReplica, ops: readonly Op[]): Op[] {
  const applied: Op[] = [];
  for (;;) {
    const before = applied.length;
    for (const op of ops) applied.push(...applyTo(r, [op]).ops);
    if (applied.length === before) return applied;
  }
}

/** A fresh replica that applied `ops` (redelivered until nothing is new). */
export function replicaOf(ops: readonly Op[]): MemReplica {
  const r = emptyReplica();
  deliverAll(r, ops);
  return r;
}

/** True when the replica has applied the op with this dot. */
export function hasApplied(r: MemReplica, dot: Dot): boolean {
  return dot.seq <= vvGet(r.vv, dot.origin);
}

/** A canonical, JSON-able picture of a replica: equal for replicas that hold the same data. */
export interface ReplicaDigest {
  readonly vv: VersionVector;
  readonly kv: Record<string, { value: string | null; hlc: string; node: string; siblings: string[] }>;
  readonly counters: Record<string, { value: number; p: Record<string, number>; n: Record<string, number> }>;
  readonly sets: Record<string, string[]>;
  readonly docs: Record<string, DocDigest>;
}

/** The canonical digest of a replica (see ReplicaDigest). */
export function replicaDigest(r: MemReplica): ReplicaDigest {
  const out = { kv: {} as ReplicaDigest["kv"], counters: {} as ReplicaDigest["counters"], sets: {} as ReplicaDigest["sets"], docs: {} as ReplicaDigest["docs"] };
  const ids = [...r.states.keys()].sort();
  for (const id of ids) {
    const [ns, key] = id.split("\0") as [Namespace, string];
    const state = r.states.get(id);
    switch (ns) {
      case "kv": {
        const reg = state as KvRegister;
        const w = readKv(reg);
        if (w !== undefined) out.kv[key] = { value: w.valueJson, hlc: encodeHlc(w.hlc), node: w.origin, siblings: reg.siblings.map((s) => `${s.origin}:${s.seq}`) };
        break;
      }
      case "counters": {
        const c = state as CounterState;
        out.counters[key] = { value: counterValue(c), p: { ...c.p }, n: { ...c.n } };
        break;
      }
      case "sets":
        out.sets[key] = setMembers(state as OrSetState);
        break;
      case "docs":
        out.docs[key] = docDigest(state as DocState);
        break;
      default: {
        const never: never = ns;
        throw new Error(`unknown namespace ${String(never)}`);
      }
    }
  }
  return { vv: normalizeVv(r.vv), ...out };
}
