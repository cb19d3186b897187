// Runs the storage contract against the in-memory store, with a "reopen" that
// restarts on the same MemoryDisk, as the simulator restarts a crashed node.

import { describe, expect, it } from "vitest";
import { createMemoryDisk, createMemoryStorage } from "../../src/storage/memory.js";
import type { MemoryStorage } from "../../src/storage/memory.js";
import { runStorageContract } from "./contract.js";
import { A, kvOp, reg } from "./fixtures.js";

runStorageContract("memory", {
  create: () => createMemoryStorage(),
  reopen: (storage) => {
    storage.close();
    return createMemoryStorage((storage as MemoryStorage).disk);
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
