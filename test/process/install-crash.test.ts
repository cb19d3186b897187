// A SIGKILL during a snapshot install (issue 13, test 4). A real child
// process installs a large staged snapshot into a real SQLite file through
// the node's own storage and install rules (test/support/install-child.ts),
// and is killed with SIGKILL while the install's one transaction runs. After
// the kill the file must pass PRAGMA integrity_check and hold exactly the
// state from before (its vector and its rows agree, the stage intact); a run
// that is not killed then installs all of it: the vector rises to the
// snapshot's and the rows are the snapshot's merged with the local ones.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HLC_ZERO } from "../../src/core/hlc.js";
import { asNodeId } from "../../src/core/ids.js";
import type { KvRegister } from "../../src/core/op.js";
import type { SnapshotHeader, SnapshotRow } from "../../src/core/snapshot.js";
import { openSqliteStorage } from "../../src/storage/sqlite.js";

/** Large enough that the install takes far longer than a SIGKILL takes to land. */
const SNAPSHOT_KEYS = 150_000;
const BASE_KEYS = 20_000;
const SELF = "c";
const dir = mkdtempSync(join(tmpdir(), "geokv-install-crash-"));
const path = join(dir, "geokv.db");
const key = (i: number) => `k-${String(i).padStart(6, "0")}`;

const reg = (origin: string, seq: number, vv: Record<string, number>, value: unknown): KvRegister => ({
  siblings: [{ valueJson: JSON.stringify(value), hlc: { wallMs: 1_000 + seq, logical: 0 }, origin: asNodeId(origin), seq, vv }],
});

/** The snapshot: every key up to SNAPSHOT_KEYS written by "b" after seeing all of "a", except every tenth base key (deleted and swept there). */
const header: SnapshotHeader = { vv: { a: BASE_KEYS, b: SNAPSHOT_KEYS }, sweptVv: { a: BASE_KEYS }, hlc: { wallMs: 5_000_000, logical: 0 } };
const snapshotHas = (i: number) => !(i < BASE_KEYS && i % 10 === 0);

function prepare(): void {
  const s = openSqliteStorage({ path });
  const kv = Array.from({ length: BASE_KEYS }, (_, i) => ({ key: key(i), reg: reg("a", i + 1, { a: i + 1 }, { base: i }), deleted: false }));
  kv.push({ key: "local-1", reg: reg(SELF, 1, { [SELF]: 1 }, { local: true }), deleted: false });
  s.commit({ kv, appliedVv: { a: BASE_KEYS, [SELF]: 1 }, meta: { nodeId: asNodeId(SELF), lastSeq: 1, lastHlc: HLC_ZERO } });
  const enc = new TextEncoder();
  for (let from = 0; from < SNAPSHOT_KEYS; from += 5_000) {
    const rows: SnapshotRow[] = [];
    for (let i = from; i < Math.min(SNAPSHOT_KEYS, from + 5_000); i++) {
      if (!snapshotHas(i)) continue;
      rows.push({ ns: "kv", key: key(i), data: enc.encode(JSON.stringify(reg("b", i + 1, { a: BASE_KEYS, b: i + 1 }, { snap: i }))) });
    }
    s.stageSnapshotRows(rows);
  }
  s.close();
}

/** Runs the child; kills it `killAfterMs` after it says "installing" (null: lets it finish). Resolves with what it printed. */
function runChild(killAfterMs: number | null): Promise<{ out: string; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/support/install-child.ts", path, JSON.stringify(header), SELF], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let killed = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      if (killAfterMs !== null && !killed && out.includes("installing\n")) {
        killed = true;
        setTimeout(() => child.kill("SIGKILL"), killAfterMs);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (killAfterMs === null && code !== 0) reject(new Error(`install child exited ${code} ${signal}: ${err}`));
      else resolve({ out, killed: signal === "SIGKILL" });
    });
  });
}

/** The store's state in the terms the test checks. */
function inspect() {
  const s = openSqliteStorage({ path });
  try {
    return {
      integrity: s.integrityCheck(),
      vv: s.appliedVv(),
      floor: s.opLogFloor(),
      staged: s.stagedSnapshotRows(),
      first: s.getKv(key(1))?.siblings.map((v) => v.origin),
      sweptBase: s.getKv(key(10)) === undefined,
      last: s.getKv(key(SNAPSHOT_KEYS - 1))?.siblings[0]?.origin ?? null,
      local: s.getKv("local-1")?.siblings[0]?.origin ?? null,
      kvRows: s.listKv({ limit: 10_000, includeDeleted: true, prefix: "k-0000" }).length,
      sweptVv: s.getMeta("sweptVv") ?? null,
    };
  } finally {
    s.close();
  }
}

const STAGED = Array.from({ length: SNAPSHOT_KEYS }, (_, i) => i).filter(snapshotHas).length;
const BEFORE = { integrity: "ok", vv: { a: BASE_KEYS, [SELF]: 1 }, floor: {}, staged: STAGED, first: ["a"], sweptBase: false, last: null, local: SELF, kvRows: 100, sweptVv: null };
const AFTER = { integrity: "ok", vv: { a: BASE_KEYS, b: SNAPSHOT_KEYS, [SELF]: 1 }, floor: { a: BASE_KEYS, b: SNAPSHOT_KEYS }, staged: 0, first: ["b"], sweptBase: true, last: "b", local: SELF, kvRows: 90, sweptVv: { a: BASE_KEYS } };

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a SIGKILL during a snapshot install (real process, real SQLite file)", () => {
  it("leaves the store as it was, consistent; the next install applies all of it", async () => {
    prepare();
    expect(inspect()).toEqual(BEFORE);
    // Killed at once and a little later: both land inside the one transaction, which takes seconds here.
    for (const delayMs of [0, 150]) {
      const run = await runChild(delayMs);
      expect(run.killed, `the child was killed (${delayMs} ms after it began)`).toBe(true);
      expect(run.out, "the install had not finished when the kill landed").not.toMatch(/installed/);
      expect(inspect(), `after a SIGKILL ${delayMs} ms into the install`).toEqual(BEFORE);
    }
    const done = await runChild(null);
    expect(done.out).toMatch(new RegExp(`installed ${STAGED}`));
    expect(inspect()).toEqual(AFTER);
  }, 180_000);
});
