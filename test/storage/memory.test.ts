// Runs the storage contract against the in-memory store, with a "reopen" that
// restarts on the same MemoryDisk, as the simulator restarts a crashed node;
// and against the crashable store (memory-crash.ts), whose reopen is a clean
// close and a restart on its durable disk. Its crashes: memory-crash.test.ts.

import { describe, expect, it } from "vitest";
import { createMemoryDisk, createMemoryStorage } from "../../src/storage/memory.js";
import type { MemoryStorage } from "../../src/storage/memory.js";
import { createCrashableStorage } from "../../src/storage/memory-crash.js";
import type { CrashableStorage } from "../../src/storage/memory-crash.js";
import type { MemoryDisk } from "../../src/storage/memory-disk.js";
import type { Storage } from "../../src/storage/port.js";
import { runStorageContract } from "./contract.js";
import { A, kvOp, reg } from "./fixtures.js";

runStorageContract("memory", {
  create: () => createMemoryStorage(),
  reopen: (storage) => {
    storage.close();
    return createMemoryStorage((storage as MemoryStorage).disk);
  },
});

/** The crashable store behind each Storage the contract holds. */
const crashables = new WeakMap<Storage, CrashableStorage>();

function crashableOn(disk?: MemoryDisk): Storage {
  const c = createCrashableStorage(disk);
  crashables.set(c.storage, c);
  return c.storage;
}

runStorageContract("crashable memory", {
  create: () => crashableOn(),
  reopen: (storage) => {
    const c = crashables.get(storage);
    if (c === undefined) throw new Error("reopen: not a crashable store");
    storage.close();
    return crashableOn(c.durableDisk());
  },
});

describe("memory storage", () => {
  it("shares nothing between disks", () => {
    const one = createMemoryStorage();
    const two = createMemoryStorage(createMemoryDisk());
    one.commit({ ops: [kvOp(A, 1)], kv: [{ key: "k", reg: reg("1"), deleted: false }] });
    expect(two.getKv("k")).toBeUndefined();
    expect(two.opLogVv()).toEqual({});
  });

  it("reports a broken index in its integrity check", () => {
    const s = createMemoryStorage();
    s.commit({ kv: [{ key: "a", reg: reg("1"), deleted: false }, { key: "b", reg: reg("1"), deleted: false }] });
    s.disk.kvKeys.reverse();
    expect(s.integrityCheck()).toMatch(/out of order/);
  });
});
