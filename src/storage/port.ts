// The storage port: what the node runtime needs from a disk, and nothing more.
// Two implementations sit behind it — SQLite for real nodes, memory for the
// deterministic simulator — and one contract suite (test/storage/contract.ts)
// holds both to the same behaviour. Storage makes no merge decisions: the
// caller computes new per-key states with src/core and hands them over in a
// Batch, which is committed atomically. The port is synchronous because
// better-sqlite3 is; batching across requests is group-commit.ts's job.

import type { Hlc } from "../core/hlc.js";
import { HLC_ZERO } from "../core/hlc.js";
import type { NodeId } from "../core/ids.js";
import type { Conflict, CounterState, DocState, KvRegister, Op, OrSetState } from "../core/op.js";
import type { IdempotencyRecord, KeyStateRows, KvRow } from "../core/apply/types.js";
import type { InstallRules, SnapshotHeader, SnapshotRow } from "../core/snapshot.js";

export type { InstallRules } from "../core/snapshot.js";
import type { VersionVector } from "../core/version-vector.js";

// Row and record types are the core's (the apply path makes them); storage re-exports them.
export type { IdempotencyRecord, KeyState, KvRow } from "../core/apply/types.js";

/** A persisted vote: this node accepted `node` as coordinator for `epoch`. */
export interface Vote {
  readonly epoch: number;
  readonly node: NodeId;
}

/** The metadata keys the runtime relies on, with their types. */
export interface KnownMeta {
  /** This node's id, written once when the data directory is created. */
  nodeId: NodeId;
  /** Highest epoch this node has seen; never goes back. */
  epoch: number;
  /** The coordinator this node accepted, at most one per epoch. */
  votedFor: Vote;
  /** This node's own op counter: the seq of its last op. */
  lastSeq: number;
  /** This node's HLC as of its last persisted event, so a restart never goes back. */
  lastHlc: Hlc;
  /** The stability frontier this node reached: every member held it (compaction.ts); it only grows. */
  stableVv: VersionVector;
  /** Covers every kv tombstone this node dropped: the context of a write to an absent kv key. Persisted before any drop. */
  sweptVv: VersionVector;
  /** The tombstone horizon kept for the next sweep (compaction.ts), or null. */
  tombstoneHorizon: { covered: VersionVector; until: VersionVector } | null;
}

/** The type stored under a meta key: typed for known keys, any JSON value otherwise. */
export type MetaValue<K extends string> = K extends keyof KnownMeta ? KnownMeta[K] : unknown;

/** Meta entries to set in a batch; undefined values are skipped. Values must be JSON-serializable. */
export type MetaPatch = Readonly<Partial<KnownMeta>> & Readonly<Record<string, unknown>>;

/**
 * Everything one commit writes, in one transaction. Lists are applied in
 * order, so when a key appears twice the later state wins (that is what makes
 * concatenating batches in group commit safe).
 */
export interface Batch extends KeyStateRows {
  /** Ops to append to the log; a dot already logged (or compacted) is ignored. */
  readonly ops?: readonly Op[];
  readonly conflicts?: readonly Conflict[];
  readonly idempotency?: readonly IdempotencyRecord[];
  /** The node vector: merged entrywise by max, so it never goes back. */
  readonly appliedVv?: VersionVector;
  readonly meta?: MetaPatch;
}

/** What a commit did. */
export interface CommitResult {
  /** Ops newly appended (duplicates not counted). */
  readonly opsInserted: number;
}

/** The op log's size: its rows and their stored bytes (key, body and payload). */
export interface OpLogStats {
  readonly ops: number;
  readonly bytes: number;
}

/** Arguments of listKv. */
export interface ListKvOptions {
  /** Only keys that start with these bytes ("" or absent: all keys). */
  readonly prefix?: string;
  /** Only keys after this one in byte order (exclusive): the previous page's last key. */
  readonly after?: string;
  /** At most this many rows; counts only rows returned. */
  readonly limit: number;
  /** Include keys whose winner is a tombstone (default false). */
  readonly includeDeleted?: boolean;
}

/**
 * A consistent read of the whole state for a snapshot (core/snapshot.ts), in
 * a read transaction of its own: commits go on meanwhile and are not in it.
 * Rows come namespace by namespace, in key order. Close it when done (it
 * holds the read transaction, and with it the WAL, until then).
 */
export interface SnapshotReader {
  /** The vector, swept context and clock the rows are consistent with. */
  readonly header: SnapshotHeader;
  /** The next rows: at most `maxRows`, and no more once `maxBytes` of data are taken (at least one row); empty at the end. */
  next(maxRows: number, maxBytes: number): SnapshotRow[];
  close(): void;
}

/** What an install did. */
export interface InstallResult {
  /** Snapshot rows installed. */
  readonly rows: number;
  /** Local kv rows removed (their versions covered by the snapshot, which lacks the key). */
  readonly removedKv: number;
  /** Docs whose state the snapshot gave or changed (live rooms reload them). */
  readonly docKeys: readonly string[];
}

/** One kv row to rewrite with its versions folded: the register as read, and what replaces it. */
export interface KvFold {
  readonly key: string;
  readonly from: KvRegister;
  readonly to: KvRegister;
}

/** The largest page listKv, getOps and conflicts return. */
export const STORAGE_PAGE_MAX = 10_000;

/** The storage port. Every method is synchronous; every write is durable when it returns. */
export interface Storage {
  /** A metadata value, or undefined when never set. */
  getMeta<K extends string>(key: K): MetaValue<K> | undefined;
  /** Sets one metadata value in its own transaction (for epoch and vote: persist before use). */
  setMeta<K extends string>(key: K, value: MetaValue<K>): void;

  /** A kv key's register (tombstoned or not), or undefined when never written. */
  getKv(key: string): KvRegister | undefined;
  /** A counter's state, or undefined when never written. */
  getCounter(key: string): CounterState | undefined;
  /** A set's state, or undefined when never written. */
  getSet(key: string): OrSetState | undefined;
  /** A doc's merged Yjs state (a copy), or undefined when never written. */
  getDoc(key: string): DocState | undefined;
  /** kv keys in UTF-8 byte order; see ListKvOptions. */
  listKv(opts: ListKvOptions): KvRow[];

  /** Writes a whole batch atomically: all of it or, if anything throws, none of it. */
  commit(batch: Batch): CommitResult;

  /** True when the dot was logged (also when compacted away since). */
  hasOp(origin: NodeId, seq: number): boolean;
  /** Logged ops of `origin` with fromSeq <= seq <= toSeq, ascending, at most `limit`. */
  getOps(origin: NodeId, fromSeq: number, toSeq: number, limit: number): Op[];
  /** Per origin, the highest seq s such that every op up to s is logged or compacted. */
  opLogVv(): VersionVector;
  /** Per origin, the seq up to which ops were compacted (a peer needing older ops needs a snapshot). */
  opLogFloor(): VersionVector;
  /** Deletes logged ops at or below `stable` (ops every node has); returns how many. */
  compactOps(stable: VersionVector): number;
  /** Rows and bytes of the op log now: counters kept by the store (counted once at open), not a scan per call. */
  opLogStats(): OpLogStats;
  /** The persisted node vector (what commit's appliedVv built). */
  appliedVv(): VersionVector;

  /** kv rows whose winner is a delete, after `after` in byte order ("" for the first), at most `limit`. */
  listTombstones(after: string, limit: number): KvRow[];
  /**
   * Deletes kv rows that are still exactly as given (a write since the caller
   * read them keeps its row); returns how many went. The caller (the core's
   * compaction rules) decides which tombstones every node holds.
   */
  dropTombstones(rows: readonly KvRow[]): number;
  /**
   * Rewrites kv rows whose register is still exactly `from` to `to` (a write
   * since the caller read them keeps its row); returns how many changed. The
   * caller (the core's folding rule, compaction.ts) makes `to` read and
   * compare as `from` does.
   */
  foldKv(rows: readonly KvFold[]): number;

  /** A consistent read of the whole state, for a snapshot sent to a peer or written to a backup. */
  openSnapshot(): SnapshotReader;
  /** Discards the staged snapshot rows, if any (a new snapshot starts, or one was cut off). */
  clearSnapshotStage(): void;
  /** Stages rows of a snapshot being received; nothing is installed until installSnapshot. A row staged twice keeps the later one. */
  stageSnapshotRows(rows: readonly SnapshotRow[]): void;
  /** Rows staged now. */
  stagedSnapshotRows(): number;
  /**
   * Installs the staged snapshot, covering `header.vv`, in ONE transaction
   * (a crash leaves the store as it was, or fully installed): every staged row
   * and every local kv row the snapshot lacks becomes what `rules.row` says;
   * staged idempotency records are added where none is kept; the node vector
   * and the op-log floor rise to `header.vv` (logged ops it covers go: the
   * state has them); the metadata becomes `rules.meta`'s; the stage is cleared.
   * Throws on a staged row that does not decode, changing nothing.
   */
  installSnapshot(header: SnapshotHeader, rules: InstallRules): InstallResult;

  /** Recorded conflicts, newest first. */
  conflicts(limit: number): Conflict[];

  /** The stored answer for an Idempotency-Key, or undefined. */
  getIdempotency(key: string): IdempotencyRecord | undefined;
  /** Deletes idempotency records created before `beforeMs`; returns how many. */
  pruneIdempotency(beforeMs: number): number;

  /**
   * Returns up to `maxPages` free pages to the file system (SQLite's
   * incremental_vacuum; memory frees at once) and says how many it returned.
   * Bounded, so a caller can spread a large reclaim over event-loop turns.
   */
  reclaimSpace(maxPages: number): number;
  /**
   * Copies the write-ahead log into the database and truncates it to zero
   * bytes, without waiting: false (and the log kept) when a reader still
   * needs it, such as a snapshot being streamed. Memory has no log: true.
   */
  truncateWal(): boolean;

  /** "ok" when the store is consistent, else a description of what is wrong. */
  integrityCheck(): string;
  /** Approximate bytes used (for SQLite: database plus WAL file). */
  sizeBytes(): number;
  /** Releases the store; any later call throws. */
  close(): void;
}

/** The node metadata with defaults for a fresh data directory. */
export interface NodeMeta {
  readonly nodeId: NodeId | undefined;
  readonly epoch: number;
  readonly votedFor: Vote | undefined;
  readonly lastSeq: number;
  readonly lastHlc: Hlc;
}

/** Reads the runtime's metadata, with defaults where nothing was persisted yet. */
export function readNodeMeta(storage: Storage): NodeMeta {
  return {
    nodeId: storage.getMeta("nodeId"),
    epoch: storage.getMeta("epoch") ?? 0,
    votedFor: storage.getMeta("votedFor"),
    lastSeq: storage.getMeta("lastSeq") ?? 0,
    lastHlc: storage.getMeta("lastHlc") ?? HLC_ZERO,
  };
}
