// What one namespace must provide so that every caller handles it the same
// way: the write path builds its ops, the apply path merges them, storage and
// the wire encode them, and reads present the state. One entry per namespace
// (kv.ts, counters.ts, sets.ts, docs.ts), assembled in table.ts; a new
// namespace is one new entry, not a case added to switches in many files.

import type { ByteReader, ByteWriter } from "../codec/bytes.js";
import type { Conflict, Namespace } from "../op.js";
import type { BuildRefusal, KeyStateReader, OpHead, OpOf, OpStamp, RowOf, StateOf } from "./types.js";

/** What a client asks of a key, per namespace (validated at the edge). */
export interface IntentByNamespace {
  /** A put (JSON text) or a delete (null). */
  kv: { readonly valueJson: string | null };
  counters: { readonly delta: number };
  sets: { readonly add: readonly string[]; readonly remove: readonly string[] };
  /** One Yjs update, already checked with validateDocUpdate. */
  docs: { readonly update: Uint8Array };
}

/** The intent type of namespace N. */
export type IntentOf<N extends Namespace> = IntentByNamespace[N];

/** What reads show of a key's state, per namespace. */
export interface ReadByNamespace {
  /** The live winner's JSON and version; undefined when never written or deleted. */
  kv: { readonly valueJson: string; readonly version: { readonly hlc: OpStamp["hlc"]; readonly node: OpStamp["origin"] } } | undefined;
  counters: number;
  /** Sorted members. */
  sets: string[];
  /** The merged Yjs state (an empty doc when never written). */
  docs: Uint8Array;
}

/** The read type of namespace N. */
export type ReadOf<N extends Namespace> = ReadByNamespace[N];

/** A key's state after an op, and the kv conflicts the op caused. */
export interface Merged<N extends Namespace> {
  readonly state: StateOf<N>;
  readonly conflicts: readonly Conflict[];
}

/** One namespace's entry in the table. */
export interface NamespaceEntry<N extends Namespace> {
  readonly ns: N;
  /** The namespace's tag in the binary codec (its low 7 bits; the high bit flags an idempotency key). */
  readonly wireTag: number;

  /** build: the op for a client's intent against the key's current state, or why the intent is refused. */
  build(state: StateOf<N> | undefined, key: string, intent: IntentOf<N>, at: OpStamp): OpOf<N> | BuildRefusal;

  /** apply: merges an op into the key's state (any order, any number of times: a CRDT). */
  apply(state: StateOf<N> | undefined, op: OpOf<N>): Merged<N>;

  /** read: what a reader sees of the key's state. */
  read(state: StateOf<N> | undefined): ReadOf<N>;
  /** The answer body to the write `op`, given the key's state right after it; `token` is the op's causal token. */
  answer(op: OpOf<N>, after: StateOf<N>, token: string): Record<string, unknown>;
  /** The key's committed state from a read port. */
  load(reader: KeyStateReader, key: string): StateOf<N> | undefined;
  /** The row the key's state is persisted as. */
  row(key: string, state: StateOf<N>): RowOf<N>;

  /** encode (op log): the namespace's fields as a JSON body and an optional binary payload. */
  toLogBody(op: OpOf<N>): { readonly body: string; readonly payload: Uint8Array | null };
  /** Reads toLogBody's output back; throws on a row this code did not write (`where` names it). */
  fromLogBody(head: OpHead, body: string, payload: Uint8Array | null, where: string): OpOf<N>;

  /** encode (wire): bytes the namespace's fields take, roughly, to size the writer up front. */
  wireHint(op: OpOf<N>): number;
  /** Checks the op's namespace invariants; throws on a bug upstream, before the head is written. */
  checkWire(op: OpOf<N>): void;
  /** Writes the namespace's fields after the op head. */
  writeWire(w: ByteWriter, op: OpOf<N>): void;
  /** Reads the namespace's fields from untrusted bytes, validating each. Throws ReadFailure. */
  readWire(r: ByteReader, head: OpHead): OpOf<N>;
}
