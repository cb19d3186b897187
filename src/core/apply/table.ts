// The table of namespaces: one entry per namespace, looked up by every caller
// that needs to build, apply, encode or read an op or a key's state (the
// write path, the remote apply, the op log rows, the wire codec, reads). The
// mapped type makes a missing namespace a compile error.

import { NAMESPACES, type Conflict, type Namespace, type Op } from "../op.js";
import { countersEntry } from "./counters.js";
import { docsEntry } from "./docs.js";
import { kvEntry } from "./kv.js";
import type { IntentOf, NamespaceEntry, ReadOf } from "./namespace.js";
import { setsEntry } from "./sets.js";
import { tokenOf } from "./token.js";
import type { AnyState, BuildRefusal, KeyStateReader, KeyStateRows, OpOf, OpStamp, RowOf, StateOf } from "./types.js";

/** Every namespace's entry. */
export const NAMESPACE_TABLE: { readonly [N in Namespace]: NamespaceEntry<N> } = {
  kv: kvEntry,
  counters: countersEntry,
  sets: setsEntry,
  docs: docsEntry,
};

/** The entry of namespace `ns`. */
export function entryOf<N extends Namespace>(ns: N): NamespaceEntry<N> {
  return NAMESPACE_TABLE[ns] as NamespaceEntry<N>;
}

/** The entry of a namespace taken from data (an op, a row): its facets accept any op and state of it. */
export function anyEntry(ns: Namespace): NamespaceEntry<Namespace> {
  return NAMESPACE_TABLE[ns] as NamespaceEntry<Namespace>;
}

/** The entry for a wire tag (low 7 bits), or undefined for a tag no namespace has. */
export function entryOfWireTag(tag: number): NamespaceEntry<Namespace> | undefined {
  return BY_WIRE_TAG.get(tag);
}

const BY_WIRE_TAG = new Map<number, NamespaceEntry<Namespace>>(
  Object.values(NAMESPACE_TABLE).map((e) => [e.wireTag, e as NamespaceEntry<Namespace>]),
);

// The table is indexed by the op's own namespace, so an op and its entry
// always match; TypeScript cannot follow that through a union, so data-driven
// callers go through anyEntry (the one cast).

/** Builds the op for an intent of namespace `ns` against the key's current state. */
export function buildOp<N extends Namespace>(ns: N, state: StateOf<N> | undefined, key: string, intent: IntentOf<N>, at: OpStamp): OpOf<N> | BuildRefusal {
  return entryOf(ns).build(state, key, intent, at);
}

/** Merges `op` into `state` (the state of op's key, or undefined when never written). */
export function mergeOp(state: AnyState | undefined, op: Op): { state: AnyState; conflicts: readonly Conflict[] } {
  return anyEntry(op.ns).apply(state, op);
}

/** The answer body to the write `op`, given its key's state right after it. */
export function answerOf(op: Op, after: AnyState): Record<string, unknown> {
  return anyEntry(op.ns).answer(op, after, tokenOf(op));
}

/** What a reader sees of a key of namespace `ns`. */
export function readState<N extends Namespace>(ns: N, state: StateOf<N> | undefined): ReadOf<N> {
  return entryOf(ns).read(state);
}

/** A key's committed state from a read port. */
export function loadState<N extends Namespace>(reader: KeyStateReader, ns: N, key: string): StateOf<N> | undefined {
  return entryOf(ns).load(reader, key);
}

/** Key states as rows per namespace, in the order given (a later state of a key wins). */
export function stateRows(states: Iterable<{ readonly ns: Namespace; readonly key: string; readonly state: AnyState }>): KeyStateRows {
  const rows: { [N in Namespace]?: RowOf<N>[] } = {};
  for (const s of states) {
    const list = (rows[s.ns] ??= []) as RowOf<Namespace>[];
    list.push(anyEntry(s.ns).row(s.key, s.state));
  }
  return rows;
}

/** Concatenates rows per namespace, in order (what committing batches one after the other writes). */
export function concatRows(parts: readonly KeyStateRows[]): KeyStateRows {
  const rows: { [N in Namespace]?: RowOf<N>[] } = {};
  for (const part of parts) {
    for (const ns of NAMESPACES) {
      const more = part[ns];
      if (more !== undefined && more.length > 0) ((rows[ns] ??= []) as RowOf<Namespace>[]).push(...more);
    }
  }
  return rows;
}
