// Ops and per-key state types: the vocabulary shared by the CRDTs, the codec,
// storage and replication. An op is one client write, made once at its origin
// node and then copied everywhere; its dot (origin, seq) names it uniquely, so
// every replica can drop duplicates and apply the rest in any order.

import type { Hlc } from "./hlc.js";
import type { NodeId } from "./ids.js";
import { utf8ByteLength } from "./key.js";
import type { VersionVector } from "./version-vector.js";

/** The four namespaces; each key lives in one and each has one type. */
export type Namespace = "kv" | "counters" | "sets" | "docs";
export const NAMESPACES: readonly Namespace[] = ["kv", "counters", "sets", "docs"];

/** The unique name of an op: its origin node and that node's sequence number. */
export interface Dot {
  readonly origin: NodeId;
  readonly seq: number;
}

/** The longest Idempotency-Key an op carries, in UTF-8 bytes (the HTTP edge allows the same). */
export const IDEM_KEY_BYTES_MAX = 256;
/** The longest request digest an op carries, in UTF-8 bytes (a SHA-256 in base64url is 43). */
export const IDEM_HASH_BYTES_MAX = 128;

/**
 * The client's Idempotency-Key and the digest of its request, carried inside
 * the op so that every replica that applies the op can record the answer: a
 * retry that reaches another node after a failover then replays instead of
 * writing a second time.
 */
export interface OpIdem {
  /** The client's Idempotency-Key: 1 to IDEM_KEY_BYTES_MAX bytes of UTF-8. */
  readonly key: string;
  /** The digest of the request (method, path, body): 1 to IDEM_HASH_BYTES_MAX bytes of UTF-8. */
  readonly requestHash: string;
}

/** Null when `idem` fits the bounds every replica enforces, else why not. */
export function idemProblem(idem: OpIdem): string | null {
  const keyBytes = utf8ByteLength(idem.key);
  if (keyBytes < 1 || keyBytes > IDEM_KEY_BYTES_MAX) return `idempotency key must be 1 to ${IDEM_KEY_BYTES_MAX} bytes of UTF-8`;
  const hashBytes = utf8ByteLength(idem.requestHash);
  if (hashBytes < 1 || hashBytes > IDEM_HASH_BYTES_MAX) return `idempotency request hash must be 1 to ${IDEM_HASH_BYTES_MAX} bytes of UTF-8`;
  return null;
}

interface OpBase {
  /** The node that took the client write. */
  readonly origin: NodeId;
  /** Per-origin sequence number, 1, 2, 3, ... with no gaps. */
  readonly seq: number;
  /** The origin's HLC when it took the write. */
  readonly hlc: Hlc;
  /** The key, 1 to 1024 bytes of UTF-8. */
  readonly key: string;
  /** Present when the client sent an Idempotency-Key: the key and the digest of its request. */
  readonly idem?: OpIdem;
}

/**
 * A kv write: a JSON value, or a tombstone (valueJson null) for a delete.
 * `vv` is the key's version vector for this version: everything the writer had
 * seen of this key, plus this op's own dot (vv[origin] === seq).
 */
export interface KvOp extends OpBase {
  readonly ns: "kv";
  readonly valueJson: string | null;
  readonly vv: VersionVector;
}

/**
 * A counter delta. It carries the origin's running totals for this key after
 * the delta, so applying it is an entrywise max (idempotent, order-free).
 */
export interface CounterOp extends OpBase {
  readonly ns: "counters";
  readonly delta: number;
  /** Sum of this origin's positive deltas to this key, including this one. */
  readonly pTotal: number;
  /** Sum of the magnitudes of this origin's negative deltas, including this one. */
  readonly nTotal: number;
}

/** An observed-remove: the member and the add-tags the writer saw for it. */
export interface SetRemove {
  readonly member: string;
  readonly tags: readonly string[];
}

/**
 * An OR-set write. Each added member gets the fresh tag `${origin}:${seq}:${i}`
 * (i = its index in `add`); a remove names only the tags it observed, so a
 * concurrent add (a tag it has not seen) survives: add wins.
 */
export interface SetOp extends OpBase {
  readonly ns: "sets";
  readonly add: readonly string[];
  readonly remove: readonly SetRemove[];
}

/** A Yjs update (binary, as produced by Y.encodeStateAsUpdate / 'update' events). */
export interface DocOp extends OpBase {
  readonly ns: "docs";
  readonly update: Uint8Array;
}

export type Op = KvOp | CounterOp | SetOp | DocOp;

/** A version as the HTTP API shows it: {"hlc", "node"}. */
export interface Version {
  readonly hlc: Hlc;
  readonly node: NodeId;
}

/** One version of a kv key (a sibling while concurrent with another). */
export interface KvVersion {
  readonly valueJson: string | null;
  readonly hlc: Hlc;
  readonly origin: NodeId;
  readonly seq: number;
  readonly vv: VersionVector;
}

/**
 * A kv key's state: the maximal versions under causality (siblings). Keeping
 * the whole antichain, not just the winner, is what makes the result
 * independent of delivery order; reads show the sibling with the highest
 * (hlc, node). One sibling is the common case.
 */
export interface KvRegister {
  readonly siblings: readonly KvVersion[];
}

/** A recorded conflict: two concurrent versions of a key and who won. */
export interface Conflict {
  readonly key: string;
  readonly winner: Version;
  readonly loser: Version;
  /** When the conflict was detected: the HLC of the version that arrived second. */
  readonly at: Hlc;
}

/** One copy of an idempotency-keyed counter write, as its key's state remembers it (crdt/counter-copies.ts). */
export interface CounterCopy {
  readonly origin: string;
  readonly seq: number;
  readonly hlc: Hlc;
  readonly delta: number;
}

/**
 * The copies of one idempotency-keyed counter write, winner first (by
 * copyLoses' order). One write is one key and one request: two different
 * requests under one key, taken at nodes that did not know of each other,
 * were both acknowledged and both count.
 */
export interface KeyedCopies {
  /** The client's Idempotency-Key. */
  readonly key: string;
  /** The digest of the request (OpIdem.requestHash). */
  readonly requestHash: string;
  readonly copies: readonly CounterCopy[];
}

/**
 * PN-counter: per-origin totals of increments (p) and decrements (n), and
 * what makes a write executed twice count once (crdt/counter-copies.ts). The
 * two optional fields are absent while unused, so a counter that never took
 * an idempotent write is stored as it always was.
 */
export interface CounterState {
  readonly p: Readonly<Record<string, number>>;
  readonly n: Readonly<Record<string, number>>;
  /** Per Idempotency-Key and request, the copies of that write applied here; sorted by both, never empty. */
  readonly keyed?: readonly KeyedCopies[];
  /** The losers' deltas of expired `keyed` entries, still left out of the value; never 0. */
  readonly folded?: number;
}

/** OR-set: live add-tags per member, and every tag ever removed. */
export interface OrSetState {
  /** member -> sorted add-tags not (yet) known removed. */
  readonly entries: Readonly<Record<string, readonly string[]>>;
  /** Sorted removed tags: kept so a remove that arrives before its add still wins over it. */
  readonly removed: readonly string[];
}

/** A Yjs document's state: one update that contains everything merged so far. */
export type DocState = Uint8Array;

/** The tag of the i-th member added by an op. */
export function addTag(origin: NodeId | string, seq: number, index: number): string {
  return `${origin}:${seq}:${index}`;
}

/** The dot of an op. */
export function dotOf(op: Op): Dot {
  return { origin: op.origin, seq: op.seq };
}
