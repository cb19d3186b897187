// The Storage port on SQLite (better-sqlite3): what a real node keeps on disk.
// WAL lets readers run beside the writer; synchronous=FULL makes a commit
// durable when it returns (the ack=local promise), NORMAL trades the last
// transactions on power loss for speed. Statements are prepared once; each
// Batch is one IMMEDIATE transaction, so a write lock is taken up front
// instead of upgraded mid-transaction. kv point reads go through a bounded
// cache of what was committed (kv-read-cache.ts).

import { decodeKvState, encodeKvState, kvStateTexts } from "../core/codec/kv-state.js";
import { mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { NodeId } from "../core/ids.js";
import type { Conflict, CounterState, DocState, KvRegister, Op, OrSetState } from "../core/op.js";
import { encodeHlc } from "../core/hlc.js";
import type { VersionVector } from "../core/version-vector.js";
import { assertBatch, assertIntIn, assertLimit, assertVv, encodeMetaValue } from "./checks.js";
import { assertWellFormedKey, listRange } from "./key-order.js";
import { KV_READ_CACHE_DEFAULTS, KvReadCache, type KvReadCacheOptions } from "./kv-read-cache.js";
import { migrate } from "./migrations.js";
import { opFromRow, opToRow, type OpRow } from "./op-row.js";
import { bytes, conflictFromRow, OP_ROW_BYTES, OP_SELECT_COLUMNS, opRowBytes, vvFromRows, type SqlConflictRow, type SqlIdempotencyRow, type SqlKvRow, type SqlOpRow, type SqlVvRow } from "./sqlite-rows.js";
import type { Batch, CommitResult, IdempotencyRecord, InstallResult, InstallRules, KvFold, KvRow, ListKvOptions, MetaValue, OpLogStats, SnapshotReader, Storage } from "./port.js";
import type { SnapshotHeader, SnapshotRow } from "../core/snapshot.js";
import type { RowOf, StateOf } from "../core/apply/types.js";
import type { Namespace } from "../core/op.js";
import { openSqliteSnapshot, SqliteSnapshotStage } from "./sqlite-snapshot.js";

/** How to open a SQLite store. */
export interface SqliteStorageOptions {
  /** The database file (its directory is created), or ":memory:". */
  readonly path: string;
  /** FULL (default): durable at commit. NORMAL: may lose the last commits on power loss, never corrupts. */
  readonly synchronous?: "FULL" | "NORMAL";
  /** How long a statement waits for another connection's lock before SQLITE_BUSY. */
  readonly busyTimeoutMs?: number;
  /** Upper bound on the WAL file kept after a checkpoint. */
  readonly walSizeLimitBytes?: number;
  /** SQLite's page cache (PRAGMA cache_size), in bytes; default PAGE_CACHE_BYTES_DEFAULT. */
  readonly pageCacheBytes?: number;
  /** Bounds of the in-memory kv read cache (kv-read-cache.ts); entriesMax 0 turns it off. */
  readonly kvReadCache?: KvReadCacheOptions;
}

/** The connection settings in effect (for tests and /status). */
export interface SqlitePragmas {
  readonly journalMode: string;
  readonly synchronous: "OFF" | "NORMAL" | "FULL" | "EXTRA";
  readonly busyTimeoutMs: number;
  readonly schemaVersion: number;
  /** "incremental" on every migrated database (schema 3): freed pages go back to the file system with reclaimSpace. */
  readonly autoVacuum: "none" | "full" | "incremental" | "unknown";
}

/** The Storage port plus what only a SQLite store has. */
export interface SqliteStorage extends Storage {
  readonly path: string;
  pragmas(): SqlitePragmas;
  /** Pages on the freelist: space a reclaimSpace can give back. */
  freePages(): number;
  /** The in-memory caches and their budgets, in bytes (kv read cache: UTF-16 text, 2 bytes a unit; SQLite's page cache: its bound). */
  memoryBudgets(): { kvCacheBytes: number; kvCacheBudgetBytes: number; pageCacheBudgetBytes: number };
  /** True when the store holds any state, op, vector entry, conflict or idempotency record (metadata alone is not data). */
  holdsData(): boolean;
}

const BUSY_TIMEOUT_MS_DEFAULT = 5000;
const WAL_SIZE_LIMIT_BYTES_DEFAULT = 64 * 1024 * 1024;
/**
 * SQLite page cache per node: the op log and kv indexes of a busy node stay in
 * memory. 32 MiB: at 64 a node holding a million keys passed its 250 MB RSS
 * budget (BENCHMARKS.md, storage), and the hot pages of a write load fit.
 */
export const PAGE_CACHE_BYTES_DEFAULT = 32 * 1024 * 1024;
const SYNCHRONOUS_NAMES = ["OFF", "NORMAL", "FULL", "EXTRA"] as const;
const AUTO_VACUUM_NAMES = ["none", "full", "incremental"] as const;

/** Every fixed statement, prepared once per connection. */
function prepareStatements(db: Database.Database) {
  return {
    getMeta: db.prepare<[string], string>("SELECT v FROM meta WHERE k = ?").pluck(),
    setMeta: db.prepare<[string, string]>("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"),
    getKv: db.prepare<[string], string>("SELECT state FROM kv WHERE key = ?").pluck(),
    // Run by writeBatch only: commit() keeps the kv read cache equal to what this writes.
    putKv: db.prepare<[string, string, number]>(
      "INSERT INTO kv (key, state, deleted) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET state = excluded.state, deleted = excluded.deleted",
    ),
    getCounter: db.prepare<[string], string>("SELECT state FROM counters WHERE key = ?").pluck(),
    putCounter: db.prepare<[string, string]>("INSERT INTO counters (key, state) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET state = excluded.state"),
    getSet: db.prepare<[string], string>("SELECT state FROM sets WHERE key = ?").pluck(),
    putSet: db.prepare<[string, string]>("INSERT INTO sets (key, state) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET state = excluded.state"),
    getDoc: db.prepare<[string], Buffer>("SELECT state FROM docs WHERE key = ?").pluck(),
    putDoc: db.prepare<[string, Uint8Array]>("INSERT INTO docs (key, state) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET state = excluded.state"),
    // A dot at or below the compaction floor was logged before: ignore it like a present one.
    insertOp: db.prepare<[OpRow]>(
      `INSERT OR IGNORE INTO ops (origin, seq, hlc, ns, key, body, payload, idem_key, idem_hash)
       SELECT @origin, @seq, @hlc, @ns, @key, @body, @payload, @idemKey, @idemHash
       WHERE @seq > COALESCE((SELECT seq FROM op_floor WHERE origin = @origin), 0)`,
    ),
    hasOp: db.prepare<{ origin: string; seq: number }, number>(
      `SELECT EXISTS (SELECT 1 FROM ops WHERE origin = @origin AND seq = @seq)
         OR @seq <= COALESCE((SELECT seq FROM op_floor WHERE origin = @origin), 0)`,
    ).pluck(),
    getOps: db.prepare<[string, number, number, number], SqlOpRow>(
      `SELECT ${OP_SELECT_COLUMNS} FROM ops WHERE origin = ? AND seq BETWEEN ? AND ? ORDER BY seq LIMIT ?`,
    ),
    // Walks the distinct origins through the primary key, one seek each, instead of scanning the log.
    nextOrigin: db.prepare<[string], string>("SELECT origin FROM ops WHERE origin > ? ORDER BY origin LIMIT 1").pluck(),
    runAbove: db.prepare<[string, number], { n: number; maxSeq: number | null }>(
      "SELECT COUNT(*) AS n, MAX(seq) AS maxSeq FROM ops WHERE origin = ? AND seq > ?",
    ),
    // Rows of the run that starts right after the floor f have seq - row_number = f.
    contiguousMax: db.prepare<[string, number, number], number | null>(
      `SELECT MAX(seq) FROM (SELECT seq, seq - ROW_NUMBER() OVER (ORDER BY seq) AS d FROM ops WHERE origin = ? AND seq > ?)
       WHERE d = ?`,
    ).pluck(),
    floors: db.prepare<[], SqlVvRow>("SELECT origin, seq FROM op_floor"),
    deleteOpsUpTo: db.prepare<[string, number]>("DELETE FROM ops WHERE origin = ? AND seq <= ?"),
    // What a row costs, as opLogStats counts it: its key, body and payload bytes.
    opLogSize: db.prepare<[], { n: number; b: number }>(`SELECT COUNT(*) AS n, COALESCE(SUM(${OP_ROW_BYTES}), 0) AS b FROM ops`),
    opsUpToSize: db.prepare<[string, number], { n: number; b: number }>(
      `SELECT COUNT(*) AS n, COALESCE(SUM(${OP_ROW_BYTES}), 0) AS b FROM ops WHERE origin = ? AND seq <= ?`,
    ),
    tombstones: db.prepare<[string, number], SqlKvRow>("SELECT key, state, deleted FROM kv WHERE deleted = 1 AND key > ? ORDER BY key LIMIT ?"),
    dropTombstone: db.prepare<[string, string, string]>("DELETE FROM kv WHERE key = ? AND deleted = 1 AND state IN (?, ?)"),
    foldKv: db.prepare<[string, string, string, string]>("UPDATE kv SET state = ? WHERE key = ? AND state IN (?, ?)"),
    raiseFloor: db.prepare<[string, number]>(
      "INSERT INTO op_floor (origin, seq) VALUES (?, ?) ON CONFLICT (origin) DO UPDATE SET seq = MAX(seq, excluded.seq)",
    ),
    nodeVv: db.prepare<[], SqlVvRow>("SELECT origin, seq FROM node_vv"),
    raiseNodeVv: db.prepare<[string, number]>(
      "INSERT INTO node_vv (origin, seq) VALUES (?, ?) ON CONFLICT (origin) DO UPDATE SET seq = MAX(seq, excluded.seq)",
    ),
    insertConflict: db.prepare<[string, string, string, string]>("INSERT INTO conflicts (key, winner, loser, at) VALUES (?, ?, ?, ?)"),
    conflicts: db.prepare<[number], SqlConflictRow>("SELECT key, winner, loser, at FROM conflicts ORDER BY id DESC LIMIT ?"),
    putIdempotency: db.prepare<[string, string, number, string, number]>(
      `INSERT INTO idempotency (k, hash, status, body, created_at_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (k) DO UPDATE SET hash = excluded.hash, status = excluded.status, body = excluded.body,
         created_at_ms = excluded.created_at_ms`,
    ),
    getIdempotency: db.prepare<[string], SqlIdempotencyRow>("SELECT k, hash, status, body, created_at_ms FROM idempotency WHERE k = ?"),
    pruneIdempotency: db.prepare<[number]>("DELETE FROM idempotency WHERE created_at_ms < ?"),
    holdsData: db.prepare<[], number>(
      `SELECT EXISTS (SELECT 1 FROM kv) OR EXISTS (SELECT 1 FROM counters) OR EXISTS (SELECT 1 FROM sets)
         OR EXISTS (SELECT 1 FROM docs) OR EXISTS (SELECT 1 FROM ops) OR EXISTS (SELECT 1 FROM op_floor)
         OR EXISTS (SELECT 1 FROM node_vv WHERE seq > 0) OR EXISTS (SELECT 1 FROM conflicts) OR EXISTS (SELECT 1 FROM idempotency)`,
    ).pluck(),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

class SqliteStore implements SqliteStorage {
  private readonly db: Database.Database;
  private readonly listStatements = new Map<string, Database.Statement>();

  private readonly s: Statements;
  private readonly commitTxn: Database.Transaction<(batch: Batch, kvTexts: string[]) => CommitResult & { bytesInserted: number }>;
  /** Copies of kv rows as committed; only commit() writes kv rows, and it updates this after each transaction. */
  private readonly kvCache: KvReadCache;
  private readonly kvCacheOptions: KvReadCacheOptions;
  private readonly pageCacheBytes: number;
  private readonly compactTxn: Database.Transaction<(stable: VersionVector) => OpLogStats>;
  private readonly dropTxn: Database.Transaction<(rows: readonly KvRow[]) => number>;
  private readonly foldTxn: Database.Transaction<(rows: readonly KvFold[]) => number>;
  /** The op log's rows and bytes: counted once at open, then moved by every commit and compaction. */
  private logStats: { ops: number; bytes: number };
  private readonly stage: SqliteSnapshotStage;

  constructor(readonly path: string, opts: SqliteStorageOptions) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    this.db = db;
    try {
      db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? BUSY_TIMEOUT_MS_DEFAULT}`);
      const mode = db.pragma("journal_mode = WAL", { simple: true }) as string;
      if (path !== ":memory:" && mode !== "wal") throw new Error(`${path}: could not enable WAL (journal_mode is ${mode})`);
      db.pragma(`synchronous = ${opts.synchronous ?? "FULL"}`);
      db.pragma(`journal_size_limit = ${opts.walSizeLimitBytes ?? WAL_SIZE_LIMIT_BYTES_DEFAULT}`);
      // SQLite's default page cache is 2 MB: past a few thousand keys, every
      // insert into the op log and kv indexes reads pages back through the OS.
      // Applying a heal's ops one node alone ran 1.4x faster with 64 MiB.
      db.pragma(`cache_size = -${Math.round((opts.pageCacheBytes ?? PAGE_CACHE_BYTES_DEFAULT) / 1024)}`);
      migrate(db, path);
    } catch (err) {
      db.close();
      throw err;
    }
    this.s = prepareStatements(db);
    this.kvCacheOptions = opts.kvReadCache ?? KV_READ_CACHE_DEFAULTS;
    this.kvCache = new KvReadCache(this.kvCacheOptions);
    this.pageCacheBytes = opts.pageCacheBytes ?? PAGE_CACHE_BYTES_DEFAULT;
    this.commitTxn = db.transaction((batch: Batch, kvTexts: string[]) => this.writeBatch(batch, kvTexts));
    this.compactTxn = db.transaction((stable: VersionVector) => this.deleteStableOps(stable));
    this.dropTxn = db.transaction((rows: readonly KvRow[]) => {
      let n = 0;
      for (const r of rows) n += this.s.dropTombstone.run(r.key, ...kvStateTexts(r.reg)).changes;
      return n;
    });
    this.foldTxn = db.transaction((rows: readonly KvFold[]) => {
      let n = 0;
      for (const r of rows) n += this.s.foldKv.run(encodeKvState(r.to), r.key, ...kvStateTexts(r.from)).changes;
      return n;
    });
    const size = this.s.opLogSize.get() as { n: number; b: number };
    this.logStats = { ops: size.n, bytes: size.b };
    this.stage = new SqliteSnapshotStage({
      db,
      // Read past the kv cache: the install changes rows the cache holds, and empties it after.
      local: <N extends Namespace>(ns: N, key: string): StateOf<N> | undefined => {
        if (ns !== "kv") return this.stateOf(ns, key) as StateOf<N> | undefined;
        const v = this.s.getKv.get(key);
        return (v === undefined ? undefined : decodeKvState(v)) as StateOf<N> | undefined;
      },
      putRow: <N extends Namespace>(ns: N, row: RowOf<N>): void => {
        this.writeBatch({ [ns]: [row] }, []);
      },
      getMeta: <T>(key: string): T | undefined => this.getMeta(key) as T | undefined,
      raiseTo: (vv: VersionVector): void => {
        for (const [origin, seq] of Object.entries(vv)) {
          if (seq <= 0) continue;
          this.s.raiseNodeVv.run(origin, seq);
          this.s.deleteOpsUpTo.run(origin, seq);
          this.s.raiseFloor.run(origin, seq);
        }
      },
    });
  }

  private stateOf(ns: Exclude<Namespace, "kv">, key: string): CounterState | OrSetState | DocState | undefined {
    return ns === "counters" ? this.getCounter(key) : ns === "sets" ? this.getSet(key) : this.getDoc(key);
  }

  getMeta<K extends string>(key: K): MetaValue<K> | undefined {
    const v = this.s.getMeta.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as MetaValue<K>);
  }

  setMeta<K extends string>(key: K, value: MetaValue<K>): void {
    this.s.setMeta.run(key, encodeMetaValue(key, value));
  }

  getKv(key: string): KvRegister | undefined {
    const cached = this.kvCache.get(key);
    if (cached !== undefined) return cached;
    const v = this.s.getKv.get(key);
    // Keys never written are not cached: misses are cheap to recompute and
    // would let a scan of absent keys push the live ones out.
    return v === undefined ? undefined : this.kvCache.put(key, v);
  }

  getCounter(key: string): CounterState | undefined {
    const v = this.s.getCounter.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as CounterState);
  }

  getSet(key: string): OrSetState | undefined {
    const v = this.s.getSet.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as OrSetState);
  }

  getDoc(key: string): DocState | undefined {
    const v = this.s.getDoc.get(key);
    return v === undefined ? undefined : bytes(v);
  }

  listKv(opts: ListKvOptions): KvRow[] {
    assertLimit(opts.limit);
    if (opts.prefix !== undefined) assertWellFormedKey(opts.prefix, "prefix");
    if (opts.after !== undefined) assertWellFormedKey(opts.after, "after");
    if (opts.limit === 0) return [];
    const range = listRange(opts.prefix, opts.after);
    const live = opts.includeDeleted !== true;
    const params: (string | number)[] = [range.lower];
    if (range.upper !== null) params.push(range.upper);
    params.push(opts.limit);
    const rows = this.listStatement(range.lowerInclusive, range.upper !== null, live).all(...params) as SqlKvRow[];
    return rows.map((r) => ({ key: r.key, reg: decodeKvState(r.state), deleted: r.deleted === 1 }));
  }

  /** One statement per shape of range, so each uses the index for both bounds. */
  private listStatement(lowerInclusive: boolean, bounded: boolean, live: boolean): Database.Statement {
    const id = `${lowerInclusive ? ">=" : ">"}|${bounded ? "<" : ""}|${live ? "live" : "all"}`;
    let stmt = this.listStatements.get(id);
    if (stmt === undefined) {
      const where = [`key ${lowerInclusive ? ">=" : ">"} ?`];
      if (bounded) where.push("key < ?");
      if (live) where.push("deleted = 0");
      stmt = this.db.prepare(`SELECT key, state, deleted FROM kv WHERE ${where.join(" AND ")} ORDER BY key LIMIT ?`);
      this.listStatements.set(id, stmt);
    }
    return stmt;
  }

  commit(batch: Batch): CommitResult {
    assertBatch(batch);
    const kvTexts: string[] = [];
    const result = this.commitTxn.immediate(batch, kvTexts);
    this.logStats = { ops: this.logStats.ops + result.opsInserted, bytes: this.logStats.bytes + result.bytesInserted };
    // Only once the transaction committed (a batch that threw was rolled back
    // and left the table, and so the cache, as it was), in batch order so the
    // later state of a key listed twice wins, as in the table.
    const kv = batch.kv ?? [];
    for (let i = 0; i < kv.length; i++) this.kvCache.put((kv[i] as KvRow).key, kvTexts[i] as string);
    return { opsInserted: result.opsInserted };
  }

  /** Writes a batch inside the open transaction; the text of each kv row goes to `kvTexts`, in order. */
  private writeBatch(batch: Batch, kvTexts: string[]): CommitResult & { bytesInserted: number } {
    let opsInserted = 0;
    let bytesInserted = 0;
    for (const op of batch.ops ?? []) {
      const row = opToRow(op);
      if (this.s.insertOp.run(row).changes === 0) continue;
      opsInserted++;
      bytesInserted += opRowBytes(row);
    }
    for (const r of batch.kv ?? []) {
      const text = encodeKvState(r.reg);
      this.s.putKv.run(r.key, text, r.deleted ? 1 : 0);
      kvTexts.push(text);
    }
    for (const r of batch.counters ?? []) this.s.putCounter.run(r.key, JSON.stringify(r.state));
    for (const r of batch.sets ?? []) this.s.putSet.run(r.key, JSON.stringify(r.state));
    for (const r of batch.docs ?? []) this.s.putDoc.run(r.key, r.state);
    for (const c of batch.conflicts ?? []) {
      this.s.insertConflict.run(c.key, JSON.stringify(c.winner), JSON.stringify(c.loser), encodeHlc(c.at));
    }
    for (const r of batch.idempotency ?? []) this.s.putIdempotency.run(r.key, r.requestHash, r.status, r.body, r.createdAtMs);
    for (const [origin, seq] of Object.entries(batch.appliedVv ?? {})) this.s.raiseNodeVv.run(origin, seq);
    for (const [k, v] of Object.entries(batch.meta ?? {})) {
      if (v !== undefined) this.s.setMeta.run(k, encodeMetaValue(k, v));
    }
    return { opsInserted, bytesInserted };
  }

  hasOp(origin: NodeId, seq: number): boolean {
    return this.s.hasOp.get({ origin, seq }) === 1;
  }

  getOps(origin: NodeId, fromSeq: number, toSeq: number, limit: number): Op[] {
    assertLimit(limit);
    return this.s.getOps.all(origin, fromSeq, toSeq, limit).map((r) => opFromRow(r));
  }

  opLogFloor(): VersionVector {
    return vvFromRows(this.s.floors.all());
  }

  opLogVv(): VersionVector {
    const floor = this.opLogFloor();
    const out: Record<string, number> = { ...floor };
    for (let origin = this.s.nextOrigin.get(""); origin !== undefined; origin = this.s.nextOrigin.get(origin)) {
      const f = floor[origin] ?? 0;
      const run = this.s.runAbove.get(origin, f);
      if (run === undefined || run.n === 0 || run.maxSeq === null) continue;
      // Common case first: no gap at all above the floor.
      const top = run.maxSeq - f === run.n ? run.maxSeq : (this.s.contiguousMax.get(origin, f, f) ?? f);
      if (top > 0) out[origin] = top;
    }
    return out;
  }

  compactOps(stable: VersionVector): number {
    assertVv("stable", stable);
    const gone = this.compactTxn.immediate(stable);
    this.logStats = { ops: this.logStats.ops - gone.ops, bytes: this.logStats.bytes - gone.bytes };
    return gone.ops;
  }

  private deleteStableOps(stable: VersionVector): OpLogStats {
    let ops = 0;
    let bytes = 0;
    for (const [origin, seq] of Object.entries(stable)) {
      if (seq <= 0) continue;
      bytes += (this.s.opsUpToSize.get(origin, seq) as { b: number }).b;
      ops += this.s.deleteOpsUpTo.run(origin, seq).changes;
      this.s.raiseFloor.run(origin, seq);
    }
    return { ops, bytes };
  }

  opLogStats(): OpLogStats {
    return { ...this.logStats };
  }

  listTombstones(after: string, limit: number): KvRow[] {
    assertLimit(limit);
    if (after !== "") assertWellFormedKey(after, "after");
    return this.s.tombstones.all(after, limit).map((r) => ({ key: r.key, reg: decodeKvState(r.state), deleted: true }));
  }

  dropTombstones(rows: readonly KvRow[]): number {
    if (rows.length === 0) return 0;
    const n = this.dropTxn.immediate(rows);
    for (const r of rows) this.kvCache.delete(r.key);
    return n;
  }

  foldKv(rows: readonly KvFold[]): number {
    if (rows.length === 0) return 0;
    const n = this.foldTxn.immediate(rows);
    // The cache may hold either form; the next read takes the row as it now stands.
    for (const r of rows) this.kvCache.delete(r.key);
    return n;
  }

  appliedVv(): VersionVector {
    return vvFromRows(this.s.nodeVv.all());
  }

  openSnapshot(): SnapshotReader {
    return openSqliteSnapshot(this.path);
  }

  clearSnapshotStage(): void {
    this.stage.clear();
  }

  stageSnapshotRows(rows: readonly SnapshotRow[]): void {
    if (rows.length > 0) this.stage.stage(rows);
  }

  stagedSnapshotRows(): number {
    return this.stage.count();
  }

  installSnapshot(header: SnapshotHeader, rules: InstallRules): InstallResult {
    assertVv("snapshot vv", header.vv);
    try {
      return this.stage.install(header, rules);
    } finally {
      // Rolled back or not, the cache may hold rows the transaction read or wrote: it starts over.
      this.kvCache.clear();
      const size = this.s.opLogSize.get() as { n: number; b: number };
      this.logStats = { ops: size.n, bytes: size.b };
    }
  }

  conflicts(limit: number): Conflict[] {
    assertLimit(limit);
    return this.s.conflicts.all(limit).map(conflictFromRow);
  }

  getIdempotency(key: string): IdempotencyRecord | undefined {
    const r = this.s.getIdempotency.get(key);
    if (r === undefined) return undefined;
    return { key: r.k, requestHash: r.hash, status: r.status, body: r.body, createdAtMs: r.created_at_ms };
  }

  pruneIdempotency(beforeMs: number): number {
    assertIntIn("beforeMs", beforeMs, 0, Number.MAX_SAFE_INTEGER);
    return this.s.pruneIdempotency.run(beforeMs).changes;
  }

  reclaimSpace(maxPages: number): number {
    assertIntIn("maxPages", maxPages, 1, Number.MAX_SAFE_INTEGER);
    const before = this.db.pragma("freelist_count", { simple: true }) as number;
    if (before === 0) return 0;
    this.db.pragma(`incremental_vacuum(${maxPages})`);
    return before - (this.db.pragma("freelist_count", { simple: true }) as number);
  }

  truncateWal(): boolean {
    if (this.path === ":memory:") return true;
    const waitMs = this.db.pragma("busy_timeout", { simple: true }) as number;
    // Never waits: a reader holding an old snapshot (a snapshot stream) makes it give up, not block the loop.
    this.db.pragma("busy_timeout = 0");
    try {
      const [r] = this.db.pragma("wal_checkpoint(TRUNCATE)") as { busy: number }[];
      return r !== undefined && r.busy === 0;
    } finally {
      this.db.pragma(`busy_timeout = ${waitMs}`);
    }
  }

  memoryBudgets(): { kvCacheBytes: number; kvCacheBudgetBytes: number; pageCacheBudgetBytes: number } {
    return { kvCacheBytes: 2 * this.kvCache.size().textChars, kvCacheBudgetBytes: 2 * this.kvCacheOptions.textCharsMax, pageCacheBudgetBytes: this.pageCacheBytes };
  }

  holdsData(): boolean {
    return this.s.holdsData.get() === 1;
  }

  freePages(): number {
    return this.db.pragma("freelist_count", { simple: true }) as number;
  }

  integrityCheck(): string {
    const rows = this.db.pragma("integrity_check") as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).join("\n");
  }

  sizeBytes(): number {
    const pages = this.db.pragma("page_count", { simple: true }) as number;
    const pageBytes = this.db.pragma("page_size", { simple: true }) as number;
    let walBytes = 0;
    if (this.path !== ":memory:") {
      try {
        walBytes = statSync(`${this.path}-wal`).size;
      } catch {
        // No WAL file (yet, or after a clean close): nothing to add.
      }
    }
    return pages * pageBytes + walBytes;
  }

  pragmas(): SqlitePragmas {
    const sync = this.db.pragma("synchronous", { simple: true }) as number;
    const name = SYNCHRONOUS_NAMES[sync];
    if (name === undefined) throw new Error(`unexpected synchronous level ${sync}`);
    return {
      journalMode: this.db.pragma("journal_mode", { simple: true }) as string,
      synchronous: name,
      busyTimeoutMs: this.db.pragma("busy_timeout", { simple: true }) as number,
      schemaVersion: this.db.pragma("user_version", { simple: true }) as number,
      autoVacuum: AUTO_VACUUM_NAMES[this.db.pragma("auto_vacuum", { simple: true }) as number] ?? "unknown",
    };
  }

  close(): void {
    // Emptied, so that a read after close reaches the closed database and throws, as the port says.
    this.kvCache.clear();
    if (this.db.open) this.db.close();
  }
}

/** Opens (creating and migrating if needed) a SQLite store. */
export function openSqliteStorage(opts: SqliteStorageOptions): SqliteStorage {
  return new SqliteStore(opts.path, opts);
}
