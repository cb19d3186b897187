// The compactor driver over an in-memory store: it removes what the core
// plans, tells the machine the floor, persists the frontier, and a pass asked
// for now (POST /admin/compact) runs promptly even while background passes
// keep starting (under steady writes a forced pass that waited for "no pass
// running" waited for minutes: 51 s in the storage bench).

import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { Compactor, FOLD_ROWS_PER_PASS } from "../../src/node/compactor.js";
import type { KvRegister } from "../../src/core/op.js";
import { createMemoryStorage } from "../../src/storage/memory.js";
import type { VersionVector } from "../../src/core/version-vector.js";
import { A, B, kvOp } from "../storage/fixtures.js";

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

function setup(ops: number, retainOps: number) {
  const storage = createMemoryStorage();
  storage.commit({ ops: Array.from({ length: ops }, (_, i) => kvOp(A, i + 1, `k${i % 7}`)), appliedVv: { [A]: ops } });
  const floors: VersionVector[] = [];
  const c = new Compactor({
    storage,
    retainOps,
    // One node: everything it holds is stable.
    stableVv: () => storage.appliedVv(),
    compacted: (floor) => floors.push(floor),
    tombstoneHorizon: () => null,
    idempotencyTtlMs: 86_400_000,
    now: Date.now,
    logger: pino({ level: "silent" }),
  });
  stops.push(() => c.stop());
  return { storage, c, floors };
}

describe("Compactor", () => {
  it("cuts the log to the bound in steps, reports each floor, and persists the frontier", async () => {
    const { storage, c, floors } = setup(5000, 100);
    const r = await c.runNow();
    expect(r).toMatchObject({ compactedOps: 4900, opLogOps: 100, compactedVv: { [A]: 4900 }, stableVv: { [A]: 5000 } });
    // 2,000 ops a step: three steps, each floor told to the machine.
    expect(floors).toEqual([{ [A]: 2000 }, { [A]: 4000 }, { [A]: 4900 }]);
    expect(storage.getMeta("stableVv")).toEqual({ [A]: 5000 });
    expect(storage.opLogStats().ops).toBe(100);
    expect((await c.runNow()).compactedOps).toBe(0);
  });

  it("ends a pass under steady writes, so a pass asked for now is answered", async () => {
    const { storage, c } = setup(200, 10);
    // Writes land between every two steps, as on a busy node: 50 more ops each time the log is measured.
    let seq = 200;
    const stats = storage.opLogStats.bind(storage);
    storage.opLogStats = () => {
      const ops = Array.from({ length: 50 }, () => kvOp(A, ++seq, "w"));
      storage.commit({ ops, appliedVv: { [A]: seq } });
      return stats();
    };
    let settled = false;
    const asked = c.runNow().then((r) => {
      settled = true;
      return r;
    });
    for (let i = 0; i < 300 && !settled; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(true);
    const r = await asked;
    // It took what was in excess when it started (and stepped over what came meanwhile only up to that count).
    expect(r.compactedOps).toBeGreaterThanOrEqual(190);
    expect(r.compactedOps).toBeLessThanOrEqual(250);
  });

  it("folds stable kv versions to their dots, a bounded number of rows a pass, and reads nothing more until the swept vector grows", async () => {
    const { storage } = setup(10, 100);
    const rows = FOLD_ROWS_PER_PASS + 1000;
    // Every key written by b having seen a's op 3: a two-entry vector; every fourth one above the swept vector.
    const seqOf = (i: number) => (i % 4 === 0 ? rows + 1 + i : i + 1);
    const regOf = (i: number): KvRegister => ({ siblings: [{ valueJson: String(i), hlc: { wallMs: i + 1, logical: 0 }, origin: B, seq: seqOf(i), vv: { [A]: 3, [B]: seqOf(i) } }] });
    const key = (i: number) => `k${String(i).padStart(5, "0")}`;
    storage.commit({ kv: Array.from({ length: rows }, (_, i) => ({ key: key(i), reg: regOf(i), deleted: false })) });
    storage.setMeta("sweptVv", { [A]: 3, [B]: rows });
    const folding = new Compactor({
      storage,
      retainOps: 100,
      stableVv: () => storage.appliedVv(),
      compacted: () => undefined,
      tombstoneHorizon: () => null,
      idempotencyTtlMs: 86_400_000,
      now: Date.now,
      logger: pino({ level: "silent" }),
    });
    stops.push(() => folding.stop());
    const first = await folding.runNow();
    const second = await folding.runNow();
    expect(first.foldedKv).toBe(FOLD_ROWS_PER_PASS * 3 / 4);
    expect(first.foldedKv + second.foldedKv).toBe(rows * 3 / 4);
    expect((await folding.runNow()).foldedKv).toBe(0);
    for (let i = 0; i < rows; i += 997) {
      const v = storage.getKv(key(i))?.siblings[0];
      expect(v?.vv).toEqual(i % 4 === 0 ? { [A]: 3, [B]: seqOf(i) } : { [B]: seqOf(i) });
    }
  });
});
