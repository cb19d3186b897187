// The SQLite schema as an ordered list of migrations. A data directory outlives
// the binary that wrote it, so the schema version lives in the database
// (PRAGMA user_version) and every open brings an older database up to date,
// one migration per transaction. A database written by a newer geokv is
// refused with a clear error instead of being misread or "repaired".

import type Database from "better-sqlite3";

/** One schema step: `sql` takes version - 1 to `version`. */
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
  /**
   * For a statement SQLite refuses inside a transaction (VACUUM). It must be
   * idempotent: a crash before the version bump runs it again.
   */
  readonly outsideTransaction?: true;
}

/** Every migration, oldest first; versions are 1, 2, 3, ... with no gaps. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "op log, materialized states, conflicts, metadata, node vector, idempotency",
    // WITHOUT ROWID where rows are small and looked up by their key; docs
    // keeps a rowid because a Yjs state grows large and WITHOUT ROWID tables
    // suit rows well under a page. Keys are TEXT with the default BINARY
    // collation: memcmp of UTF-8, which is the byte order listings promise.
    sql: `
      CREATE TABLE ops (
        origin  TEXT    NOT NULL,
        seq     INTEGER NOT NULL CHECK (seq >= 1),
        hlc     TEXT    NOT NULL,
        ns      TEXT    NOT NULL CHECK (ns IN ('kv', 'counters', 'sets', 'docs')),
        key     TEXT    NOT NULL,
        body    TEXT    NOT NULL,
        payload BLOB,
        PRIMARY KEY (origin, seq)
      ) WITHOUT ROWID;
      CREATE TABLE op_floor (
        origin TEXT    NOT NULL PRIMARY KEY,
        seq    INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE kv (
        key     TEXT    NOT NULL PRIMARY KEY,
        state   TEXT    NOT NULL,
        deleted INTEGER NOT NULL CHECK (deleted IN (0, 1))
      ) WITHOUT ROWID;
      CREATE INDEX kv_live ON kv (key) WHERE deleted = 0;
      CREATE TABLE counters (
        key   TEXT NOT NULL PRIMARY KEY,
        state TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE sets (
        key   TEXT NOT NULL PRIMARY KEY,
        state TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE docs (
        key   TEXT NOT NULL PRIMARY KEY,
        state BLOB NOT NULL
      );
      CREATE TABLE conflicts (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        key    TEXT NOT NULL,
        winner TEXT NOT NULL,
        loser  TEXT NOT NULL,
        at     TEXT NOT NULL
      );
      CREATE TABLE meta (
        k TEXT NOT NULL PRIMARY KEY,
        v TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE node_vv (
        origin TEXT    NOT NULL PRIMARY KEY,
        seq    INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE idempotency (
        k             TEXT    NOT NULL PRIMARY KEY,
        hash          TEXT    NOT NULL,
        status        INTEGER NOT NULL,
        body          TEXT    NOT NULL,
        created_at_ms INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX idempotency_created ON idempotency (created_at_ms);
    `,
  },
  {
    version: 2,
    description: "ops keep the client's Idempotency-Key and request hash, so every replica can record the answer",
    // Both or neither: an op carries the key and the hash of its request together.
    sql: `
      ALTER TABLE ops ADD COLUMN idem_key TEXT;
      ALTER TABLE ops ADD COLUMN idem_hash TEXT CHECK ((idem_key IS NULL) = (idem_hash IS NULL));
    `,
  },
  {
    version: 3,
    description: "freed pages can be returned to the file system: auto_vacuum=INCREMENTAL (VACUUM rebuilds the file once)",
    // Without it a database file never shrinks: pruned idempotency records
    // and, later, compacted ops only grow the freelist. The mode of an
    // existing file changes only through a VACUUM, which is idempotent.
    sql: "PRAGMA auto_vacuum = INCREMENTAL; VACUUM;",
    outsideTransaction: true,
  },
  {
    version: 4,
    description: "an index of kv tombstones, so compaction finds them without scanning the live keys",
    sql: "CREATE INDEX kv_dead ON kv (key) WHERE deleted = 1;",
  },
  {
    version: 5,
    description: "a staging table for a snapshot being received: its rows wait here until one transaction installs them",
    sql: `
      CREATE TABLE snapshot_stage (
        ns   TEXT NOT NULL CHECK (ns IN ('kv', 'counters', 'sets', 'docs', 'idem')),
        key  TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (ns, key)
      ) WITHOUT ROWID;
    `,
  },
];

/** Throws unless the versions are 1, 2, 3, ... in order (a programmer error). */
function assertOrdered(migrations: readonly Migration[]): void {
  for (const [i, m] of migrations.entries()) {
    if (m.version !== i + 1) throw new Error(`migrations: version ${m.version} at index ${i}; versions must be 1, 2, 3, ...`);
  }
}
assertOrdered(MIGRATIONS);

/** The schema version this build writes. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;

/** A database written by a newer geokv than this one. */
export class SchemaTooNewError extends Error {
  constructor(readonly file: string, readonly found: number, readonly supported: number) {
    super(
      `${file}: database schema version ${found} is newer than this geokv supports (${supported}). `
      + "It was written by a newer geokv; run that version, or point --data at another directory.",
    );
    this.name = "SchemaTooNewError";
  }
}

/** What migrate did. */
export interface MigrationResult {
  readonly from: number;
  readonly to: number;
}

/** Brings `db` to the last migration's version; throws SchemaTooNewError for a newer database. */
export function migrate(db: Database.Database, file: string, migrations: readonly Migration[] = MIGRATIONS): MigrationResult {
  assertOrdered(migrations);
  const to = migrations.length;
  const from = db.pragma("user_version", { simple: true }) as number;
  if (from > to) throw new SchemaTooNewError(file, from, to);
  for (const m of migrations) {
    if (m.version <= from) continue;
    if (m.outsideTransaction) {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
      continue;
    }
    // The version bump commits with the schema change, so a crash mid-way
    // leaves the previous version intact and the migration is rerun.
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return { from, to };
}
