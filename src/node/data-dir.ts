// A node's data directory: where its database lives (<data>/<nodeId>/geokv.db)
// and the LOCK that keeps a second process off it. The node runtime holds the
// lock while it runs; `geokv snapshot restore` holds it while it writes a data
// directory, so a node cannot start on a half-restored one.

import { join } from "node:path";
import Database from "better-sqlite3";

/** The folder of node `nodeId` under the cluster's data folder. */
export function nodeDataDir(dataDir: string, nodeId: string): string {
  return join(dataDir, nodeId);
}

/** The database file of node `nodeId` under the cluster's data folder. */
export function nodeDbPath(dataDir: string, nodeId: string): string {
  return join(nodeDataDir(dataDir, nodeId), "geokv.db");
}

/** Another process holds the lock: a running node, or a restore under way. */
export interface DataDirBusy {
  readonly type: "DataDirBusy";
  readonly dir: string;
  readonly lockPath: string;
}

/**
 * Takes an OS lock on <dir>/LOCK (the folder must exist), so a second process
 * on the same data directory is refused: two writers on one database would
 * hand out the same dots (seq) and the op log would silently keep only one of
 * each. SQLite's exclusive locking mode keeps its file lock until the
 * connection closes, and the OS drops it when the process dies (SIGKILL
 * included), so a crash never leaves a stale lock. Returns the release, or
 * DataDirBusy when another process holds it.
 */
export function tryLockDataDir(dir: string): (() => void) | DataDirBusy {
  const lockPath = join(dir, "LOCK");
  const db = new Database(lockPath);
  try {
    db.pragma("busy_timeout = 0");
    db.pragma("journal_mode = OFF");
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS held (x); COMMIT;");
  } catch (err) {
    db.close();
    if ((err as { code?: unknown }).code === "SQLITE_BUSY") return { type: "DataDirBusy", dir, lockPath };
    throw err;
  }
  return () => {
    if (db.open) db.close();
  };
}

/** Like tryLockDataDir, for the node runtime: a busy directory throws, and the node does not start. */
export function lockDataDir(dir: string): () => void {
  const r = tryLockDataDir(dir);
  if (typeof r === "function") return r;
  throw new Error(`${dir} is in use by another running geokv process (${r.lockPath} is locked); refusing to start`);
}
