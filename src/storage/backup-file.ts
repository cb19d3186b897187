// The backup file of `geokv snapshot create|restore`: one node's snapshot
// (core/snapshot.ts: its header and rows, as a peer would receive them)
// written to one self-describing file, and read back with every byte checked
// before anything is installed from it.
//
// Format, version 2 (version 1 is read too: the same, but its kv rows only
// ever hold the first register form of core/codec/kv-state.ts, which version
// 2 may hold as well): a SQLite database file (rollback journal, no WAL, so a
// read-only copy opens anywhere), readable with the sqlite3 shell:
//
//   PRAGMA application_id = 0x676b7662 ("gkvb")   says it is a geokv backup
//   PRAGMA user_version   = 2                     the format version
//   header (one row, id = 1):
//     format      INTEGER  2 (again, for whoever reads only tables)
//     source_node TEXT     the node the snapshot was read from
//     created_at  TEXT     ISO 8601 UTC, when the snapshot was read
//     vv          TEXT     JSON version vector: every op it covers is in the rows, no other
//     swept_vv    TEXT     JSON version vector: covers every kv tombstone the source dropped
//     hlc         TEXT     JSON {"wallMs", "logical"}: the source's clock at the read
//     rows        INTEGER  how many rows follow
//     rows_sha256 TEXT     hex SHA-256 over the rows in seq order, each as
//                          ns (UTF-8), 0x00, u32be key bytes, key (UTF-8), u32be data bytes, data
//   rows (seq INTEGER PRIMARY KEY from 1, ns TEXT, key TEXT, data BLOB):
//     the snapshot rows in the order the reader gave them; ns is kv, counters,
//     sets, docs or idem, data the stored encoding (JSON text as UTF-8; the
//     Yjs update for docs).
//
// SQLite gives the structure and its own consistency check; the row count and
// the digest catch what it does not (a flipped byte inside a page, rows cut
// off). A writer builds FILE.tmp, fsyncs it, then links or renames it into
// place and fsyncs the folder, so FILE is whole or absent after a crash.

import { createHash, type Hash } from "node:crypto";
import { closeSync, existsSync, fsyncSync, linkSync, openSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { isValidHlc, type Hlc } from "../core/hlc.js";
import { isValidId } from "../core/ids.js";
import { SNAPSHOT_NAMESPACES, type SnapshotHeader, type SnapshotNs, type SnapshotRow } from "../core/snapshot.js";
import { isValidVv } from "../core/version-vector.js";
import type { SnapshotReader } from "./port.js";
import { decodeRow } from "./snapshot-install.js";

/** The format this build writes. */
export const BACKUP_FORMAT_VERSION = 2;
/** The formats this build reads. */
const READABLE_FORMATS: readonly number[] = [1, 2];
/** "gkvb" in ASCII: the application_id of every backup file. */
const APPLICATION_ID = 0x676b7662;
/** Rows per read from the snapshot reader and per insert transaction; bytes per read. */
const WRITE_BATCH_ROWS = 1000;
const WRITE_BATCH_BYTES = 4 * 1_048_576;
/** Rows per query when reading a backup (docs can be large: few at a time). */
const READ_QUERY_ROWS = 64;

/** What a backup file says of itself. */
export interface BackupInfo {
  readonly format: number;
  readonly sourceNode: string;
  /** ISO 8601 UTC. */
  readonly createdAt: string;
  readonly header: SnapshotHeader;
  readonly rows: number;
  /** Rows per namespace. */
  readonly rowsByNs: Readonly<Record<SnapshotNs, number>>;
}

/** A backup file that cannot be used, and why (missing, not a backup, corrupt, newer format). */
export interface BackupFileError {
  readonly type: "BackupFileError";
  readonly path: string;
  readonly problem: string;
}

/** True for the error value of openBackupFile. */
export function isBackupFileError(x: unknown): x is BackupFileError {
  return typeof x === "object" && x !== null && (x as BackupFileError).type === "BackupFileError";
}

/** A verified backup file, open for reading its rows. */
export interface BackupFile {
  readonly info: BackupInfo;
  /** A cursor over the rows from the first: at most `maxRows` a call, and no more once `maxBytes` are taken (at least one); empty at the end. */
  rows(): { next(maxRows: number, maxBytes: number): SnapshotRow[] };
  close(): void;
}

function emptyCounts(): Record<SnapshotNs, number> {
  return Object.fromEntries(SNAPSHOT_NAMESPACES.map((ns) => [ns, 0])) as Record<SnapshotNs, number>;
}

function u32be(n: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

const ZERO = new Uint8Array([0]);

/** Adds one row to the rows digest (see the format above). */
function digestRow(h: Hash, r: SnapshotRow): void {
  const key = Buffer.from(r.key, "utf8");
  h.update(r.ns).update(ZERO).update(u32be(key.length)).update(key).update(u32be(r.data.length)).update(r.data);
}

/** fsync of a file or folder by path. */
function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Where writeBackupFile builds the file before it moves into place. */
export function backupTempPath(path: string): string {
  return `${path}.tmp`;
}

/** The file exists already and `overwrite` was not given. */
export interface BackupExists {
  readonly type: "BackupExists";
  readonly path: string;
}

/**
 * Writes the snapshot `reader` holds to `path` (format above), atomically:
 * built in path.tmp, fsynced, then moved into place, never over an existing
 * file unless `overwrite` (a link fails on an existing name, where a rename
 * would replace it). The reader is read to its end, not closed.
 */
export function writeBackupFile(
  path: string,
  reader: SnapshotReader,
  source: { readonly node: string; readonly createdAt: string },
  overwrite: boolean,
): BackupInfo | BackupExists {
  if (!overwrite && existsSync(path)) return { type: "BackupExists", path };
  const tmp = backupTempPath(path);
  // A tmp left by a create that died: it was never in place, so nothing refers to it.
  rmSync(tmp, { force: true });
  const counts = emptyCounts();
  let total = 0;
  const db = new Database(tmp);
  try {
    // No journal: the file is not in place until it is complete, so a crash only leaves a tmp to remove.
    db.pragma("journal_mode = OFF");
    db.pragma("synchronous = OFF");
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.exec(`
      CREATE TABLE header (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        format      INTEGER NOT NULL,
        source_node TEXT    NOT NULL,
        created_at  TEXT    NOT NULL,
        vv          TEXT    NOT NULL,
        swept_vv    TEXT    NOT NULL,
        hlc         TEXT    NOT NULL,
        rows        INTEGER NOT NULL,
        rows_sha256 TEXT    NOT NULL
      );
      CREATE TABLE rows (
        seq  INTEGER PRIMARY KEY,
        ns   TEXT NOT NULL CHECK (ns IN ('kv', 'counters', 'sets', 'docs', 'idem')),
        key  TEXT NOT NULL,
        data BLOB NOT NULL
      );`);
    const insert = db.prepare<[number, string, string, Uint8Array]>("INSERT INTO rows (seq, ns, key, data) VALUES (?, ?, ?, ?)");
    const insertBatch = db.transaction((rows: readonly SnapshotRow[]) => {
      for (const r of rows) {
        total++;
        counts[r.ns]++;
        insert.run(total, r.ns, r.key, r.data);
      }
    });
    const digest = createHash("sha256");
    for (let rows = reader.next(WRITE_BATCH_ROWS, WRITE_BATCH_BYTES); rows.length > 0; rows = reader.next(WRITE_BATCH_ROWS, WRITE_BATCH_BYTES)) {
      insertBatch(rows);
      for (const r of rows) digestRow(digest, r);
    }
    const h = reader.header;
    db.prepare("INSERT INTO header VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)").run(
      BACKUP_FORMAT_VERSION,
      source.node,
      source.createdAt,
      JSON.stringify(h.vv),
      JSON.stringify(h.sweptVv),
      JSON.stringify(h.hlc),
      total,
      digest.digest("hex"),
    );
    // Last: a file without it is not taken for a backup of this format.
    db.pragma(`user_version = ${BACKUP_FORMAT_VERSION}`);
    db.pragma("journal_mode = DELETE");
    db.close();
    fsyncPath(tmp);
    if (overwrite) renameSync(tmp, path);
    else {
      try {
        linkSync(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") {
          rmSync(tmp, { force: true });
          return { type: "BackupExists", path };
        }
        throw err;
      }
      rmSync(tmp);
    }
    fsyncPath(dirname(path));
  } catch (err) {
    if (db.open) db.close();
    rmSync(tmp, { force: true });
    throw err;
  }
  return { format: BACKUP_FORMAT_VERSION, sourceNode: source.node, createdAt: source.createdAt, header: reader.header, rows: total, rowsByNs: counts };
}

interface HeaderRow {
  format: unknown;
  source_node: unknown;
  created_at: unknown;
  vv: unknown;
  swept_vv: unknown;
  hlc: unknown;
  rows: unknown;
  rows_sha256: unknown;
}

function parseJson(text: unknown): unknown {
  if (typeof text !== "string") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The header row checked field by field: the info (counts still zero), or what is wrong. */
function parseHeader(row: HeaderRow | undefined, version: number): Omit<BackupInfo, "rowsByNs"> & { sha256: string } | string {
  if (row === undefined) return "its header row is missing";
  if (row.format !== version) return `its header says format ${String(row.format)}, not ${version}`;
  if (typeof row.source_node !== "string" || !isValidId(row.source_node)) return "its header's source_node is not a node id";
  if (typeof row.created_at !== "string" || Number.isNaN(Date.parse(row.created_at))) return "its header's created_at is not a date";
  const vv = parseJson(row.vv);
  if (!isValidVv(vv)) return "its header's vv is not a version vector";
  const sweptVv = parseJson(row.swept_vv);
  if (!isValidVv(sweptVv)) return "its header's swept_vv is not a version vector";
  const hlc = parseJson(row.hlc) as Hlc | undefined;
  if (typeof hlc !== "object" || hlc === null || !isValidHlc(hlc)) return "its header's hlc is not a clock reading";
  if (typeof row.rows !== "number" || !Number.isSafeInteger(row.rows) || row.rows < 0) return "its header's row count is not a count";
  if (typeof row.rows_sha256 !== "string" || !/^[0-9a-f]{64}$/.test(row.rows_sha256)) return "its header's rows_sha256 is not a SHA-256";
  return {
    format: row.format,
    sourceNode: row.source_node,
    createdAt: row.created_at,
    header: { vv, sweptVv, hlc: { wallMs: hlc.wallMs, logical: hlc.logical } },
    rows: row.rows,
    sha256: row.rows_sha256,
  };
}

function isSnapshotNs(s: unknown): s is SnapshotNs {
  return SNAPSHOT_NAMESPACES.some((ns) => ns === s);
}

/** A cursor over the rows table in seq order. */
function rowCursor(db: Database.Database) {
  const page = db.prepare<[number, number], { seq: number; ns: unknown; key: unknown; data: unknown }>(
    "SELECT seq, ns, key, data FROM rows WHERE seq > ? ORDER BY seq LIMIT ?",
  );
  let after = 0;
  let done = false;
  return {
    next(maxRows: number, maxBytes: number): SnapshotRow[] {
      const out: SnapshotRow[] = [];
      let taken = 0;
      while (!done && out.length < maxRows && taken < maxBytes) {
        const limit = Math.min(maxRows - out.length, READ_QUERY_ROWS);
        const rows = page.all(after, limit);
        let consumed = 0;
        for (const r of rows) {
          if (!isSnapshotNs(r.ns) || typeof r.key !== "string" || !Buffer.isBuffer(r.data)) {
            throw new Error(`row ${r.seq} is not a snapshot row (ns, key and data of the wrong kinds)`);
          }
          const data = new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.length);
          out.push({ ns: r.ns, key: r.key, data });
          taken += data.length + r.key.length;
          after = r.seq;
          consumed++;
          // Rows past the byte budget wait for the next call: it reads on from `after`.
          if (taken >= maxBytes) break;
        }
        // Every row read was taken and the table had no more.
        if (consumed === rows.length && rows.length < limit) done = true;
      }
      return out;
    },
  };
}

/**
 * Opens the backup file at `path` read-only and checks all of it: that it is
 * a SQLite file of this format, SQLite's quick_check, the header's fields,
 * and every row (its kind, that it decodes as its namespace stores it, the
 * count and the digest), so a restore finds out before it writes anything.
 */
export function openBackupFile(path: string): BackupFile | BackupFileError {
  const fail = (problem: string): BackupFileError => ({ type: "BackupFileError", path, problem });
  if (!existsSync(path)) return fail("no such file");
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    return fail(`cannot open it: ${(err as Error).message}`);
  }
  try {
    const appId = db.pragma("application_id", { simple: true }) as number;
    if (appId !== APPLICATION_ID) throw new Error("it is a SQLite file but not a geokv backup (application_id)");
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version === 0) throw new Error("it was never finished (no format version): a create that did not complete");
    if (version > BACKUP_FORMAT_VERSION) throw new Error(`its format ${version} is newer than this geokv reads (${BACKUP_FORMAT_VERSION}); restore it with a newer geokv`);
    if (!READABLE_FORMATS.includes(version)) throw new Error(`its format ${version} is not one this geokv reads (${READABLE_FORMATS.join(", ")})`);
    const check = (db.pragma("quick_check") as { quick_check: string }[]).map((r) => r.quick_check).join("; ");
    if (check !== "ok") throw new Error(`SQLite finds it damaged: ${check}`);
    const parsed = parseHeader(db.prepare<[], HeaderRow>("SELECT * FROM header WHERE id = 1").get(), version);
    if (typeof parsed === "string") throw new Error(parsed);
    const counts = emptyCounts();
    const digest = createHash("sha256");
    let total = 0;
    const cursor = rowCursor(db);
    for (let rows = cursor.next(WRITE_BATCH_ROWS, WRITE_BATCH_BYTES); rows.length > 0; rows = cursor.next(WRITE_BATCH_ROWS, WRITE_BATCH_BYTES)) {
      for (const r of rows) {
        decodeRow(r);
        digestRow(digest, r);
        counts[r.ns]++;
        total++;
      }
    }
    if (total !== parsed.rows) throw new Error(`it holds ${total} rows; its header says ${parsed.rows} (cut off or altered)`);
    if (digest.digest("hex") !== parsed.sha256) throw new Error("its rows do not match their SHA-256 in the header (altered or damaged)");
    const { sha256: _sha, ...rest } = parsed;
    const info: BackupInfo = { ...rest, rowsByNs: counts };
    return {
      info,
      rows: () => rowCursor(db),
      close() {
        if (db.open) db.close();
      },
    };
  } catch (err) {
    db.close();
    // SQLite's own words ("file is not a database") say what, not that it is the backup that is unreadable.
    const sqlite = String((err as { code?: unknown }).code ?? "").startsWith("SQLITE_");
    return fail(sqlite ? `not a readable geokv backup: ${(err as Error).message}` : (err as Error).message);
  }
}
