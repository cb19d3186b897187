// The SDK against real nodes: one region of three geokv processes with a
// client token set. Covers every call of the API, read-your-writes through a
// follower (also handed over to a second client), leader discovery, retries
// past a dead node, a write whose answer is lost being retried under the same
// Idempotency-Key and applied once, 4xx answers surfacing as typed errors
// without a retry, and calls that cannot succeed failing with "unavailable"
// within their deadline.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { createClient, GeokvError, isGeokvError, type ClientOptions, type GeokvClient } from "../../src/client/index.js";
import { startProcCluster, type ProcCluster } from "../support/proc-cluster.js";
import { agreedLeader, blackholeServer, deadUrl, recordingFetch } from "./helpers.js";

const CLIENT_TOKEN = "client-secret-for-tests";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let cluster: ProcCluster;
let leader: string;
let followers: string[];
const clients: GeokvClient[] = [];

function url(node: string): string {
  return cluster.urls.get(node) as string;
}

/** A client with the test token; closed after the suite. */
function client(o: Omit<ClientOptions, "token"> & { token?: string }): GeokvClient {
  const c = createClient({ token: CLIENT_TOKEN, ...o });
  clients.push(c);
  return c;
}

/** The error a promise rejects with, asserted to be a GeokvError. */
async function failure(p: Promise<unknown>): Promise<GeokvError> {
  try {
    await p;
  } catch (err) {
    expect(isGeokvError(err), String(err)).toBe(true);
    return err as GeokvError;
  }
  throw new Error("expected the call to fail");
}

beforeAll(async () => {
  cluster = await startProcCluster([{ region: "r", nodes: 3 }], { env: { GEOKV_LOG_LEVEL: "warn", GEOKV_CLIENT_TOKEN: CLIENT_TOKEN } });
  const nodes = cluster.regions.get("r") as string[];
  leader = await agreedLeader(cluster.urls, nodes);
  followers = nodes.filter((n) => n !== leader);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.close();
});

describe("the data API through the SDK", () => {
  it("kv: put, get, list with paging, del", async () => {
    const c = client({ nodes: [url(followers[0] as string)] });
    const put = await c.put("api/a", { n: 1, s: "x" });
    expect(put.token).toMatch(/^r-\d+:\d+$/);
    expect(put.version).toMatchObject({ node: leader, hlc: expect.any(String) });
    expect(await c.get("api/a")).toEqual({ value: { n: 1, s: "x" }, version: put.version });
    await c.put("api/b", [1, 2], { ack: "local" });
    await c.put("api/c", "text", { ack: "all" });
    await c.put("other", null);

    const first = await c.list({ prefix: "api/", limit: 2 });
    expect(first.items.map((i) => i.key)).toEqual(["api/a", "api/b"]);
    expect(first.next).toBe("api/b");
    const second = await c.list({ prefix: "api/", after: first.next as string, limit: 2 });
    expect(second.items).toEqual([expect.objectContaining({ key: "api/c", value: "text" })]);
    expect(second.next).toBeNull();

    const del = await c.del("api/a");
    expect(del.token).toMatch(/^r-\d+:\d+$/);
    expect(await c.get("api/a")).toBeNull();
    expect(await c.get("never-written")).toBeNull();
  });

  it("counters, sets, docs, conflicts and status", async () => {
    const c = client({ nodes: cluster.regions.get("r")?.map(url) as string[] });
    expect(await c.counter("api-count")).toBe(0);
    expect(await c.incr("api-count", 5)).toBe(5);
    expect(await c.incr("api-count", -2)).toBe(3);
    expect(await c.counter("api-count")).toBe(3);

    expect(await c.members("api-set")).toEqual([]);
    expect(await c.setAdd("api-set", ["b", "a", "c"])).toEqual(["a", "b", "c"]);
    expect(await c.setRemove("api-set", ["b"])).toEqual(["a", "c"]);
    expect(await c.members("api-set")).toEqual(["a", "c"]);

    const doc = new Y.Doc();
    doc.getText("t").insert(0, "hello");
    await c.docUpdate("api-doc", Y.encodeStateAsUpdate(doc));
    const copy = new Y.Doc();
    Y.applyUpdate(copy, await c.docGet("api-doc"));
    expect(copy.getText("t").toString()).toBe("hello");
    doc.getText("t").insert(5, " world");
    const sv = Y.encodeStateVector(copy);
    await c.docUpdate("api-doc", Y.encodeStateAsUpdate(doc, sv));
    // Only what `copy` lacks comes back, and it brings the copy up to date.
    Y.applyUpdate(copy, await c.docGet("api-doc", sv));
    expect(copy.getText("t").toString()).toBe("hello world");

    expect(Array.isArray(await c.conflicts(10))).toBe(true);
    const st = await c.status();
    expect(st.region).toBe("r");
    expect(st.leader).toBe(leader);
  });

  it("keys with slashes, spaces and non-ASCII text round-trip", async () => {
    const c = client({ nodes: [url(leader)] });
    for (const key of ["a/b/c", "with space", "ключ ✓", "%2F", "?x=1#y"]) {
      await c.put(key, key);
      expect((await c.get(key))?.value, key).toBe(key);
    }
  });
});

describe("read-your-writes and leader discovery", () => {
  it("a client that writes through a follower reads each write back at once", async () => {
    const rec = recordingFetch();
    const c = client({ nodes: [url(followers[0] as string)], fetch: rec.fetch });
    for (let i = 0; i < 30; i++) {
      const w = await c.put("ryw", i, { ack: "local" });
      expect(c.causalToken()).toBe(w.token);
      expect((await c.get("ryw"))?.value, `read after write ${i}`).toBe(i);
      expect(await c.incr("ryw-count", 1, { ack: "local" })).toBe(i + 1);
      expect(await c.counter("ryw-count")).toBe(i + 1);
    }
    // Every read carried the token of the write just before it.
    const reads = rec.sent.filter((r) => r.method === "GET");
    expect(reads.length).toBe(60);
    for (const r of reads) expect(r.headers.get("x-geokv-token")).toMatch(/^r-\d+:\d+$/);
  });

  it("the causal token carries read-your-writes to another client on another follower", async () => {
    const [f1, f2] = followers as [string, string];
    const writer = client({ nodes: [url(f1)] });
    for (let i = 0; i < 20; i++) {
      await writer.put("handover", { i }, { ack: "local" });
      await writer.setAdd("handover-set", [`m${i}`], { ack: "local" });
      const reader = client({ nodes: [url(f2)], causalToken: writer.causalToken() as string });
      expect((await reader.get("handover"))?.value).toEqual({ i });
      expect(await reader.members("handover-set")).toContain(`m${i}`);
    }
  });

  it("learns the leader from forwarded answers and then writes to it directly", async () => {
    const rec = recordingFetch();
    const c = client({ nodes: [url(followers[0] as string), url(followers[1] as string), url(leader)], fetch: rec.fetch });
    expect(c.leader()).toBeNull();
    await c.put("discover", 1);
    expect(c.leader()).toBe(leader);
    // While the leader's URL is unknown, writes try URLs that have not said who they are.
    for (let i = 0; i < 3; i++) await c.put("discover", i);
    const n = rec.sent.length;
    for (let i = 0; i < 5; i++) await c.put("discover", i);
    expect(rec.sent.slice(n).map((r) => new URL(r.url).origin)).toEqual(Array(5).fill(url(leader)));
  });
});

describe("retries", () => {
  it("a client whose first node refuses connections still succeeds, and then sticks to the live node", async () => {
    const dead = await deadUrl();
    const rec = recordingFetch();
    const c = client({ nodes: [dead, url(followers[0] as string)], fetch: rec.fetch });
    await c.put("retry-dead", "ok");
    expect(rec.sent.map((r) => [new URL(r.url).origin, r.status])).toEqual([
      [dead, "error"],
      [url(followers[0] as string), 200],
    ]);
    expect(rec.sent[0]?.headers.get("idempotency-key")).toBe(rec.sent[1]?.headers.get("idempotency-key"));
    expect((await c.get("retry-dead"))?.value).toBe("ok");
    expect(rec.sent).toHaveLength(3);
    expect(new URL(rec.sent[2]?.url as string).origin).toBe(url(followers[0] as string));
  });

  it("a write whose answer is lost is retried with the same Idempotency-Key and applied once", async () => {
    const rec = recordingFetch((r) => r.method === "POST" && r.url.includes("/counters/lost-answer") && r.status === 200 && !r.responseHeaders?.has("idempotent-replayed"));
    const c = client({ nodes: [url(followers[0] as string), url(followers[1] as string)], fetch: rec.fetch });
    expect(await c.incr("lost-answer", 7)).toBe(7);
    const posts = rec.sent.filter((r) => r.method === "POST");
    expect(posts).toHaveLength(2);
    const key = posts[0]?.headers.get("idempotency-key");
    expect(key).toMatch(UUID);
    expect(posts[1]?.headers.get("idempotency-key")).toBe(key);
    expect(posts[1]?.responseHeaders?.get("idempotent-replayed")).toBe("true");
    // Moved by the delta once, seen from every node.
    for (const node of cluster.regions.get("r") as string[]) {
      const reader = client({ nodes: [url(node)], causalToken: c.causalToken() as string });
      expect(await reader.counter("lost-answer"), node).toBe(7);
    }
  });

  it("every write carries its own Idempotency-Key", async () => {
    const rec = recordingFetch();
    const c = client({ nodes: [url(leader)], fetch: rec.fetch });
    await c.put("idem", 1);
    await c.put("idem", 1);
    await c.del("idem");
    await c.incr("idem", 1);
    await c.setAdd("idem", ["x"]);
    await c.setRemove("idem", ["x"]);
    const doc = new Y.Doc();
    doc.getText("t").insert(0, "x");
    await c.docUpdate("idem", Y.encodeStateAsUpdate(doc));
    const keys = rec.sent.map((r) => r.headers.get("idempotency-key"));
    expect(keys).toHaveLength(7);
    for (const k of keys) expect(k).toMatch(UUID);
    expect(new Set(keys).size).toBe(7);
    await c.get("idem");
    expect(rec.sent.at(-1)?.headers.get("idempotency-key")).toBeNull();
  });
});

describe("typed errors", () => {
  it("4xx answers are not retried and name their code, status and node", async () => {
    const rec = recordingFetch();
    const c = client({ nodes: [url(followers[0] as string), url(leader)], fetch: rec.fetch });
    const cases: [string, () => Promise<unknown>, string, number][] = [
      ["key over 1024 bytes", () => c.put("k".repeat(1025), 1), "invalid_key", 400],
      ["key over 1024 bytes, read", () => c.get("é".repeat(513)), "invalid_key", 400],
      ["fractional delta", () => c.incr("bad-delta", 1.5), "bad_request", 400],
      ["value over 1 MiB", () => c.put("too-big", "x".repeat(1_100_000)), "value_too_large", 413],
      ["empty set write", () => c.setAdd("bad-set", []), "bad_request", 400],
      ["list limit out of range", () => c.list({ limit: 0 }), "bad_request", 400],
    ];
    for (const [what, call, code, status] of cases) {
      const before = rec.sent.length;
      const e = await failure(call());
      expect(e.code, what).toBe(code);
      expect(e.status, what).toBe(status);
      expect(e.node, what).toMatch(/^r-\d$/);
      expect(e.message, what).not.toBe("");
      expect(rec.sent.length - before, `${what}: one attempt`).toBe(1);
    }
    expect(await c.counter("bad-delta")).toBe(0);
    expect(await c.get("too-big")).toBeNull();
  });

  it("a missing or wrong client token is unauthorized or forbidden", async () => {
    const rec = recordingFetch();
    const none = createClient({ nodes: [url(leader)], fetch: rec.fetch });
    const wrong = createClient({ nodes: [url(leader)], token: "nope", fetch: rec.fetch });
    clients.push(none, wrong);
    expect(await failure(none.get("x"))).toMatchObject({ code: "unauthorized", status: 401 });
    expect(await failure(wrong.put("x", 1))).toMatchObject({ code: "forbidden", status: 403 });
    expect(rec.sent).toHaveLength(2);
  });

  it("what cannot be sent fails before any request", async () => {
    const rec = recordingFetch();
    const c = client({ nodes: [url(leader)], fetch: rec.fetch });
    expect(await failure(c.put("\ud800", 1))).toMatchObject({ code: "invalid_key", status: null });
    expect(await failure(c.put("k", undefined as never))).toMatchObject({ code: "bad_request", status: null });
    expect(await failure(c.put("k", { n: 10n } as never))).toMatchObject({ code: "bad_request", status: null });
    expect(await failure(c.list({ prefix: "\udc00" }))).toMatchObject({ code: "bad_request", status: null });
    expect(rec.sent).toHaveLength(0);
  });
});

describe("deadlines", () => {
  it("all nodes refusing connections: unavailable at the deadline, after several backed-off attempts", async () => {
    const rec = recordingFetch();
    const timeoutMs = 1_000;
    const c = client({ nodes: [await deadUrl(), await deadUrl()], timeoutMs, fetch: rec.fetch });
    const started = performance.now();
    const e = await failure(c.put("nowhere", 1));
    const elapsed = performance.now() - started;
    expect(e.code).toBe("unavailable");
    expect(e.status).toBeNull();
    expect(e.cause?.message).toMatch(/ECONNREFUSED/);
    expect(elapsed).toBeLessThan(timeoutMs + 300);
    // It kept trying until the deadline, not one try and a give-up...
    expect(elapsed).toBeGreaterThan(timeoutMs - 150);
    expect(rec.sent.length).toBeGreaterThanOrEqual(3);
    // ...alternating nodes, with one Idempotency-Key for the whole write.
    expect(new Set(rec.sent.map((r) => new URL(r.url).origin)).size).toBe(2);
    expect(new Set(rec.sent.map((r) => r.headers.get("idempotency-key"))).size).toBe(1);
    // ...and with waits between attempts (backoff), not a hot loop.
    expect(rec.sent.length).toBeLessThan(60);
  });

  it("a node that accepts but never answers costs one attempt timeout, and the call still ends by its deadline", async () => {
    const hole = await blackholeServer();
    try {
      const rec = recordingFetch();
      const c = client({ nodes: [hole.url, url(leader)], timeoutMs: 3_000, attemptTimeoutMs: 400, fetch: rec.fetch });
      const started = performance.now();
      await c.put("after-blackhole", 1);
      const elapsed = performance.now() - started;
      expect(rec.sent.map((r) => r.status)).toEqual(["error", 200]);
      expect(elapsed).toBeGreaterThanOrEqual(390);
      expect(elapsed).toBeLessThan(2_000);

      const only = client({ nodes: [hole.url], timeoutMs: 1_200, attemptTimeoutMs: 400 });
      const t0 = performance.now();
      const e = await failure(only.get("k"));
      const took = performance.now() - t0;
      expect(e.code).toBe("unavailable");
      expect(e.cause?.message).toMatch(/no answer within \d+ ms/);
      expect(took).toBeGreaterThan(1_000);
      expect(took).toBeLessThan(1_200 + 300);
    } finally {
      await hole.close();
    }
  });

  it("close() ends calls under way with unavailable", async () => {
    const c = createClient({ nodes: [await deadUrl()], timeoutMs: 30_000, token: CLIENT_TOKEN });
    const started = performance.now();
    const p = failure(c.get("k"));
    // The call is under way (retrying a dead node within a 30 s deadline) when close() comes.
    setImmediate(() => c.close());
    const e = await p;
    expect(e.code).toBe("unavailable");
    expect(e.message).toMatch(/closed/);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(await failure(c.get("k"))).toMatchObject({ code: "unavailable" });
  });
});
