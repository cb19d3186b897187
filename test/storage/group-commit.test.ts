// Group commit on both stores: writes submitted together share one
// transaction, every promise settles only after that transaction, and a
// failure rejects exactly the group it hit.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { concatBatches, createGroupCommitter } from "../../src/storage/group-commit.js";
import type { GroupCommitter } from "../../src/storage/group-commit.js";
import { createMemoryStorage } from "../../src/storage/memory.js";
import type { Batch, Storage } from "../../src/storage/port.js";
import { openSqliteStorage } from "../../src/storage/sqlite.js";
import { A, B, kvOp, reg } from "./fixtures.js";

const root = mkdtempSync(join(tmpdir(), "geokv-group-commit-"));
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
let dbCount = 0;

/** `storage` with every commit call recorded (and `beforeCommit` run first). */
function counting(storage: Storage, beforeCommit: (b: Batch) => void = () => {}): { storage: Storage; commits: Batch[] } {
  const commits: Batch[] = [];
  const proxy = new Proxy(storage, {
    get(target, prop) {
      if (prop === "commit") {
        return (b: Batch) => {
          commits.push(b);
          beforeCommit(b);
          return target.commit(b);
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === "function" ? (v as (...args: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { storage: proxy, commits };
}

/** A batch that writes op (A, seq) and kv key `k<seq>`. */
function write(seq: number): Batch {
  return { ops: [kvOp(A, seq, `k${seq}`)], kv: [{ key: `k${seq}`, reg: reg("1", A, seq), deleted: false }], appliedVv: { [A]: seq } };
}

const stores: [string, () => Storage][] = [
  ["memory", () => createMemoryStorage()],
  ["sqlite", () => openSqliteStorage({ path: join(root, `db-${++dbCount}`, "geokv.sqlite") })],
];

for (const [name, open] of stores) {
  describe(`group commit: ${name}`, () => {
    it("commits N submits from one tick in exactly one transaction, resolving every promise after it", async () => {
      const base = open();
      const events: string[] = [];
      const { storage, commits } = counting(base, () => events.push("commit"));
      const gc = createGroupCommitter(storage);
      const n = 50;
      const done = Array.from({ length: n }, (_, i) => gc.submit(write(i + 1)).then(() => {
        events.push("resolved");
        // Durable before the promise resolves: the write is already readable.
        expect(base.getKv(`k${i + 1}`)).toEqual(reg("1", A, i + 1));
      }));
      expect(commits).toHaveLength(0);
      // What the pending-write-ops bound reads: every op submitted and not yet in a transaction.
      expect(gc.stats()).toMatchObject({ queuedBatches: n, queuedOps: n });
      await Promise.all(done);
      expect(commits).toHaveLength(1);
      expect(commits[0]?.ops).toHaveLength(n);
      expect(events).toEqual(["commit", ...Array<string>(n).fill("resolved")]);
      expect(base.opLogVv()).toEqual({ [A]: n });
      expect(base.appliedVv()).toEqual({ [A]: n });
      expect(gc.stats()).toEqual({ groupsCommitted: 1, groupsFailed: 0, batchesCommitted: n, opsCommitted: n, queuedBatches: 0, queuedOps: 0 });
      base.close();
    });

    it("rejects every promise of a failed group, stores none of it, and commits the next group", async () => {
      const base = open();
      const { storage, commits } = counting(base);
      const gc = createGroupCommitter(storage);
      // One bad batch (a meta value JSON cannot hold) fails the whole shared transaction.
      const group = [gc.submit(write(1)), gc.submit({ ...write(2), meta: { bad: 1n } }), gc.submit(write(3))];
      const results = await Promise.allSettled(group);
      expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
      const reasons = results.map((r) => (r as PromiseRejectedResult).reason as unknown);
      expect(reasons[0]).toBeInstanceOf(TypeError);
      expect(reasons[1]).toBe(reasons[0]);
      expect(reasons[2]).toBe(reasons[0]);
      expect(commits).toHaveLength(1);
      expect(base.opLogVv()).toEqual({});
      expect(base.getKv("k1")).toBeUndefined();
      await gc.submit(write(1));
      expect(commits).toHaveLength(2);
      expect(base.getKv("k1")).toEqual(reg("1", A, 1));
      expect(gc.stats()).toMatchObject({ groupsCommitted: 1, groupsFailed: 1, batchesCommitted: 1 });
      base.close();
    });

    it("bounds a group by maxBatchOps; the rest waits for the next group", async () => {
      const base = open();
      const { storage, commits } = counting(base);
      const gc = createGroupCommitter(storage, { maxBatchOps: 10 });
      const big: Batch = { ops: Array.from({ length: 15 }, (_, i) => kvOp(B, i + 1)) };
      await Promise.all([...Array.from({ length: 25 }, (_, i) => gc.submit(write(i + 1))), gc.submit(big), gc.submit(write(26))]);
      // In submit order: 10, 10, 5 (the 15-op batch does not fit), 15 alone, then 1.
      expect(commits.map((b) => b.ops?.length)).toEqual([10, 10, 5, 15, 1]);
      expect(base.opLogVv()).toEqual({ [A]: 26, [B]: 15 });
      base.close();
    });

    it("groups the batches that arrive while a commit runs into the next transaction", async () => {
      const base = open();
      const queued: (() => void)[] = [];
      const schedule = (run: () => void): void => {
        queued.push(run);
      };
      // The committer, for the storage proxy to submit into while it commits.
      const ref: { gc?: GroupCommitter } = {};
      const late: Promise<void>[] = [];
      const { storage, commits } = counting(base, () => {
        // Requests that arrive while the first transaction is being written.
        if (commits.length === 1) late.push(ref.gc!.submit(write(4)), ref.gc!.submit(write(5)));
      });
      const gc = createGroupCommitter(storage, { schedule });
      ref.gc = gc;
      const first = [gc.submit(write(1)), gc.submit(write(2)), gc.submit(write(3))];
      expect(queued).toHaveLength(1);
      queued.shift()?.();
      await Promise.all(first);
      expect(commits).toHaveLength(1);
      expect(late).toHaveLength(2);
      // One run scheduled for both late batches, not one each.
      expect(queued).toHaveLength(1);
      queued.shift()?.();
      await Promise.all(late);
      expect(commits.map((b) => b.ops?.length)).toEqual([3, 2]);
      expect(queued).toHaveLength(0);
      base.close();
    });

    it("flush waits for pending groups; close flushes, then refuses new batches", async () => {
      const base = open();
      const gc = createGroupCommitter(base);
      await gc.flush();
      let settled = 0;
      const count = (): void => {
        settled++;
      };
      for (let i = 1; i <= 3; i++) void gc.submit(write(i)).then(count, count);
      await gc.flush();
      expect(settled).toBe(3);
      expect(base.opLogVv()).toEqual({ [A]: 3 });
      // flush itself never rejects, even when a pending group fails.
      const failing = gc.submit({ meta: { bad: 1n } });
      failing.catch(() => {});
      await expect(gc.flush()).resolves.toBeUndefined();
      await expect(failing).rejects.toThrow(TypeError);
      const last = gc.submit(write(4));
      await gc.close();
      await expect(last).resolves.toBeUndefined();
      await expect(gc.submit(write(5))).rejects.toThrow(/closed/);
      expect(base.opLogVv()).toEqual({ [A]: 4 });
      base.close();
    });
  });
}

describe("concatBatches", () => {
  it("keeps list order (later states win), merges vectors by max and meta by last write", () => {
    const s = createMemoryStorage();
    const merged = concatBatches([
      { ...write(1), appliedVv: { [A]: 1, [B]: 7 }, meta: { epoch: 1, x: "a" } },
      { kv: [{ key: "k1", reg: reg(null, B, 2), deleted: true }], appliedVv: { [A]: 3 }, meta: { epoch: 2 } },
    ]);
    expect(merged.appliedVv).toEqual({ [A]: 3, [B]: 7 });
    expect(merged.meta).toEqual({ epoch: 2, x: "a" });
    s.commit(merged);
    expect(s.getKv("k1")).toEqual(reg(null, B, 2));
    expect(s.listKv({ limit: 10 })).toEqual([]);
    const single = write(9);
    expect(concatBatches([single])).toBe(single);
  });
});
