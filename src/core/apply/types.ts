// The vocabulary of the one apply path: per-namespace state types, the rows a
// key's state is persisted as, the read port states are loaded through, and
// the idempotency record every replica keeps. They live in the core, not in
// storage, because the pure apply function produces and consumes them; the
// storage port re-exports them so both layers speak the same types.

import type { VersionVector } from "../version-vector.js";
import type { Hlc } from "../hlc.js";
import type { NodeId } from "../ids.js";
import type { CounterState, DocState, KvRegister, Namespace, Op, OpIdem, OrSetState } from "../op.js";

/** The op type of namespace N. */
export type OpOf<N extends Namespace> = Extract<Op, { readonly ns: N }>;

/** Each namespace's per-key state type. */
export interface StateByNamespace {
  kv: KvRegister;
  counters: CounterState;
  sets: OrSetState;
  docs: DocState;
}

/** The state type of namespace N. */
export type StateOf<N extends Namespace> = StateByNamespace[N];

/** Any namespace's per-key state. */
export type AnyState = StateByNamespace[Namespace];

/** A kv key's materialized state. `deleted` says the read-winner is a tombstone. */
export interface KvRow {
  readonly key: string;
  readonly reg: KvRegister;
  readonly deleted: boolean;
}

/** A materialized state of one key of the counters, sets or docs namespace. */
export interface KeyState<S> {
  readonly key: string;
  readonly state: S;
}

/** The row one key's state is persisted as, per namespace. */
export interface RowByNamespace {
  kv: KvRow;
  counters: KeyState<CounterState>;
  sets: KeyState<OrSetState>;
  docs: KeyState<DocState>;
}

/** The row type of namespace N. */
export type RowOf<N extends Namespace> = RowByNamespace[N];

/** Key states to persist, per namespace; lists are in order, so a later state of a key wins. */
export type KeyStateRows = { readonly [N in Namespace]?: readonly RowOf<N>[] };

/** Where committed key states are read from (the storage port has this shape). */
export interface KeyStateReader {
  getKv(key: string): KvRegister | undefined;
  getCounter(key: string): CounterState | undefined;
  getSet(key: string): OrSetState | undefined;
  getDoc(key: string): DocState | undefined;
}

/** The answer stored for an Idempotency-Key, so a retry gets the same answer. */
export interface IdempotencyRecord {
  readonly key: string;
  /** A hash of the request, to tell a retry from a different request reusing the key. */
  readonly requestHash: string;
  readonly status: number;
  /** The response body as sent. */
  readonly body: string;
  /** Wall time of the original request, for pruning. */
  readonly createdAtMs: number;
}

/** Who makes an op and when: the parts every namespace's op shares besides its key. */
export interface OpStamp {
  readonly origin: NodeId;
  readonly seq: number;
  readonly hlc: Hlc;
  /**
   * Covers every kv tombstone this node may have dropped (compaction.ts): a
   * write to a kv key this node holds no register for carries it as its
   * context, so it supersedes the tombstone wherever one is still kept.
   */
  readonly swept?: VersionVector;
}

/** The fields every op has, as decoded before its namespace's own fields. */
export interface OpHead extends OpStamp {
  readonly key: string;
  readonly idem?: OpIdem;
}

/** Bad input a namespace refuses to build an op from (the HTTP layer answers 400). */
export interface BuildRefusal {
  readonly type: "build_refusal";
  readonly reason: string;
}

/** True when `x` is a BuildRefusal. */
export function isBuildRefusal(x: unknown): x is BuildRefusal {
  return typeof x === "object" && x !== null && (x as BuildRefusal).type === "build_refusal";
}
