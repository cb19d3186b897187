// Runs the storage contract against SQLite files in a temporary directory, and
// checks what only SQLite has: pragmas, migrations, and rollback of a failure
// raised inside the database engine itself.

import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { MIGRATIONS, SCHEMA_VERSION, SchemaTooNewError, migrate } from "../../src/storage/migrations.js";
import type { Storage } from "../../src/storage/port.js";
import { openSqliteStorage } from "../../src/storage/sqlite.js";
import type { SqliteStorage } from "../../src/storage/sqlite.js";
import { runStorageContract } from "./contract.js";
import { A, docOp, kvOp, reg } from "./fixtures.js";

const root = mkdtempSync(join(tmpdir(), "geokv-storage-"));
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

let dbCount = 0;
/** A path for a new database file in its own directory under the test's temp root. */
function freshPath(): string {
  dbCount++;
  return join(root, `db-${dbCount}`, "geokv.sqlite");
}

runStorageContract("sqlite", {
  create: () => openSqliteStorage({ path: freshPath() }),
  reopen: (storage: Storage) => {
    const path = (storage as SqliteStorage).path;
    storage.close();
    return openSqliteStorage({ path });
  },
});

describe("sqlite storage", () => {
  it("runs in WAL mode with synchronous=FULL by default, NORMAL on request", () => {
    const path = freshPath();
    const full = openSqliteStorage({ path });
    expect(full.pragmas()).toEqual({ journalMode: "wal", synchronous: "FULL", busyTimeoutMs: 5000, schemaVersion: SCHEMA_VERSION, autoVacuum: "incremental" });
    full.close();
    const normal = openSqliteStorage({ path, synchronous: "NORMAL", busyTimeoutMs: 250 });
    expect(normal.pragmas()).toMatchObject({ journalMode: "wal", synchronous: "NORMAL", busyTimeoutMs: 250 });
    normal.close();
  });

  it("refuses a database written by a newer schema, with a clear message, and leaves it alone", () => {
    const path = freshPath();
    openSqliteStorage({ path }).close();
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => openSqliteStorage({ path })).toThrow(SchemaTooNewError);
    expect(() => openSqliteStorage({ path })).toThrow(
      new RegExp(`schema version ${SCHEMA_VERSION + 1} is newer than this geokv supports \\(${SCHEMA_VERSION}\\)`),
    );
    const check = new Database(path);
    expect(check.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION + 1);
    check.close();
  });

  it("migrates an older database forward, one transaction per version, and only once", () => {
    const db = new Database(":memory:");
    expect(migrate(db, ":memory:", MIGRATIONS)).toEqual({ from: 0, to: SCHEMA_VERSION });
    const next = [...MIGRATIONS, { version: SCHEMA_VERSION + 1, description: "test", sql: "CREATE TABLE extra (x INTEGER);" }];
    expect(migrate(db, ":memory:", next)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION + 1 });
    expect(migrate(db, ":memory:", next)).toEqual({ from: SCHEMA_VERSION + 1, to: SCHEMA_VERSION + 1 });
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'extra'").pluck().get()).toBe("extra");
    // A failing migration rolls back with its version bump.
    const broken = [...next, { version: SCHEMA_VERSION + 2, description: "broken", sql: "CREATE TABLE y (z); SELECT nope FROM nowhere;" }];
    expect(() => migrate(db, ":memory:", broken)).toThrow();
    expect(db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION + 1);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'y'").pluck().get()).toBeUndefined();
    db.close();
  });

  it("migrates a version-1 op log: old ops read back without an idempotency key, new ones keep theirs", () => {
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    const raw = new Database(path);
    migrate(raw, path, MIGRATIONS.slice(0, 1));
    raw.prepare("INSERT INTO ops (origin, seq, hlc, ns, key, body, payload) VALUES (?, ?, ?, ?, ?, ?, NULL)")
      .run(A, 1, "001700000000001-00001", "kv", "k", JSON.stringify({ valueJson: "1", vv: { [A]: 1 } }));
    raw.close();
    const s = openSqliteStorage({ path });
    expect(s.pragmas().schemaVersion).toBe(SCHEMA_VERSION);
    expect(s.getOps(A, 1, 1, 1)).toEqual([kvOp(A, 1)]);
    const withIdem = { ...kvOp(A, 2), idem: { key: "retry-1", requestHash: "h" } };
    s.commit({ ops: [withIdem] });
    expect(s.getOps(A, 1, 2, 10)).toEqual([kvOp(A, 1), withIdem]);
    s.close();
    const check = new Database(path, { readonly: true });
    expect(check.prepare("SELECT seq, idem_key, idem_hash FROM ops ORDER BY seq").all()).toEqual([
      { seq: 1, idem_key: null, idem_hash: null },
      { seq: 2, idem_key: "retry-1", idem_hash: "h" },
    ]);
    check.close();
  });

  it("migrates a version-2 file to auto_vacuum=INCREMENTAL, keeping its data, and then gives freed pages back to the file system", () => {
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    const raw = new Database(path);
    migrate(raw, path, MIGRATIONS.slice(0, 2));
    expect(raw.pragma("auto_vacuum", { simple: true })).toBe(0);
    raw.close();
    const s = openSqliteStorage({ path });
    expect(s.pragmas()).toMatchObject({ schemaVersion: SCHEMA_VERSION, autoVacuum: "incremental" });
    s.commit({ ops: [kvOp(A, 1)], kv: [{ key: "k", reg: reg("1"), deleted: false }], appliedVv: { [A]: 1 } });
    // 2,000 idempotency records of 2 KiB: about a thousand pages, freed by one prune.
    const body = "x".repeat(2048);
    s.commit({ idempotency: Array.from({ length: 2000 }, (_, i) => ({ key: `idem-${i}`, requestHash: "h", status: 200, body, createdAtMs: 1000 })) });
    const grown = s.sizeBytes();
    expect(s.pruneIdempotency(2000)).toBe(2000);
    const free = s.freePages();
    expect(free).toBeGreaterThan(500);
    // Bounded: one call returns at most what it is asked for.
    expect(s.reclaimSpace(100)).toBe(100);
    expect(s.freePages()).toBe(free - 100);
    let returned = 100;
    for (let n = s.reclaimSpace(100); n > 0; n = s.reclaimSpace(100)) returned += n;
    expect(returned).toBe(free);
    expect(s.freePages()).toBe(0);
    expect(s.reclaimSpace(100)).toBe(0);
    expect(() => s.reclaimSpace(0)).toThrow(/maxPages/);
    expect(s.integrityCheck()).toBe("ok");
    expect(s.getKv("k")).toEqual(reg("1"));
    s.close();
    // The file itself shrank (the WAL is checkpointed into it at close).
    const reopened = openSqliteStorage({ path });
    expect(reopened.sizeBytes()).toBeLessThan(grown / 2);
    reopened.close();
  });

  it("refuses half an idempotency key in the op log", () => {
    const path = freshPath();
    openSqliteStorage({ path }).close();
    const raw = new Database(path);
    expect(() => raw.prepare("INSERT INTO ops (origin, seq, hlc, ns, key, body, idem_key) VALUES (?, 1, ?, 'kv', 'k', '{}', 'x')")
      .run(A, "001700000000001-00001")).toThrow(/CHECK constraint failed/);
    raw.close();
  });

  it("keeps data across reopen with NORMAL too, and after a checkpointed close", () => {
    const path = freshPath();
    const s = openSqliteStorage({ path, synchronous: "NORMAL" });
    s.commit({ ops: [kvOp(A, 1), docOp(A, 2)], kv: [{ key: "k", reg: reg("1"), deleted: false }], appliedVv: { [A]: 2 } });
    s.close();
    const again = openSqliteStorage({ path });
    expect(again.getOps(A, 1, 2, 10)).toEqual([kvOp(A, 1), docOp(A, 2)]);
    expect(again.getKv("k")).toEqual(reg("1"));
    expect(again.appliedVv()).toEqual({ [A]: 2 });
    again.close();
  });

  it("rolls back a batch when the database itself fails midway", () => {
    const path = freshPath();
    const s = openSqliteStorage({ path });
    // A trigger makes the idempotency insert fail inside SQLite, after ops and states were written.
    const raw = new Database(path);
    raw.exec("CREATE TRIGGER fail_idem BEFORE INSERT ON idempotency BEGIN SELECT RAISE(ABORT, 'forced failure'); END;");
    raw.close();
    expect(() => s.commit({
      ops: [kvOp(A, 1)],
      kv: [{ key: "k", reg: reg("1"), deleted: false }],
      idempotency: [{ key: "i", requestHash: "h", status: 200, body: "{}", createdAtMs: 1 }],
      appliedVv: { [A]: 1 },
    })).toThrow(/forced failure/);
    expect(s.getOps(A, 1, 1, 1)).toEqual([]);
    expect(s.getKv("k")).toBeUndefined();
    expect(s.appliedVv()).toEqual({});
    expect(s.integrityCheck()).toBe("ok");
    s.close();
  });

  it("stores key states and ops as readable columns (JSON text, encoded HLC, bytes as BLOB)", () => {
    const path = freshPath();
    const s = openSqliteStorage({ path });
    s.commit({ ops: [kvOp(A, 1, "k"), docOp(A, 2)], kv: [{ key: "k", reg: reg("1"), deleted: false }] });
    s.close();
    const raw = new Database(path, { readonly: true });
    const row = raw.prepare("SELECT hlc, ns, key, body, typeof(payload) AS p FROM ops WHERE seq = 1").get();
    expect(row).toEqual({ hlc: "001700000000001-00001", ns: "kv", key: "k", body: JSON.stringify({ valueJson: "1", vv: { [A]: 1 } }), p: "null" });
    expect(raw.prepare("SELECT typeof(payload) FROM ops WHERE seq = 2").pluck().get()).toBe("blob");
    expect(raw.prepare("SELECT typeof(key) FROM kv").pluck().get()).toBe("text");
    raw.close();
  });
});

describe("SQLite: truncating the WAL", () => {
  const walBytes = (path: string): number => {
    try {
      return statSync(`${path}-wal`).size;
    } catch {
      return 0;
    }
  };

  it("gives the WAL's bytes back after a pass, and never waits for a reader that still holds it", () => {
    const path = freshPath();
    // A checkpoint that waited for the reader would wait this long: far past the test's own timeout.
    const s = openSqliteStorage({ path, busyTimeoutMs: 600_000 });
    try {
      for (let i = 0; i < 200; i++) s.commit({ kv: [{ key: `w-${i}`, reg: reg(`"${"v".repeat(200)}"`, A, i + 1), deleted: false }] });
      expect(walBytes(path)).toBeGreaterThan(0);
      expect(s.truncateWal()).toBe(true);
      expect(walBytes(path)).toBe(0);
      // A snapshot reader keeps an old view: the checkpoint cannot finish, so it gives up at once.
      const reader = s.openSnapshot();
      s.commit({ kv: [{ key: "w-late", reg: reg('"late"', A, 500), deleted: false }] });
      expect(s.truncateWal()).toBe(false);
      expect(s.pragmas().busyTimeoutMs).toBe(600_000);
      expect(reader.next(1000, 1 << 30).some((r) => r.key === "w-late")).toBe(false);
      reader.close();
      expect(s.truncateWal()).toBe(true);
      expect(walBytes(path)).toBe(0);
      expect(s.getKv("w-late")).toBeDefined();
    } finally {
      s.close();
    }
  });
});
