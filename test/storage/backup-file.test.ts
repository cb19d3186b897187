// Backup files across formats (src/storage/backup-file.ts): a file of format
// 1, whose kv rows hold the first register form, still opens and its rows
// decode to the same registers; a file of a format this build does not know
// is refused with the reason.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { asNodeId } from "../../src/core/ids.js";
import type { KvRegister } from "../../src/core/op.js";
import type { SnapshotHeader, SnapshotRow } from "../../src/core/snapshot.js";
import { BACKUP_FORMAT_VERSION, isBackupFileError, openBackupFile, writeBackupFile } from "../../src/storage/backup-file.js";
import type { SnapshotReader } from "../../src/storage/port.js";
import { decodeRow, textRowData } from "../../src/storage/snapshot-install.js";

const header: SnapshotHeader = { vv: { a: 2 }, sweptVv: {}, hlc: { wallMs: 1_700_000_000_000, logical: 0 } };
const reg = (seq: number, value: string | null): KvRegister => ({
  siblings: [{ valueJson: value, hlc: { wallMs: 1_700_000_000_000 + seq, logical: 0 }, origin: asNodeId("a"), seq, vv: { a: seq } }],
});

/** A reader over fixed rows, as a store's openSnapshot gives them. */
function readerOf(rows: SnapshotRow[]): SnapshotReader {
  let at = 0;
  return { header, next: (maxRows) => rows.slice(at, (at = Math.min(rows.length, at + maxRows))), close: () => undefined };
}

/** Rewrites a finished file's format number, as an older build wrote it. */
function setFormat(path: string, format: number): void {
  const db = new Database(path);
  db.prepare("UPDATE header SET format = ? WHERE id = 1").run(format);
  db.pragma(`user_version = ${format}`);
  db.close();
}

let dir = "";
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("backup file formats", () => {
  it("opens a format-1 file with first-form kv rows, and its rows decode to the same registers", () => {
    dir = mkdtempSync(join(tmpdir(), "geokv-backup-"));
    const path = join(dir, "old.gkvb");
    const regs = { k1: reg(1, '"one"'), k2: reg(2, null) };
    const rows: SnapshotRow[] = Object.entries(regs).map(([key, r]) => ({ ns: "kv", key, data: textRowData(JSON.stringify(r)) }));
    expect(isBackupFileError(writeBackupFile(path, readerOf(rows), { node: "a", createdAt: new Date().toISOString() }, false))).toBe(false);
    expect(BACKUP_FORMAT_VERSION).toBe(2);
    setFormat(path, 1);
    const f = openBackupFile(path);
    if (isBackupFileError(f)) throw new Error(f.problem);
    try {
      expect(f.info.format).toBe(1);
      const got = f.rows().next(10, 1 << 20).map((r) => [r.key, decodeRow(r)]);
      expect(got).toEqual([
        ["k1", { ns: "kv", state: regs.k1 }],
        ["k2", { ns: "kv", state: regs.k2 }],
      ]);
    } finally {
      f.close();
    }
  });

  it("refuses a format this build does not read, and a header that disagrees with the file's format", () => {
    dir = mkdtempSync(join(tmpdir(), "geokv-backup-"));
    const newer = join(dir, "newer.gkvb");
    writeBackupFile(newer, readerOf([]), { node: "a", createdAt: new Date().toISOString() }, false);
    setFormat(newer, 3);
    const a = openBackupFile(newer);
    expect(isBackupFileError(a) && a.problem).toMatch(/format 3 is newer than this geokv reads \(2\)/);

    const mixed = join(dir, "mixed.gkvb");
    writeBackupFile(mixed, readerOf([]), { node: "a", createdAt: new Date().toISOString() }, false);
    const db = new Database(mixed);
    db.pragma("user_version = 1");
    db.close();
    const b = openBackupFile(mixed);
    expect(isBackupFileError(b) && b.problem).toMatch(/header says format 2, not 1/);
  });
});
