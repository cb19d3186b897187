// `geokv snapshot create|restore`: backups of one node's data. create reads a
// consistent snapshot of the node's database on a read-only connection of
// its own (the node may be running; its LOCK is not taken) and writes it to a
// backup file (src/storage/backup-file.ts). restore checks the whole file,
// then makes a node's data directory from it under that directory's LOCK:
// the rows are staged in bounded batches and installed in one transaction
// with the core's install rules, as a snapshot from a peer would be. Every
// refusal leaves the file system as it found it.

import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { NodeId } from "../core/ids.js";
import { installRules, SNAPSHOT_NAMESPACES, type SnapshotNs } from "../core/snapshot.js";
import type { VersionVector } from "../core/version-vector.js";
import { nodeDataDir, nodeDbPath, tryLockDataDir } from "../node/data-dir.js";
import { isBackupFileError, openBackupFile, writeBackupFile, type BackupFile, type BackupInfo } from "../storage/backup-file.js";
import { SCHEMA_VERSION } from "../storage/migrations.js";
import { openSqliteStorage, type SqliteStorage } from "../storage/sqlite.js";
import { openSqliteSnapshot, readSqliteNodeFile } from "../storage/sqlite-snapshot.js";
import type { SnapshotCommand } from "./snapshot-args.js";

/** Rows and bytes per staging transaction of a restore: memory and transaction size stay bounded. */
const STAGE_BATCH_ROWS = 1000;
const STAGE_BATCH_BYTES = 4 * 1_048_576;

/** A refusal or failure: its exit code (1, or 2 for a usage-like refusal) and what is printed. */
class CommandFailure extends Error {
  constructor(readonly code: string, message: string, readonly exitCode: 1 | 2 = 1) {
    super(message);
  }
}

function printError(json: boolean, code: string, message: string): void {
  if (json) process.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
  else process.stderr.write(`geokv: ${message}\n`);
}

function rowCounts(info: BackupInfo): Record<SnapshotNs | "total", number> {
  return { ...info.rowsByNs, total: info.rows };
}

function countsText(info: BackupInfo): string {
  return `${SNAPSHOT_NAMESPACES.map((ns) => `${ns} ${info.rowsByNs[ns]}`).join(", ")} (${info.rows} in all)`;
}

function vvText(vv: VersionVector): string {
  return JSON.stringify(vv);
}

/** The database of node `node` that a create reads, checked without writing to it. */
function sourceDb(dataDir: string, node: NodeId): string {
  const path = nodeDbPath(dataDir, node);
  if (!existsSync(path)) throw new CommandFailure("no_database", `no database of node ${node} at ${path} (is --data right?)`);
  const found = readSqliteNodeFile(path);
  if (found.schemaVersion < SCHEMA_VERSION) {
    throw new CommandFailure("schema_mismatch", `${path} has schema version ${found.schemaVersion}, this geokv reads ${SCHEMA_VERSION}: start node ${node} once with this geokv (it migrates the database), then create the snapshot`);
  }
  if (found.schemaVersion > SCHEMA_VERSION) {
    throw new CommandFailure("schema_mismatch", `${path} has schema version ${found.schemaVersion}, newer than this geokv reads (${SCHEMA_VERSION}): use the geokv that wrote it`);
  }
  if (found.nodeId !== node) {
    throw new CommandFailure("wrong_node", found.nodeId === undefined ? `${path} has no node id: it is not a node's database` : `${path} holds the data of node ${found.nodeId}, not ${node}`);
  }
  return path;
}

function create(cmd: Extract<SnapshotCommand, { action: "create" }>): void {
  const file = resolve(cmd.file);
  const db = sourceDb(resolve(cmd.data), cmd.node);
  if (cmd.force !== true && existsSync(file)) throw new CommandFailure("file_exists", `${file} exists; pass --force to replace it`, 2);
  if (!existsSync(dirname(file)) || !statSync(dirname(file)).isDirectory()) throw new CommandFailure("no_folder", `cannot write ${file}: ${dirname(file)} is not a folder`);
  const reader = openSqliteSnapshot(db);
  let info;
  try {
    info = writeBackupFile(file, reader, { node: cmd.node, createdAt: new Date().toISOString() }, cmd.force === true);
  } finally {
    reader.close();
  }
  if ("type" in info) throw new CommandFailure("file_exists", `${file} exists; pass --force to replace it`, 2);
  const bytes = statSync(file).size;
  if (cmd.json === true) {
    const { header } = info;
    process.stdout.write(`${JSON.stringify({ file, node: cmd.node, createdAt: info.createdAt, vv: header.vv, sweptVv: header.sweptVv, hlc: header.hlc, rows: rowCounts(info), bytes })}\n`);
    return;
  }
  process.stdout.write(`wrote ${file}: a snapshot of node ${cmd.node} at ${info.createdAt}, ${bytes} bytes
  covers vv  ${vvText(info.header.vv)}
  rows       ${countsText(info)}
`);
}

/** What a restore made that a failure must take away again. */
interface Made {
  dir: boolean;
  lock: boolean;
  db: boolean;
}

/** Removes what a failed restore made: the folder if it made it, else the database files and LOCK it made. */
function undo(dir: string, db: string, made: Made): void {
  if (made.dir) {
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  if (made.db) for (const f of [db, `${db}-wal`, `${db}-shm`, `${db}-journal`]) rmSync(f, { force: true });
  if (made.lock) rmSync(join(dir, "LOCK"), { force: true });
}

/** Opens the target store, refusing one that holds another node's data or any data at all. */
function openTarget(db: string, node: NodeId, existed: boolean): SqliteStorage {
  if (existed) {
    // Read first without opening the store: a refused restore must not even migrate it.
    const found = readSqliteNodeFile(db);
    if (found.nodeId !== undefined && found.nodeId !== node) throw new CommandFailure("wrong_node", `${db} holds the data of node ${found.nodeId}, not ${node}; refusing to restore over it`);
  }
  const storage = openSqliteStorage({ path: db });
  if (storage.holdsData()) {
    storage.close();
    throw new CommandFailure("target_not_empty", `${db} already holds data of node ${node}; refusing to restore over it (move that folder away, or restore into another --data)`);
  }
  return storage;
}

/** Stages every row of `file` in bounded batches and installs them in one transaction. */
function install(storage: SqliteStorage, file: BackupFile, node: NodeId) {
  if (storage.getMeta("nodeId") === undefined) storage.setMeta("nodeId", node);
  // Rows of an earlier restore that died are not part of this one.
  storage.clearSnapshotStage();
  const cursor = file.rows();
  for (let rows = cursor.next(STAGE_BATCH_ROWS, STAGE_BATCH_BYTES); rows.length > 0; rows = cursor.next(STAGE_BATCH_ROWS, STAGE_BATCH_BYTES)) {
    storage.stageSnapshotRows(rows);
  }
  const staged = storage.stagedSnapshotRows();
  if (staged !== file.info.rows) throw new Error(`staged ${staged} rows, the file holds ${file.info.rows}`);
  const { header } = file.info;
  return storage.installSnapshot(header, installRules(node, header));
}

function restore(cmd: Extract<SnapshotCommand, { action: "restore" }>): void {
  const path = resolve(cmd.file);
  const file = openBackupFile(path);
  if (isBackupFileError(file)) throw new CommandFailure("bad_snapshot_file", `cannot restore from ${path}: ${file.problem}`);
  const dir = nodeDataDir(resolve(cmd.data), cmd.node);
  const db = nodeDbPath(resolve(cmd.data), cmd.node);
  const made: Made = { dir: !existsSync(dir), lock: !existsSync(join(dir, "LOCK")), db: !existsSync(db) };
  let release: (() => void) | undefined;
  let storage: SqliteStorage | undefined;
  let result;
  try {
    mkdirSync(dir, { recursive: true });
    const lock = tryLockDataDir(dir);
    if (typeof lock !== "function") {
      throw new CommandFailure("target_in_use", `${dir} is in use by a running geokv process (${lock.lockPath} is locked); stop it before restoring`);
    }
    release = lock;
    storage = openTarget(db, cmd.node, !made.db);
    result = install(storage, file, cmd.node);
    const applied = storage.appliedVv();
    storage.close();
    storage = undefined;
    release();
    release = undefined;
    const { info } = file;
    if (cmd.json === true) {
      process.stdout.write(`${JSON.stringify({ file: path, node: cmd.node, dir, source: info.sourceNode, createdAt: info.createdAt, vv: applied, rows: rowCounts(info), removedKv: result.removedKv })}\n`);
      return;
    }
    process.stdout.write(`restored node ${cmd.node} into ${dir} from ${path}
  source     node ${info.sourceNode} at ${info.createdAt}
  covers vv  ${vvText(applied)}
  rows       ${countsText(info)}
Started, ${cmd.node} catches up from its peers with the writes made after the backup.
`);
  } catch (err) {
    try {
      if (storage !== undefined && !made.db) storage.clearSnapshotStage();
    } finally {
      storage?.close();
      release?.();
      // A refusal because another process holds the folder must not touch what that process owns.
      if (!(err instanceof CommandFailure && err.code === "target_in_use")) undo(dir, db, made);
    }
    throw err;
  } finally {
    file.close();
  }
}

/** Runs `geokv snapshot create|restore`; returns the exit code. */
export function runSnapshot(cmd: SnapshotCommand): number {
  const json = cmd.json === true;
  try {
    if (cmd.action === "create") create(cmd);
    else restore(cmd);
    return 0;
  } catch (err) {
    if (err instanceof CommandFailure) {
      printError(json, err.code, err.message);
      return err.exitCode;
    }
    printError(json, "failed", `snapshot ${cmd.action} failed: ${(err as Error).message}`);
    return 1;
  }
}
