// The crashable store's durability point: a crash keeps exactly the writes up
// to the last sync, a clean close keeps everything, and a sync costs what was
// written since the previous one, not what the disk holds. The model is a
// plain memory store that received only the synced writes.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createMemoryStorage } from "../../src/storage/memory.js";
import { createCrashableStorage } from "../../src/storage/memory-crash.js";
import type { CrashableStorage } from "../../src/storage/memory-crash.js";
import { createMemoryDisk } from "../../src/storage/memory-disk.js";
import type { MemoryDisk } from "../../src/storage/memory-disk.js";
import type { Batch, Storage } from "../../src/storage/port.js";
import { installRules, type SnapshotRow } from "../../src/core/snapshot.js";
import { textRowData } from "../../src/storage/snapshot-install.js";
import { A, B, conflict, counterOp, docOp, hlc, kvOp, reg } from "./fixtures.js";

const ORIGINS = [A, B] as const;
const KEYS = ["a", "b", "é😀"] as const;
const META_KEYS = ["epoch", "lastSeq", "custom"] as const;
const IDEM_KEYS = ["i1", "i2", "i3"] as const;

/** Everything a store holds over the keys the generators use, as plain data to compare. */
function contents(s: Storage): unknown {
  return {
    ops: ORIGINS.map((o) => s.getOps(o, 1, 1_000, 1_000)),
    opLogVv: s.opLogVv(),
    opLogFloor: s.opLogFloor(),
    appliedVv: s.appliedVv(),
    kv: s.listKv({ limit: 1_000, includeDeleted: true }),
    counters: KEYS.map((k) => s.getCounter(k)),
    sets: KEYS.map((k) => s.getSet(k)),
    docs: KEYS.map((k) => s.getDoc(k)),
    conflicts: s.conflicts(1_000),
    meta: META_KEYS.map((k) => s.getMeta(k)),
    idempotency: IDEM_KEYS.map((k) => s.getIdempotency(k)),
    integrity: s.integrityCheck(),
    sizeBytes: s.sizeBytes(),
  };
}

/** A call that writes, or a step of the process around the store. */
type Action =
  | { readonly type: "commit"; readonly batch: Batch }
  | { readonly type: "setMeta"; readonly key: string; readonly value: number }
  | { readonly type: "compactOps"; readonly stable: Record<string, number> }
  | { readonly type: "pruneIdempotency"; readonly beforeMs: number }
  | { readonly type: "failingCommit" }
  | { readonly type: "sync" }
  | { readonly type: "restart" };

const key = fc.constantFrom(...KEYS);
const origin = fc.constantFrom(...ORIGINS);
const seq = fc.integer({ min: 1, max: 6 });
const vv = fc.tuple(fc.nat(6), fc.nat(6)).map(([a, b]) => ({ [A]: a, [B]: b }));

const batch: fc.Arbitrary<Batch> = fc.record(
  {
    ops: fc.array(
      fc.oneof(
        fc.tuple(origin, seq, key).map(([o, q, k]) => kvOp(o, q, k, `"${q}"`)),
        fc.tuple(origin, seq, key).map(([o, q, k]) => counterOp(o, q, k)),
        fc.tuple(origin, seq, key).map(([o, q, k]) => docOp(o, q, k)),
      ),
      { maxLength: 4 },
    ),
    kv: fc.array(
      fc.tuple(key, origin, seq, fc.boolean()).map(([k, o, q, deleted]) => ({ key: k, reg: reg(deleted ? null : `${q}`, o, q), deleted })),
      { maxLength: 3 },
    ),
    counters: fc.array(fc.tuple(key, fc.nat(9)).map(([k, n]) => ({ key: k, state: { p: { [A]: n }, n: {} } })), { maxLength: 2 }),
    sets: fc.array(key.map((k) => ({ key: k, state: { entries: { x: [`${A}:1:0`] }, removed: [] } })), { maxLength: 1 }),
    docs: fc.array(fc.tuple(key, fc.nat(255)).map(([k, b]) => ({ key: k, state: new Uint8Array([b, 0, 255]) })), { maxLength: 1 }),
    conflicts: fc.array(fc.tuple(key, fc.nat(1_000)).map(([k, at]) => conflict(k, 1_700_000_000_000 + at)), { maxLength: 1 }),
    idempotency: fc.array(
      fc.tuple(fc.constantFrom(...IDEM_KEYS), fc.nat(100)).map(([k, createdAtMs]) => ({ key: k, requestHash: "h", status: 200, body: "{}", createdAtMs })),
      { maxLength: 2 },
    ),
    appliedVv: vv,
    meta: fc.record({ lastSeq: fc.nat(9), custom: fc.nat(9) }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: batch.map((b) => ({ type: "commit" as const, batch: b })) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...META_KEYS), fc.nat(9)).map(([k, value]) => ({ type: "setMeta" as const, key: k, value })) },
  { weight: 1, arbitrary: vv.map((stable) => ({ type: "compactOps" as const, stable })) },
  { weight: 1, arbitrary: fc.nat(120).map((beforeMs) => ({ type: "pruneIdempotency" as const, beforeMs })) },
  { weight: 1, arbitrary: fc.constant({ type: "failingCommit" as const }) },
  { weight: 2, arbitrary: fc.constant({ type: "sync" as const }) },
  { weight: 1, arbitrary: fc.constant({ type: "restart" as const }) },
);

/** A batch that fails in its last part (a BigInt meta value), after everything else was checked. */
const FAILING: Batch = { ops: [kvOp(A, 1)], kv: [{ key: "a", reg: reg("1"), deleted: false }], meta: { bad: 10n } };

type WriteAction = Extract<Action, { type: "commit" | "setMeta" | "compactOps" | "pruneIdempotency" }>;

/** Performs a write on `s`; returns what the port method returned. */
function perform(s: Storage, a: WriteAction): unknown {
  switch (a.type) {
    case "commit":
      return s.commit(a.batch);
    case "setMeta":
      return s.setMeta(a.key, a.value);
    case "compactOps":
      return s.compactOps(a.stable);
    case "pruneIdempotency":
      return s.pruneIdempotency(a.beforeMs);
    default: {
      const never: never = a;
      throw new Error(`unknown write ${JSON.stringify(never)}`);
    }
  }
}

/** A plain memory store that received exactly `writes`. */
function replayed(writes: readonly WriteAction[]): Storage {
  const s = createMemoryStorage();
  for (const w of writes) perform(s, w);
  return s;
}

describe("crashable memory storage", () => {
  it("after any schedule of writes, syncs and crashes, a restart holds exactly the synced writes", () => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 40 }), (actions) => {
        let c: CrashableStorage = createCrashableStorage();
        // What a crash now keeps, and what it loses.
        let synced: WriteAction[] = [];
        let pending: WriteAction[] = [];
        // Receives every write the live store does, from the synced state at its start.
        let live: Storage = createMemoryStorage();
        for (const a of actions) {
          switch (a.type) {
            case "failingCommit":
              expect(() => c.storage.commit(FAILING)).toThrow();
              break;
            case "sync":
              c.sync();
              synced = [...synced, ...pending];
              pending = [];
              break;
            case "restart":
              c = createCrashableStorage(c.crash());
              pending = [];
              live = replayed(synced);
              expect(contents(c.storage)).toEqual(contents(live));
              break;
            default:
              expect(perform(c.storage, a)).toEqual(perform(live, a));
              pending.push(a);
          }
          expect(c.unsyncedWrites).toBe(pending.length);
        }
        // Reads see every write at once, synced or not.
        expect(contents(c.storage)).toEqual(contents(live));
        const restarted = createCrashableStorage(c.crash());
        expect(contents(restarted.storage)).toEqual(contents(replayed(synced)));
      }),
    );
  });

  it("loses nothing on a clean close", () => {
    const c = createCrashableStorage();
    c.storage.commit({ ops: [kvOp(A, 1)], kv: [{ key: "a", reg: reg("1"), deleted: false }] });
    c.storage.setMeta("epoch", 3);
    c.storage.compactOps({ [A]: 1 });
    expect(c.unsyncedWrites).toBe(3);
    const before = contents(c.storage);
    c.storage.close();
    c.storage.close();
    expect(c.unsyncedWrites).toBe(0);
    expect(contents(createCrashableStorage(c.durableDisk()).storage)).toEqual(before);
    // crash() after a clean close hands over the same disk, with nothing to lose.
    expect(contents(createCrashableStorage(c.crash()).storage)).toEqual(before);
  });

  it("journals a snapshot install as one write: a crash before the sync keeps the old state, after it the new", () => {
    const header = { vv: { [A]: 2, [B]: 1 }, sweptVv: { [B]: 1 }, hlc: hlc(1_800_000_000_000) };
    const rows: SnapshotRow[] = [
      { ns: "kv", key: "b", data: textRowData(JSON.stringify(reg("\"snap\"", B, 1))) },
      { ns: "counters", key: "c", data: textRowData(JSON.stringify({ p: { [B]: 4 }, n: {} })) },
    ];
    /** A synced store holding a-1 and a-2 (covered by the snapshot) and a:3 (not), with the snapshot staged and synced too. */
    const staged = (): CrashableStorage => {
      const c = createCrashableStorage();
      c.storage.commit({ ops: [kvOp(A, 1, "a"), kvOp(A, 2, "a"), kvOp(A, 3, "x")], kv: [{ key: "a", reg: reg("1", A, 2), deleted: false }], appliedVv: { [A]: 3 }, meta: { lastSeq: 0 } });
      c.storage.stageSnapshotRows(rows);
      c.sync();
      return c;
    };
    const install = (c: CrashableStorage): void => {
      const before = c.unsyncedWrites;
      c.storage.installSnapshot(header, installRules(B, header));
      expect(c.unsyncedWrites - before, "one journal entry").toBe(1);
    };

    const lost = staged();
    const old = contents(lost.storage);
    install(lost);
    expect(lost.storage.getKv("a")).toBeUndefined();
    expect(contents(lost.storage)).not.toEqual(old);
    const back = createCrashableStorage(lost.crash()).storage;
    expect(contents(back)).toEqual(old);
    expect(back.stagedSnapshotRows()).toBe(2);
    back.close();

    const kept = staged();
    install(kept);
    kept.sync();
    const installed = contents(kept.storage);
    const again = createCrashableStorage(kept.crash()).storage;
    expect(contents(again)).toEqual(installed);
    expect(again.getKv("a")).toBeUndefined();
    expect(again.getKv("b")).toEqual(reg("\"snap\"", B, 1));
    expect(again.getCounter("c")).toEqual({ p: { [B]: 4 }, n: {} });
    expect(again.getOps(A, 1, 10, 10)).toEqual([kvOp(A, 3, "x")]);
    expect(again.opLogFloor()).toEqual(header.vv);
    expect(again.appliedVv()).toEqual({ [A]: 3, [B]: 1 });
    expect(again.getMeta("lastSeq")).toBe(1);
    expect(again.getMeta("sweptVv")).toEqual({ [B]: 1 });
    expect(again.stagedSnapshotRows()).toBe(0);
    again.close();
  });

  it("writes nothing to the durable disk before a sync, and closes the store on a crash", () => {
    const durable = createMemoryDisk();
    const c = createCrashableStorage(durable);
    c.storage.commit({ ops: [kvOp(A, 1)], kv: [{ key: "a", reg: reg("1"), deleted: false }], meta: { lastSeq: 1 } });
    expect(c.storage.getKv("a")).toEqual(reg("1"));
    expect(durable.kv.size).toBe(0);
    expect(durable.ops.size).toBe(0);
    expect(durable.meta.size).toBe(0);
    c.sync();
    expect(durable.kv.size).toBe(1);
    c.storage.commit({ kv: [{ key: "b", reg: reg("2"), deleted: false }] });
    c.storage.setMeta("lastSeq", 2);
    expect(() => c.durableDisk()).toThrow(/still open/);

    expect(c.crash()).toBe(durable);
    expect(() => c.storage.getKv("a")).toThrow(/closed/);
    expect(() => c.storage.commit({ kv: [] })).toThrow(/closed/);
    expect(() => c.sync()).toThrow(/closed/);
    expect(c.durableDisk()).toBe(durable);

    const restarted = createCrashableStorage(durable).storage;
    expect(restarted.getKv("a")).toEqual(reg("1"));
    expect(restarted.getKv("b")).toBeUndefined();
    expect(restarted.getMeta("lastSeq")).toBe(1);
  });

  it("syncs by replaying the journal: it never scans the durable disk, and its cost does not grow with it", () => {
    const costs = [10, 2_000].map((keys) => {
      const durable = countingDisk();
      const s = createMemoryStorage(durable.disk);
      for (let i = 0; i < keys; i++) s.commit({ ops: [kvOp(B, i + 1)], kv: [{ key: `k${i}`, reg: reg("1"), deleted: false }] });
      s.commit({ idempotency: [{ key: "old", requestHash: "h", status: 200, body: "{}", createdAtMs: 1 }] });
      s.close();

      const c = createCrashableStorage(durable.disk);
      c.storage.commit({
        ops: [kvOp(A, 1), counterOp(A, 2), docOp(A, 3)],
        kv: [{ key: "new", reg: reg("2"), deleted: false }],
        counters: [{ key: "c", state: { p: { [A]: 1 }, n: {} } }],
        docs: [{ key: "d", state: new Uint8Array([1]) }],
        conflicts: [conflict("new", 1_700_000_000_000)],
        idempotency: [{ key: "i1", requestHash: "h", status: 200, body: "{}", createdAtMs: 50 }],
        appliedVv: { [A]: 3 },
        meta: { lastSeq: 3 },
      });
      c.storage.setMeta("epoch", 2);
      c.storage.compactOps({ [B]: 1 });
      expect(c.storage.pruneIdempotency(10)).toBe(1);
      expect(c.unsyncedWrites).toBe(4);
      durable.reset();
      c.sync();
      expect(c.unsyncedWrites).toBe(0);
      expect(durable.scans).toBe(0);
      expect(createMemoryStorage(durable.disk).getIdempotency("old")).toBeUndefined();
      return durable.lookups;
    });
    expect(costs[1]).toBe(costs[0]);
  });
});

/** A disk whose maps count their lookups and their scans (any iteration). */
function countingDisk(): { disk: MemoryDisk; readonly scans: number; readonly lookups: number; reset(): void } {
  const counts = { scans: 0, lookups: 0 };
  class CountingMap<K, V> extends Map<K, V> {
    override get(k: K): V | undefined {
      counts.lookups++;
      return super.get(k);
    }
    override has(k: K): boolean {
      counts.lookups++;
      return super.has(k);
    }
    override set(k: K, v: V): this {
      counts.lookups++;
      return super.set(k, v);
    }
    override delete(k: K): boolean {
      counts.lookups++;
      return super.delete(k);
    }
    override entries(): MapIterator<[K, V]> {
      counts.scans++;
      return super.entries();
    }
    override keys(): MapIterator<K> {
      counts.scans++;
      return super.keys();
    }
    override values(): MapIterator<V> {
      counts.scans++;
      return super.values();
    }
    override forEach(f: (v: V, k: K, m: Map<K, V>) => void): void {
      counts.scans++;
      super.forEach(f);
    }
    override [Symbol.iterator](): MapIterator<[K, V]> {
      counts.scans++;
      return super[Symbol.iterator]();
    }
  }
  const disk: MemoryDisk = {
    ...createMemoryDisk(),
    meta: new CountingMap(), kv: new CountingMap(), counters: new CountingMap(), sets: new CountingMap(), docs: new CountingMap(),
    ops: new CountingMap(), opFloor: new CountingMap(), nodeVv: new CountingMap(), idempotency: new CountingMap(),
  };
  return {
    disk,
    get scans() {
      return counts.scans;
    },
    get lookups() {
      return counts.lookups;
    },
    reset() {
      counts.scans = 0;
      counts.lookups = 0;
    },
  };
}
