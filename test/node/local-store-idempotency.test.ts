// Idempotency across replicas, at the LocalStore level on real SQLite files:
// the Idempotency-Key travels inside the op, and a replica that applies the op
// records the answer in the same batch, so a retry that reaches it (after the
// origin died, say) replays the origin's token instead of writing again.

import Database from "better-sqlite3";
import * as Y from "yjs";
import { describe, expect, it } from "vitest";
import { asNodeId } from "../../src/core/ids.js";
import { encodeHlc } from "../../src/core/hlc.js";
import type { Op } from "../../src/core/op.js";
import { isNodeError, type NodeError } from "../../src/node/errors.js";
import type { WriteAnswer, WriteMeta } from "../../src/node/service.js";
import { useReplicas } from "./replicas.js";

const A = asNodeId("r-1");
const B = asNodeId("r-2");
const HASH = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg";
const OTHER_HASH = "Xq3JYl0bQm8vF1u2nRk4c5sTz6wP7yA8dE9hG0iJkLm";

const { open, close, ownOps } = useReplicas("geokv-idem-");

function meta(idempotencyKey: string | undefined, requestHash = HASH): WriteMeta {
  return idempotencyKey === undefined ? { ack: "local", requestHash } : { ack: "local", idempotencyKey, requestHash };
}

function answer(a: WriteAnswer | NodeError): WriteAnswer {
  if (isNodeError(a)) throw new Error(`expected an answer, got ${a.code}: ${a.message}`);
  return a;
}

function docUpdate(text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = 7;
  doc.getText("t").insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

describe("idempotency across replicas", () => {
  it("a retry on a replica that applied the origin's op replays the origin's answer and writes nothing", async () => {
    const a = open(A);
    const b = open(B);
    const first = answer(await a.store.counterAdd("c", 5, meta("K")));
    expect(first).toMatchObject({ replayed: false, token: "r-1:1", body: { key: "c", value: 5, token: "r-1:1" } });

    const ops = ownOps(a);
    expect(ops).toHaveLength(1);
    expect(ops[0]?.idem).toEqual({ key: "K", requestHash: HASH });
    expect(await b.store.applyRemote(ops)).toEqual(ops);

    expect(b.storage.getIdempotency("K")).toEqual({
      key: "K", requestHash: HASH, status: 200, body: JSON.stringify({ key: "c", value: 5, token: "r-1:1" }), createdAtMs: (ops[0] as Op).hlc.wallMs,
    });
    const retry = answer(await b.store.counterAdd("c", 5, meta("K")));
    expect(retry).toEqual({ body: first.body, token: first.token, replayed: true });
    expect(b.store.counterGet("c")).toBe(5);
    // B made no op of its own.
    expect(b.storage.opLogVv()).toEqual({ [A]: 1 });
    expect(b.store.versionVector()).toEqual({ [A]: 1 });

    const other = await b.store.counterAdd("c", 5, meta("K", "a-different-request"));
    expect(isNodeError(other) && other.code).toBe("idempotency_mismatch");
    expect(b.store.counterGet("c")).toBe(5);
    expect(b.storage.opLogVv()).toEqual({ [A]: 1 });
  });

  it("the record survives a restart of the replica", async () => {
    const a = open(A);
    let b = open(B);
    const first = answer(await a.store.counterAdd("c", 5, meta("K")));
    await b.store.applyRemote(ownOps(a));
    await close(b);
    b = open(B, b.path);
    expect(answer(await b.store.counterAdd("c", 5, meta("K")))).toEqual({ body: first.body, token: first.token, replayed: true });
    expect(b.store.counterGet("c")).toBe(5);
  });

  it("records an answer of the same shape for every namespace", async () => {
    const a = open(A);
    const b = open(B);
    const update = docUpdate("hello");
    const firsts = [
      answer(await a.store.kvPut("k", "{\"v\":1}", meta("put"))),
      answer(await a.store.kvDelete("gone", meta("del"))),
      answer(await a.store.setUpdate("s", ["x", "y"], [], meta("set"))),
      answer(await a.store.docUpdate("d", update, meta("doc"))),
    ];
    const ops = ownOps(a);
    expect(ops.map((o) => o.idem?.key)).toEqual(["put", "del", "set", "doc"]);
    await b.store.applyRemote(ops);

    const retries = [
      answer(await b.store.kvPut("k", "{\"v\":1}", meta("put"))),
      answer(await b.store.kvDelete("gone", meta("del"))),
      answer(await b.store.setUpdate("s", ["x", "y"], [], meta("set"))),
      answer(await b.store.docUpdate("d", update, meta("doc"))),
    ];
    for (const [i, first] of firsts.entries()) {
      expect(retries[i]).toEqual({ body: first.body, token: first.token, replayed: true });
    }
    const put = ops[0] as Op;
    expect(retries[0]?.body).toEqual({ key: "k", token: "r-1:1", version: { hlc: encodeHlc(put.hlc), node: A } });
    expect(retries[1]?.body).toEqual({ key: "gone", token: "r-1:2" });
    expect(retries[2]?.body).toEqual({ key: "s", members: ["x", "y"], token: "r-1:3" });
    expect(retries[3]?.body).toEqual({ key: "d", token: "r-1:4" });
    expect(b.storage.opLogVv()).toEqual({ [A]: 4 });
  });

  it("keeps a replica's own earlier record for a key, and records nothing for ops without a key", async () => {
    const a = open(A);
    const b = open(B);
    await a.store.counterAdd("c", 1, meta(undefined));
    // B took its own write under "K" before A's op with the same key, for a
    // different request, arrived: two writes, both acknowledged, both count.
    const mine = answer(await b.store.counterAdd("c", 2, meta("K")));
    const theirs = answer(await a.store.counterAdd("c", 3, meta("K", OTHER_HASH)));
    expect(theirs.token).toBe("r-1:2");
    await b.store.applyRemote(ownOps(a));
    expect(b.store.counterGet("c")).toBe(6);
    expect("idem" in (b.storage.getOps(A, 1, 1, 1)[0] as Op)).toBe(false);
    expect(answer(await b.store.counterAdd("c", 2, meta("K")))).toEqual({ body: mine.body, token: mine.token, replayed: true });
    expect(JSON.parse(b.storage.getIdempotency("K")?.body ?? "null")).toEqual({ key: "c", value: 2, token: "r-2:1" });
  });

  it("keeps the first record when one batch holds two ops with the same key", async () => {
    const a = open(A);
    const b = open(B);
    const c = open(asNodeId("r-3"));
    // C never saw A's op, so it took the same retry as a new write (a partition, or no replication yet).
    const fromA = answer(await a.store.counterAdd("c", 5, meta("K")));
    const fromC = answer(await c.store.counterAdd("c", 5, meta("K")));
    expect(fromC.token).toBe("r-3:1");
    await b.store.applyRemote([...ownOps(a), ...ownOps(c)]);
    expect(answer(await b.store.counterAdd("c", 5, meta("K")))).toEqual({ body: fromA.body, token: fromA.token, replayed: true });
  });

  it("a retry while the replica's batch is still committing already replays", async () => {
    const a = open(A);
    const b = open(B);
    const first = answer(await a.store.counterAdd("c", 5, meta("K")));
    const applying = b.store.applyRemote(ownOps(a));
    // The group commit runs on a later turn: nothing is on disk yet.
    expect(b.storage.getIdempotency("K")).toBeUndefined();
    const retry = b.store.counterAdd("c", 5, meta("K"));
    await applying;
    expect(answer(await retry)).toEqual({ body: first.body, token: first.token, replayed: true });
    expect(b.storage.opLogVv()).toEqual({ [A]: 1 });
  });

  it("commits the record in the op's batch: when that fails, neither is stored", async () => {
    const a = open(A);
    const b = open(B);
    await a.store.counterAdd("c", 5, meta("K"));
    const raw = new Database(b.path);
    raw.exec("CREATE TRIGGER fail_idem BEFORE INSERT ON idempotency BEGIN SELECT RAISE(ABORT, 'forced failure'); END;");
    raw.close();
    await expect(b.store.applyRemote(ownOps(a))).rejects.toThrow(/forced failure/);
    expect(b.storage.getOps(A, 1, 1, 1)).toEqual([]);
    expect(b.storage.getIdempotency("K")).toBeUndefined();
  });

  it("refuses an Idempotency-Key that could not travel in an op, and writes nothing", async () => {
    const a = open(A);
    for (const m of [meta("k".repeat(257)), meta("", HASH), meta("K", ""), meta("K", "h".repeat(129))]) {
      const r = await a.store.counterAdd("c", 1, m);
      expect(isNodeError(r) && r.code).toBe("bad_request");
    }
    expect(a.storage.opLogVv()).toEqual({});
    expect(answer(await a.store.counterAdd("c", 1, meta("k".repeat(256))))).toMatchObject({ replayed: false });
  });
});

describe("one write executed twice across a failover", () => {
  it("a counter retried at a new leader, whose first copy comes back with the old leader, counts once everywhere", async () => {
    const oldLeader = open(A);
    const newLeader = open(B);
    const third = open(asNodeId("r-3"));
    // The old leader takes the increment and dies before any follower has it.
    const first = answer(await oldLeader.store.counterAdd("c", 5, meta("retry-me")));
    // The client's retry (same key, same request) reaches the new leader, which has no record of it.
    const retry = answer(await newLeader.store.counterAdd("c", 5, meta("retry-me")));
    expect(retry.token).not.toBe(first.token);
    // The old leader comes back: its op is merged at the new leader, whose
    // counter leaves out its own copy (the later one). Nobody writes more.
    await newLeader.store.applyRemote(ownOps(oldLeader));
    expect(newLeader.store.counterGet("c")).toBe(5);
    const newOps = ownOps(newLeader);
    expect(newOps).toHaveLength(1);
    // The old leader gets the retry's copy: once.
    await oldLeader.store.applyRemote(newOps);
    expect(oldLeader.store.counterGet("c")).toBe(5);
    expect(ownOps(oldLeader)).toHaveLength(1);
    // A third replica that gets both copies, the loser first, agrees, and so
    // do the stored states, read back from SQLite.
    await third.store.applyRemote([...newOps]);
    expect(third.store.counterGet("c")).toBe(5);
    await third.store.applyRemote(ownOps(oldLeader));
    expect(third.store.counterGet("c")).toBe(5);
    expect(ownOps(third)).toHaveLength(0);
    expect(third.storage.getCounter("c")).toEqual(oldLeader.storage.getCounter("c"));
    expect(newLeader.storage.getCounter("c")).toEqual(oldLeader.storage.getCounter("c"));
  });

  it("a counter retried across two failovers (three copies) counts once on every replica", async () => {
    const leaders = [open(A), open(B), open(asNodeId("r-3"))];
    // Each leader takes the write in turn, dying before anyone else has it.
    for (const l of leaders) answer(await l.store.counterAdd("c", 5, meta("retry-me")));
    const copies = leaders.flatMap((l) => ownOps(l));
    for (const l of leaders) await l.store.applyRemote(copies.filter((op) => op.origin !== l.id));
    for (const l of leaders) {
      expect(l.store.counterGet("c")).toBe(5);
      expect(ownOps(l)).toHaveLength(1);
      expect(l.storage.getCounter("c")).toEqual(leaders[0]?.storage.getCounter("c"));
    }
  });

  it("counts once when the old leader's copy arrives while the new leader's retry is still committing", async () => {
    const oldLeader = open(A);
    const newLeader = open(B);
    await oldLeader.store.counterAdd("c", 5, meta("retry-me"));
    // The retry is taken but its group commit runs on a later turn; the old
    // copy arrives in between, so the new leader's answer is not on disk yet.
    const retry = newLeader.store.counterAdd("c", 5, meta("retry-me"));
    await newLeader.store.applyRemote(ownOps(oldLeader));
    answer(await retry);
    expect(newLeader.store.counterGet("c")).toBe(5);
    // The old leader, getting the retry's copy, agrees.
    await oldLeader.store.applyRemote(ownOps(newLeader));
    expect(oldLeader.store.counterGet("c")).toBe(5);
  });
});
