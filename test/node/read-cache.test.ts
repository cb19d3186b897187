// The kv read path of a node over real SQLite files, with the store's read
// cache on: a cached key must read what a fresh store on the same file reads
// (the table) after every kind of write that reaches it — a local overwrite,
// a remote op, a local and a remote delete, a conflict between replicas — and
// after a restart.

import { parseCausalToken, type CausalToken } from "../../src/core/causal-token.js";
import { describe, expect, it } from "vitest";
import { asNodeId } from "../../src/core/ids.js";
import type { Op } from "../../src/core/op.js";
import { isNodeError, type NodeError } from "../../src/node/errors.js";
import { LocalStore } from "../../src/node/local-store.js";
import type { KvRead, WriteAnswer } from "../../src/node/service.js";
import { createGroupCommitter } from "../../src/storage/group-commit.js";
import { openSqliteStorage } from "../../src/storage/sqlite.js";
import { type Replica, useReplicas } from "./replicas.js";

const A = asNodeId("r-1");
const B = asNodeId("r-2");
const LOCAL = { ack: "local", requestHash: "" } as const;

const { open, close, ownOps, now } = useReplicas("geokv-read-cache-");

function ok(a: WriteAnswer | NodeError): WriteAnswer {
  if (isNodeError(a)) throw new Error(`expected an answer, got ${a.code}: ${a.message}`);
  return a;
}

/** What a store with no cache reads from `r`'s file right now. */
function uncachedRead(r: Replica, key: string): KvRead | undefined {
  const storage = openSqliteStorage({ path: r.path, kvReadCache: { entriesMax: 0, textCharsMax: 0, entryTextCharsMax: 0 } });
  try {
    return new LocalStore({ nodeId: asNodeId("reader"), storage, committer: createGroupCommitter(storage), now }).kvGet(key);
  } finally {
    storage.close();
  }
}

/** Reads `key` on `r` (through its cache) and checks it against the file. */
function read(r: Replica, key: string): KvRead | undefined {
  const got = r.store.kvGet(key);
  expect(got, `${r.id} ${key}: cached read vs the table`).toEqual(uncachedRead(r, key));
  return got;
}

describe("kv reads through the store's cache", () => {
  it("a remote op that overwrites a cached key is read at once, with its version", async () => {
    const a = open(A);
    const b = open(B);
    ok(await b.store.kvPut("k", '"b1"', LOCAL));
    expect(read(b, "k")?.valueJson).toBe('"b1"');
    // A saw B's write, then overwrote it: a causal overwrite when it reaches B.
    await a.store.applyRemote(ownOps(b));
    ok(await a.store.kvPut("k", '"a1"', LOCAL));
    const fromA = ownOps(a);
    expect(await b.store.applyRemote(fromA)).toEqual(fromA);
    const r = read(b, "k");
    expect(r?.valueJson).toBe('"a1"');
    expect(r?.version).toEqual({ hlc: (fromA[0] as Op).hlc, node: A });
  });

  it("a concurrent remote write (a conflict) shows the winner the table holds", async () => {
    const a = open(A);
    const b = open(B);
    ok(await b.store.kvPut("k", '"b1"', LOCAL));
    read(b, "k");
    // A writes without having seen B's write: concurrent, decided by (hlc, node).
    ok(await a.store.kvPut("k", '"a1"', LOCAL));
    await b.store.applyRemote(ownOps(a));
    await a.store.applyRemote(ownOps(b));
    expect(read(b, "k")).toEqual(read(a, "k"));
  });

  it("a local delete and a remote delete of a cached key read as absent (404)", async () => {
    const a = open(A);
    const b = open(B);
    ok(await a.store.kvPut("gone", "1", LOCAL));
    ok(await a.store.kvPut("gone-remote", "2", LOCAL));
    await b.store.applyRemote(ownOps(a));
    expect(read(a, "gone")?.valueJson).toBe("1");
    expect(read(b, "gone-remote")?.valueJson).toBe("2");
    ok(await a.store.kvDelete("gone", LOCAL));
    expect(read(a, "gone")).toBeUndefined();
    ok(await a.store.kvDelete("gone-remote", LOCAL));
    await b.store.applyRemote(ownOps(a));
    expect(read(b, "gone-remote")).toBeUndefined();
    // Written again after the delete: visible again.
    ok(await a.store.kvPut("gone", "3", LOCAL));
    expect(read(a, "gone")?.valueJson).toBe("3");
  });

  it("a local overwrite is read at once, and a restart reads the last committed value", async () => {
    let a = open(A);
    ok(await a.store.kvPut("k", "1", LOCAL));
    expect(read(a, "k")?.valueJson).toBe("1");
    const second = ok(await a.store.kvPut("k", "2", LOCAL));
    expect(read(a, "k")?.valueJson).toBe("2");
    await close(a);
    a = open(A, a.path);
    const r = read(a, "k");
    expect(r?.valueJson).toBe("2");
    expect(second.body.version).toMatchObject({ node: A });
    ok(await a.store.kvPut("k", "3", LOCAL));
    expect(read(a, "k")?.valueJson).toBe("3");
  });
});

describe("X-Geokv-Token reads", () => {
  it("a read with the token of a remote write still committing waits for the commit, then reads the write", async () => {
    const a = open(A);
    const b = open(B);
    ok(await b.store.kvPut("k", '"old"', LOCAL));
    await a.store.applyRemote(ownOps(b));
    const w = ok(await a.store.kvPut("k", '"new"', LOCAL));
    expect(read(b, "k")?.valueJson).toBe('"old"');
    // The op reaches B; its group commit runs on a later turn of the event loop.
    const applying = b.store.applyRemote(ownOps(a));
    const waited = await b.store.awaitToken(parseCausalToken(w.token) as CausalToken, 5000);
    expect(waited).toBe(true);
    expect(b.store.kvGet("k")?.valueJson).toBe('"new"');
    await applying;
  });
});
