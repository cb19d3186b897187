// What the in-memory store keeps, and every way it changes. A write is a
// value (DiskWrite), checked and copied before it touches a disk, so applying
// it cannot throw, and applying it to another disk equal to the one it was made
// against leaves the two equal again. That is what lets the crashable store (memory-crash.ts) journal the writes
// of a live store and replay them onto the durable disk at a sync point.

import { encodeKvState } from "../core/codec/kv-state.js";
import { encodeHlc } from "../core/hlc.js";
import type { VersionVector } from "../core/version-vector.js";
import type { SnapshotRow } from "../core/snapshot.js";
import { assertBatch, assertIntIn, assertVv, encodeMetaValue } from "./checks.js";
import { compareUtf8 } from "./key-order.js";
import { opToRow } from "./op-row.js";
import type { OpRow } from "./op-row.js";
import type { Batch, IdempotencyRecord, MetaValue } from "./port.js";

/** A kv key's register as JSON text, with its tombstone flag. */
export interface StoredKv {
  readonly state: string;
  readonly deleted: boolean;
}

/** A conflict with its versions as JSON text and its HLC encoded. */
export interface StoredConflict {
  readonly key: string;
  readonly winner: string;
  readonly loser: string;
  readonly at: string;
}

/** One origin's part of the op log: rows by seq, and the seqs in ascending order. */
export interface OriginLog {
  readonly rows: Map<number, OpRow>;
  readonly seqs: number[];
}

/**
 * The contents of one node's store. Stored values (rows, texts, byte arrays)
 * are never changed in place, only replaced, so two disks may share them.
 */
export interface MemoryDisk {
  readonly meta: Map<string, string>;
  readonly kv: Map<string, StoredKv>;
  /** Every kv key, in UTF-8 byte order. */
  readonly kvKeys: string[];
  readonly counters: Map<string, string>;
  readonly sets: Map<string, string>;
  readonly docs: Map<string, Uint8Array>;
  readonly ops: Map<string, OriginLog>;
  readonly opFloor: Map<string, number>;
  readonly nodeVv: Map<string, number>;
  /** Oldest first. */
  readonly conflicts: StoredConflict[];
  readonly idempotency: Map<string, IdempotencyRecord>;
  /** Rows of a snapshot being received, by `ns\0key`. */
  readonly snapshotStage: Map<string, SnapshotRow>;
}

/** An empty disk. */
export function createMemoryDisk(): MemoryDisk {
  return {
    meta: new Map(), kv: new Map(), kvKeys: [], counters: new Map(), sets: new Map(), docs: new Map(),
    ops: new Map(), opFloor: new Map(), nodeVv: new Map(), conflicts: [], idempotency: new Map(), snapshotStage: new Map(),
  };
}

/** A disk with the same contents whose maps and lists are its own (the stored values are shared). */
export function cloneMemoryDisk(disk: MemoryDisk): MemoryDisk {
  const ops = new Map<string, OriginLog>();
  for (const [origin, log] of disk.ops) ops.set(origin, { rows: new Map(log.rows), seqs: [...log.seqs] });
  return {
    meta: new Map(disk.meta), kv: new Map(disk.kv), kvKeys: [...disk.kvKeys], counters: new Map(disk.counters),
    sets: new Map(disk.sets), docs: new Map(disk.docs), ops, opFloor: new Map(disk.opFloor),
    nodeVv: new Map(disk.nodeVv), conflicts: [...disk.conflicts], idempotency: new Map(disk.idempotency),
    snapshotStage: new Map(disk.snapshotStage),
  };
}

/** Index of the first element of sorted `xs` not less than `x` under `cmp`. */
export function lowerBound<T>(xs: readonly T[], x: T, cmp: (a: T, b: T) => number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(xs[mid] as T, x) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export const compareNumbers = (a: number, b: number): number => a - b;

/** A batch turned into exactly what will be stored. */
interface PreparedBatch {
  readonly ops: readonly OpRow[];
  readonly kv: readonly [string, StoredKv][];
  readonly counters: readonly [string, string][];
  readonly sets: readonly [string, string][];
  readonly docs: readonly [string, Uint8Array][];
  readonly conflicts: readonly StoredConflict[];
  readonly idempotency: readonly IdempotencyRecord[];
  readonly appliedVv: readonly [string, number][];
  readonly meta: readonly [string, string][];
}

/** One change to a disk, checked and copied from the caller's arguments: applying it cannot throw. */
export type DiskWrite =
  | { readonly type: "commit"; readonly batch: PreparedBatch }
  | { readonly type: "setMeta"; readonly key: string; readonly text: string }
  | { readonly type: "compactOps"; readonly stable: readonly [string, number][] }
  /** The records a prune deletes, named (not the cutoff), so replaying it costs what it deletes. */
  | { readonly type: "pruneIdempotency"; readonly keys: readonly string[] }
  /** kv tombstones to delete, each only while its stored text is still this one. */
  | { readonly type: "dropTombstones"; readonly rows: readonly [string, readonly [string, string]][] }
  /** kv rows to rewrite (folded), each only while its stored text is still one of the two. */
  | { readonly type: "foldKv"; readonly rows: readonly [string, readonly [string, string], string][] }
  /** Rows of a snapshot being received, staged (not installed). */
  | { readonly type: "stageSnapshot"; readonly rows: readonly SnapshotRow[] }
  | { readonly type: "clearSnapshotStage" }
  /** A whole snapshot install, as computed against the disk: one write, so a crash leaves all of it or none. */
  | { readonly type: "installSnapshot"; readonly install: PreparedInstall };

/** What an install writes (snapshot-install.ts computes it). */
export interface PreparedInstall {
  /** kv rows to set, or (null) to delete. */
  readonly kv: readonly [string, StoredKv | null][];
  readonly counters: readonly [string, string][];
  readonly sets: readonly [string, string][];
  readonly docs: readonly [string, Uint8Array][];
  /** Added where no record is kept for the key. */
  readonly idempotency: readonly IdempotencyRecord[];
  /** The node vector and the op-log floor rise to it; logged ops it covers go. */
  readonly vv: readonly [string, number][];
  readonly meta: readonly [string, string][];
}

/** The staging key of a snapshot row. */
export function stageKey(ns: string, key: string): string {
  return `${ns}\0${key}`;
}

/** The write a commit of `batch` makes. Throws on a bad batch: this is the only step of a commit that may. */
export function commitWrite(batch: Batch): DiskWrite {
  assertBatch(batch);
  const meta: [string, string][] = [];
  for (const [k, v] of Object.entries(batch.meta ?? {})) if (v !== undefined) meta.push([k, encodeMetaValue(k, v)]);
  return {
    type: "commit",
    batch: {
      ops: (batch.ops ?? []).map(opToRow),
      kv: (batch.kv ?? []).map((r) => [r.key, { state: encodeKvState(r.reg), deleted: r.deleted }]),
      counters: (batch.counters ?? []).map((r) => [r.key, JSON.stringify(r.state)]),
      sets: (batch.sets ?? []).map((r) => [r.key, JSON.stringify(r.state)]),
      docs: (batch.docs ?? []).map((r) => [r.key, new Uint8Array(r.state)]),
      conflicts: (batch.conflicts ?? []).map((c) => ({
        key: c.key, winner: JSON.stringify(c.winner), loser: JSON.stringify(c.loser), at: encodeHlc(c.at),
      })),
      idempotency: (batch.idempotency ?? []).map((r) => ({ ...r })),
      appliedVv: Object.entries(batch.appliedVv ?? {}),
      meta,
    },
  };
}

/** The write setMeta(key, value) makes; throws when JSON cannot hold the value. */
export function setMetaWrite<K extends string>(key: K, value: MetaValue<K>): DiskWrite {
  return { type: "setMeta", key, text: encodeMetaValue(key, value) };
}

/** The write compactOps(stable) makes; throws on a bad vector. */
export function compactOpsWrite(stable: VersionVector): DiskWrite {
  assertVv("stable", stable);
  return { type: "compactOps", stable: Object.entries(stable) };
}

/** The write pruneIdempotency(beforeMs) makes on `disk`: it reads the disk to name the records. Throws on a bad time. */
export function pruneIdempotencyWrite(disk: MemoryDisk, beforeMs: number): DiskWrite {
  assertIntIn("beforeMs", beforeMs, 0, Number.MAX_SAFE_INTEGER);
  const keys: string[] = [];
  for (const [k, r] of disk.idempotency) if (r.createdAtMs < beforeMs) keys.push(k);
  return { type: "pruneIdempotency", keys };
}

/** Applies `w` to `disk`; returns the count its port method reports (ops inserted, rows deleted; 0 for setMeta). */
export function applyWrite(disk: MemoryDisk, w: DiskWrite): number {
  switch (w.type) {
    case "commit":
      return applyBatch(disk, w.batch);
    case "setMeta":
      disk.meta.set(w.key, w.text);
      return 0;
    case "compactOps":
      return compact(disk, w.stable);
    case "pruneIdempotency":
      for (const k of w.keys) disk.idempotency.delete(k);
      return w.keys.length;
    case "dropTombstones":
      return dropTombstones(disk, w.rows);
    case "foldKv":
      return foldKv(disk, w.rows);
    case "stageSnapshot":
      for (const r of w.rows) disk.snapshotStage.set(stageKey(r.ns, r.key), r);
      return w.rows.length;
    case "clearSnapshotStage":
      disk.snapshotStage.clear();
      return 0;
    case "installSnapshot":
      return applyInstall(disk, w.install);
    default: {
      const never: never = w;
      throw new Error(`unknown disk write ${JSON.stringify(never)}`);
    }
  }
}

function applyBatch(disk: MemoryDisk, p: PreparedBatch): number {
  let opsInserted = 0;
  for (const row of p.ops) if (insertOp(disk, row)) opsInserted++;
  for (const [key, stored] of p.kv) {
    if (!disk.kv.has(key)) disk.kvKeys.splice(lowerBound(disk.kvKeys, key, compareUtf8), 0, key);
    disk.kv.set(key, stored);
  }
  for (const [key, state] of p.counters) disk.counters.set(key, state);
  for (const [key, state] of p.sets) disk.sets.set(key, state);
  for (const [key, state] of p.docs) disk.docs.set(key, state);
  disk.conflicts.push(...p.conflicts);
  for (const r of p.idempotency) disk.idempotency.set(r.key, r);
  for (const [origin, seq] of p.appliedVv) disk.nodeVv.set(origin, Math.max(seq, disk.nodeVv.get(origin) ?? 0));
  for (const [k, v] of p.meta) disk.meta.set(k, v);
  return opsInserted;
}

function insertOp(disk: MemoryDisk, row: OpRow): boolean {
  if (row.seq <= (disk.opFloor.get(row.origin) ?? 0)) return false;
  let log = disk.ops.get(row.origin);
  if (log === undefined) {
    log = { rows: new Map(), seqs: [] };
    disk.ops.set(row.origin, log);
  }
  if (log.rows.has(row.seq)) return false;
  log.rows.set(row.seq, row);
  // Ops mostly arrive in seq order: append, else insert in place.
  const last = log.seqs[log.seqs.length - 1];
  if (last === undefined || last < row.seq) log.seqs.push(row.seq);
  else log.seqs.splice(lowerBound(log.seqs, row.seq, compareNumbers), 0, row.seq);
  return true;
}

function dropTombstones(disk: MemoryDisk, rows: readonly [string, readonly [string, string]][]): number {
  let n = 0;
  for (const [key, texts] of rows) {
    const stored = disk.kv.get(key);
    if (stored === undefined || !stored.deleted || !texts.includes(stored.state)) continue;
    disk.kv.delete(key);
    disk.kvKeys.splice(lowerBound(disk.kvKeys, key, compareUtf8), 1);
    n++;
  }
  return n;
}

function foldKv(disk: MemoryDisk, rows: readonly [string, readonly [string, string], string][]): number {
  let n = 0;
  for (const [key, texts, to] of rows) {
    const stored = disk.kv.get(key);
    if (stored === undefined || !texts.includes(stored.state)) continue;
    disk.kv.set(key, { state: to, deleted: stored.deleted });
    n++;
  }
  return n;
}

function compact(disk: MemoryDisk, stable: readonly [string, number][]): number {
  let deleted = 0;
  for (const [origin, seq] of stable) {
    if (seq <= 0) continue;
    const log = disk.ops.get(origin);
    if (log !== undefined) {
      const cut = lowerBound(log.seqs, seq + 1, compareNumbers);
      for (const s of log.seqs.splice(0, cut)) log.rows.delete(s);
      deleted += cut;
      if (log.seqs.length === 0) disk.ops.delete(origin);
    }
    disk.opFloor.set(origin, Math.max(seq, disk.opFloor.get(origin) ?? 0));
  }
  return deleted;
}

function setKv(disk: MemoryDisk, key: string, stored: StoredKv | null): void {
  const had = disk.kv.has(key);
  if (stored === null) {
    if (!had) return;
    disk.kv.delete(key);
    disk.kvKeys.splice(lowerBound(disk.kvKeys, key, compareUtf8), 1);
    return;
  }
  if (!had) disk.kvKeys.splice(lowerBound(disk.kvKeys, key, compareUtf8), 0, key);
  disk.kv.set(key, stored);
}

function applyInstall(disk: MemoryDisk, p: PreparedInstall): number {
  for (const [key, stored] of p.kv) setKv(disk, key, stored);
  for (const [key, state] of p.counters) disk.counters.set(key, state);
  for (const [key, state] of p.sets) disk.sets.set(key, state);
  for (const [key, state] of p.docs) disk.docs.set(key, state);
  for (const r of p.idempotency) if (!disk.idempotency.has(r.key)) disk.idempotency.set(r.key, r);
  for (const [origin, seq] of p.vv) disk.nodeVv.set(origin, Math.max(seq, disk.nodeVv.get(origin) ?? 0));
  compact(disk, p.vv);
  for (const [k, v] of p.meta) disk.meta.set(k, v);
  const rows = disk.snapshotStage.size;
  disk.snapshotStage.clear();
  return rows;
}
