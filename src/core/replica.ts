// A whole replica as one value: every key's CRDT state plus which ops it has
// applied. `apply` is the single place where an op changes a replica, used by
// the simulator, the tests and (through storage) the node. It drops duplicate
// dots and accepts ops in any order, gaps included, because replication may
// deliver an op twice or before one it follows; the CRDTs make the result the
// same either way.

import { applyCounter, counterValue } from "./crdt/pn-counter.js";
import { applyDoc, docDigest, type DocDigest } from "./crdt/ydoc.js";
import { applyKv, readKv } from "./crdt/lww.js";
import { applySet, setMembers } from "./crdt/or-set.js";
import { encodeHlc } from "./hlc.js";
import type { Conflict, CounterState, Dot, DocState, KvRegister, Op, OrSetState } from "./op.js";
import { normalizeVv, vvWith, type VersionVector } from "./version-vector.js";

/** The seqs applied from one origin: 1..contiguous, plus any that arrived ahead of a gap. */
export interface AppliedSeqs {
  contiguous: number;
  readonly ahead: Set<number>;
}

/**
 * A replica. The per-key states are immutable values; the maps and the
 * applied-seq records are mutated in place by `apply` (see there).
 */
export interface ReplicaState {
  readonly applied: Map<string, AppliedSeqs>;
  readonly kv: Map<string, KvRegister>;
  readonly counters: Map<string, CounterState>;
  readonly sets: Map<string, OrSetState>;
  readonly docs: Map<string, DocState>;
  /** origin -> highest contiguous applied seq: what replication compares. */
  vv: VersionVector;
}

/** The result of applying one op. */
export interface ApplyResult {
  readonly state: ReplicaState;
  /** Conflicts this op caused (kv only); empty for duplicates and other namespaces. */
  readonly conflicts: Conflict[];
  /** False when the op's dot was already applied (a duplicate: nothing changed). */
  readonly applied: boolean;
}

/** A replica that has applied nothing. */
export function emptyReplica(): ReplicaState {
  return { applied: new Map(), kv: new Map(), counters: new Map(), sets: new Map(), docs: new Map(), vv: {} };
}

/** A copy that shares the immutable per-key states but none of the mutable containers. */
export function cloneReplica(state: ReplicaState): ReplicaState {
  const applied = new Map<string, AppliedSeqs>();
  for (const [origin, a] of state.applied) applied.set(origin, { contiguous: a.contiguous, ahead: new Set(a.ahead) });
  return {
    applied,
    kv: new Map(state.kv),
    counters: new Map(state.counters),
    sets: new Map(state.sets),
    docs: new Map(state.docs),
    vv: state.vv,
  };
}

/** True when the replica has already applied the op with this dot. */
export function hasApplied(state: ReplicaState, dot: Dot): boolean {
  const a = state.applied.get(dot.origin);
  return a !== undefined && (dot.seq <= a.contiguous || a.ahead.has(dot.seq));
}

function markApplied(state: ReplicaState, dot: Dot): void {
  let a = state.applied.get(dot.origin);
  if (a === undefined) {
    a = { contiguous: 0, ahead: new Set() };
    state.applied.set(dot.origin, a);
  }
  if (dot.seq !== a.contiguous + 1) {
    a.ahead.add(dot.seq);
    return;
  }
  a.contiguous = dot.seq;
  // The op may close a gap: absorb the ops that were waiting behind it.
  while (a.ahead.delete(a.contiguous + 1)) a.contiguous++;
  state.vv = vvWith(state.vv, dot.origin, a.contiguous);
}

/**
 * Applies one op. Mutates and returns `state` (the maps are updated in place,
 * for speed in the simulator): callers that need the old replica keep a
 * cloneReplica. Duplicate dots change nothing. Throws, leaving the replica
 * untouched, only for a programmer error: a bad seq, or doc bytes that Yjs
 * cannot merge (updates are checked with validateDocUpdate at the edge).
 */
export function apply(state: ReplicaState, op: Op): ApplyResult {
  if (!Number.isSafeInteger(op.seq) || op.seq < 1) throw new Error(`op seq must be a positive integer, got ${op.seq}`);
  if (hasApplied(state, op)) return { state, conflicts: [], applied: false };
  // Compute the new key state first, so a throw leaves the replica as it was.
  let conflicts: Conflict[] = [];
  switch (op.ns) {
    case "kv": {
      const r = applyKv(state.kv.get(op.key), op);
      if (r.changed) state.kv.set(op.key, r.reg);
      conflicts = r.conflicts;
      break;
    }
    case "counters":
      state.counters.set(op.key, applyCounter(state.counters.get(op.key), op));
      break;
    case "sets":
      state.sets.set(op.key, applySet(state.sets.get(op.key), op));
      break;
    case "docs":
      state.docs.set(op.key, applyDoc(state.docs.get(op.key), op.update));
      break;
    default: {
      const never: never = op;
      throw new Error(`unknown op namespace: ${JSON.stringify(never)}`);
    }
  }
  markApplied(state, op);
  return { state, conflicts, applied: true };
}

/** Folds ops into a replica with `apply`; conflicts in the order they arose. */
export function applyAll(state: ReplicaState, ops: Iterable<Op>): { state: ReplicaState; conflicts: Conflict[] } {
  const conflicts: Conflict[] = [];
  for (const op of ops) conflicts.push(...apply(state, op).conflicts);
  return { state, conflicts };
}

/** A canonical, JSON-able picture of a replica: equal for replicas that hold the same data. */
export interface ReplicaDigest {
  readonly vv: VersionVector;
  /** origin -> seqs applied beyond the contiguous prefix, sorted. */
  readonly ahead: Record<string, number[]>;
  readonly kv: Record<string, { value: string | null; hlc: string; node: string; siblings: string[] }>;
  readonly counters: Record<string, { value: number; p: Record<string, number>; n: Record<string, number> }>;
  readonly sets: Record<string, string[]>;
  readonly docs: Record<string, DocDigest>;
}

function sortedEntries<V>(map: Map<string, V>): Array<[string, V]> {
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The canonical digest of a replica (see ReplicaDigest); costly for docs, meant for tests and checks. */
export function replicaDigest(state: ReplicaState): ReplicaDigest {
  const ahead: Array<[string, number[]]> = [];
  for (const [origin, a] of sortedEntries(state.applied)) {
    if (a.ahead.size > 0) ahead.push([origin, [...a.ahead].sort((x, y) => x - y)]);
  }
  const kv = sortedEntries(state.kv).flatMap(([key, reg]): Array<[string, ReplicaDigest["kv"][string]]> => {
    const w = readKv(reg);
    if (w === undefined) return [];
    const siblings = reg.siblings.map((s) => `${s.origin}:${s.seq}`);
    return [[key, { value: w.valueJson, hlc: encodeHlc(w.hlc), node: w.origin, siblings }]];
  });
  const counters = sortedEntries(state.counters).map(([key, c]): [string, ReplicaDigest["counters"][string]] => [
    key,
    { value: counterValue(c), p: { ...c.p }, n: { ...c.n } },
  ]);
  const sets = sortedEntries(state.sets).map(([key, s]): [string, string[]] => [key, setMembers(s)]);
  const docs = sortedEntries(state.docs).map(([key, d]): [string, DocDigest] => [key, docDigest(d)]);
  return {
    vv: normalizeVv(state.vv),
    ahead: Object.fromEntries(ahead),
    kv: Object.fromEntries(kv),
    counters: Object.fromEntries(counters),
    sets: Object.fromEntries(sets),
    docs: Object.fromEntries(docs),
  };
}
