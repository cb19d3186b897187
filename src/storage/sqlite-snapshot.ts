// Snapshots on SQLite: a consistent read of the whole state on a second,
// read-only connection (WAL lets it keep its view while the node writes on),
// the staging table a received snapshot waits in, and the install as one
// transaction on the node's connection (snapshot-install.ts does the work).

import { decodeKvState } from "../core/codec/kv-state.js";
import Database from "better-sqlite3";
import type { Namespace } from "../core/op.js";
import { HLC_ZERO, type Hlc } from "../core/hlc.js";
import type { RowOf, StateOf } from "../core/apply/types.js";
import type { InstalledMeta, SnapshotHeader, SnapshotNs, SnapshotRow } from "../core/snapshot.js";
import type { VersionVector } from "../core/version-vector.js";
import { encodeMetaValue } from "./checks.js";
import { bytes, vvFromRows, type SqlIdempotencyRow, type SqlVvRow } from "./sqlite-rows.js";
import { idemRowData, runInstall, textRowData, type InstallIo, type StageCursor } from "./snapshot-install.js";
import type { InstallResult, InstallRules, SnapshotReader } from "./port.js";

/** The tables a snapshot reads, in the order its rows come. */
const TABLES: ReadonlyArray<{ ns: SnapshotNs; sql: string }> = [
  { ns: "kv", sql: "SELECT key, state FROM kv WHERE key > ? ORDER BY key LIMIT ?" },
  { ns: "counters", sql: "SELECT key, state FROM counters WHERE key > ? ORDER BY key LIMIT ?" },
  { ns: "sets", sql: "SELECT key, state FROM sets WHERE key > ? ORDER BY key LIMIT ?" },
  { ns: "docs", sql: "SELECT key, state FROM docs WHERE key > ? ORDER BY key LIMIT ?" },
  { ns: "idem", sql: "SELECT k, hash, status, body, created_at_ms FROM idempotency WHERE k > ? ORDER BY k LIMIT ?" },
];

function metaJson<T>(db: Database.Database, key: string): T | undefined {
  const v = db.prepare<[string], string>("SELECT v FROM meta WHERE k = ?").pluck().get(key);
  return v === undefined ? undefined : (JSON.parse(v) as T);
}

/** What a node's database file says of itself: its schema version and whose data it holds. */
export interface SqliteNodeFileInfo {
  readonly schemaVersion: number;
  readonly nodeId: string | undefined;
}

/**
 * Reads a node database's schema version and node id on a read-only
 * connection of its own, without opening the store: the node may be running
 * (WAL lets this read beside it), and nothing is migrated or written.
 */
export function readSqliteNodeFile(path: string): SqliteNodeFileInfo {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const schemaVersion = db.pragma("user_version", { simple: true }) as number;
    const hasMeta = db.prepare<[], number>("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'").pluck().get() === 1;
    return { schemaVersion, nodeId: hasMeta ? metaJson<string>(db, "nodeId") : undefined };
  } finally {
    db.close();
  }
}

/** Opens a snapshot of the database at `path` on a connection of its own. */
export function openSqliteSnapshot(path: string): SnapshotReader {
  if (path === ":memory:") throw new Error("a snapshot needs a database file: an in-memory database has no second connection");
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    db.prepare("BEGIN").run();
    // The first read starts the read transaction: everything after sees this moment.
    const vv = vvFromRows(db.prepare<[], SqlVvRow>("SELECT origin, seq FROM node_vv").all());
    const header: SnapshotHeader = { vv, sweptVv: metaJson<VersionVector>(db, "sweptVv") ?? {}, hlc: metaJson<Hlc>(db, "lastHlc") ?? HLC_ZERO };
    const statements = TABLES.map((t) => ({ ns: t.ns, stmt: db.prepare<[string, number], Record<string, unknown>>(t.sql) }));
    let table = 0;
    let after = "";
    let closed = false;
    return {
      header,
      next(maxRows, maxBytes) {
        if (closed) throw new Error("snapshot reader is closed");
        const out: SnapshotRow[] = [];
        let taken = 0;
        while (table < statements.length && out.length < maxRows && taken < maxBytes) {
          const { ns, stmt } = statements[table] as (typeof statements)[number];
          // Few rows per query when they are large (docs), so one query never reads far past the byte budget.
          const limit = Math.min(maxRows - out.length, ns === "docs" ? 16 : 256);
          const rows = stmt.all(after, limit);
          let consumed = 0;
          for (const r of rows) {
            const row = rowOf(ns, r);
            out.push(row);
            consumed++;
            taken += row.data.length + row.key.length;
            after = row.key;
            if (taken >= maxBytes) break;
          }
          // Every row read was taken and the table had no more: on to the next table.
          if (consumed === rows.length && rows.length < limit) {
            table++;
            after = "";
          }
        }
        return out;
      },
      close() {
        if (closed) return;
        closed = true;
        db.close();
      },
    };
  } catch (err) {
    db.close();
    throw err;
  }
}

function rowOf(ns: SnapshotNs, r: Record<string, unknown>): SnapshotRow {
  if (ns === "idem") {
    const x = r as unknown as SqlIdempotencyRow;
    return { ns, key: x.k, data: idemRowData({ key: x.k, requestHash: x.hash, status: x.status, body: x.body, createdAtMs: x.created_at_ms }) };
  }
  if (ns === "docs") return { ns, key: r["key"] as string, data: bytes(r["state"] as Buffer) };
  return { ns, key: r["key"] as string, data: textRowData(r["state"] as string) };
}

function prepareStatements(db: Database.Database) {
  return {
    stage: db.prepare<[string, string, Uint8Array]>(
      "INSERT INTO snapshot_stage (ns, key, data) VALUES (?, ?, ?) ON CONFLICT (ns, key) DO UPDATE SET data = excluded.data",
    ),
    clearStage: db.prepare("DELETE FROM snapshot_stage"),
    countStage: db.prepare<[], number>("SELECT COUNT(*) FROM snapshot_stage").pluck(),
    stagedFirst: db.prepare<[number], { ns: SnapshotNs; key: string; data: Buffer }>("SELECT ns, key, data FROM snapshot_stage ORDER BY ns, key LIMIT ?"),
    stagedAfter: db.prepare<[string, string, number], { ns: SnapshotNs; key: string; data: Buffer }>(
      "SELECT ns, key, data FROM snapshot_stage WHERE (ns, key) > (?, ?) ORDER BY ns, key LIMIT ?",
    ),
    unstagedKv: db.prepare<[string, number], { key: string; state: string }>(
      `SELECT key, state FROM kv WHERE key > ?
         AND NOT EXISTS (SELECT 1 FROM snapshot_stage s WHERE s.ns = 'kv' AND s.key = kv.key)
       ORDER BY key LIMIT ?`,
    ),
    deleteKv: db.prepare<[string]>("DELETE FROM kv WHERE key = ?"),
    addIdempotency: db.prepare<[string, string, number, string, number]>(
      "INSERT OR IGNORE INTO idempotency (k, hash, status, body, created_at_ms) VALUES (?, ?, ?, ?, ?)",
    ),
    setMeta: db.prepare<[string, string]>("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"),
  };
}

/** The node connection's part of an install: what a SqliteStore lends it. */
export interface SqliteInstallHost {
  readonly db: Database.Database;
  readonly local: <N extends Namespace>(ns: N, key: string) => StateOf<N> | undefined;
  readonly putRow: <N extends Namespace>(ns: N, row: RowOf<N>) => void;
  readonly getMeta: <T>(key: string) => T | undefined;
  /** Raises node_vv and op_floor to `vv` and deletes the logged ops at or below it. */
  readonly raiseTo: (vv: VersionVector) => void;
}

/** The staging table and the install, on the node's connection. */
export class SqliteSnapshotStage {
  private readonly s;

  constructor(private readonly h: SqliteInstallHost) {
    this.s = prepareStatements(h.db);
  }

  clear(): void {
    this.s.clearStage.run();
  }

  count(): number {
    return this.s.countStage.get() as number;
  }

  /** Stages rows in one transaction. */
  stage(rows: readonly SnapshotRow[]): void {
    this.h.db.transaction(() => {
      for (const r of rows) this.s.stage.run(r.ns, r.key, r.data);
    }).immediate();
  }

  /** Installs the staged snapshot in one IMMEDIATE transaction. */
  install(header: SnapshotHeader, rules: InstallRules): InstallResult {
    const { h, s } = this;
    const io: InstallIo = {
      stagedPage(after: StageCursor | null, limit: number) {
        const rows = after === null ? s.stagedFirst.all(limit) : s.stagedAfter.all(after.ns, after.key, limit);
        return rows.map((r) => ({ ns: r.ns, key: r.key, data: bytes(r.data) }));
      },
      unstagedKvPage(after, limit) {
        return s.unstagedKv.all(after, limit).map((r) => ({ key: r.key, reg: decodeKvState(r.state), deleted: false }));
      },
      local: h.local,
      putRow: h.putRow,
      deleteKv(key) {
        s.deleteKv.run(key);
      },
      addIdempotency(r) {
        s.addIdempotency.run(r.key, r.requestHash, r.status, r.body, r.createdAtMs);
      },
      localMeta(): InstalledMeta {
        return { lastSeq: h.getMeta<number>("lastSeq") ?? 0, lastHlc: h.getMeta<Hlc>("lastHlc") ?? HLC_ZERO, sweptVv: h.getMeta<VersionVector>("sweptVv") ?? {} };
      },
      finish(vv, meta) {
        h.raiseTo(vv);
        s.setMeta.run("lastSeq", encodeMetaValue("lastSeq", meta.lastSeq));
        s.setMeta.run("lastHlc", encodeMetaValue("lastHlc", meta.lastHlc));
        s.setMeta.run("sweptVv", encodeMetaValue("sweptVv", meta.sweptVv));
        s.clearStage.run();
      },
    };
    return h.db.transaction(() => runInstall(io, header, rules)).immediate();
  }
}
