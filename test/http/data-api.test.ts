// The data API of DESIGN.md against one real node (SQLite file, HTTP server on
// a loopback port), spoken to with fetch: kv, listing and paging in byte
// order, counters, sets, Yjs docs, conflicts, causal tokens, Idempotency-Key,
// the operational endpoints, metrics and bearer-token auth.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { byteOrder, call, callJson, enc, errorCode, listAllKv, metricValue, startTestNode, statusVv, type Answer, type TestNode } from "./helpers.js";

/** How long a request with an unapplied X-Geokv-Token waits (the node's writeWaitMs). */
const TOKEN_WAIT_MS = 1000;

let n: TestNode;
let url: string;

beforeAll(async () => {
  n = await startTestNode({ flags: { "write-wait-ms": String(TOKEN_WAIT_MS) } });
  url = n.url;
});

afterAll(async () => {
  await n?.close();
});

const TOKEN_RE = /^t-1:[1-9]\d*$/;
const HLC_RE = /^\d{15}-\d{5}$/;

function seqOf(token: string): number {
  return Number(token.split(":")[1]);
}

/** Asserts a successful write: 200, the token header equals the body's token. */
function expectWrite(a: Answer): string {
  expect(a.status, a.text).toBe(200);
  const token = a.headers.get("x-geokv-token");
  expect(token).toMatch(TOKEN_RE);
  expect((a.json as { token: string }).token).toBe(token);
  expect(a.headers.get("x-geokv-node")).toBe("t-1");
  return token as string;
}

function expectError(a: Answer, status: number, code: string): void {
  expect(a.status, a.text).toBe(status);
  expect(errorCode(a), a.text).toBe(code);
  expect(a.headers.get("content-type")).toMatch(/^application\/json/);
  expect(a.headers.get("x-geokv-node")).toBe("t-1");
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

describe("kv", () => {
  it("puts, gets, overwrites and deletes a value; 404 after delete", async () => {
    const put = await callJson(url, "PUT", "/kv/user-1", { name: "Ada", tags: ["x", 1, null], nested: { ok: true } });
    const token = expectWrite(put);
    const putBody = put.json as { key: string; token: string; version: { hlc: string; node: string } };
    expect(Object.keys(putBody).sort()).toEqual(["key", "token", "version"]);
    expect(putBody.key).toBe("user-1");
    expect(putBody.version.node).toBe("t-1");
    expect(putBody.version.hlc).toMatch(HLC_RE);

    const get = await call(url, "GET", "/kv/user-1");
    expect(get.status).toBe(200);
    expect(get.headers.get("content-type")).toMatch(/^application\/json/);
    expect(get.json).toEqual({ key: "user-1", value: { name: "Ada", tags: ["x", 1, null], nested: { ok: true } }, version: putBody.version });

    const put2 = await callJson(url, "PUT", "/kv/user-1", "second");
    const token2 = expectWrite(put2);
    expect(seqOf(token2)).toBeGreaterThan(seqOf(token));
    const v2 = (put2.json as { version: { hlc: string } }).version;
    expect(v2.hlc > putBody.version.hlc).toBe(true);
    expect((await call(url, "GET", "/kv/user-1")).json).toEqual({ key: "user-1", value: "second", version: { hlc: v2.hlc, node: "t-1" } });

    const del = await call(url, "DELETE", "/kv/user-1");
    const delToken = expectWrite(del);
    expect(del.json).toEqual({ key: "user-1", token: delToken });
    expect(seqOf(delToken)).toBeGreaterThan(seqOf(token2));
    expectError(await call(url, "GET", "/kv/user-1"), 404, "not_found");

    // A put after a delete brings the key back.
    expectWrite(await callJson(url, "PUT", "/kv/user-1", 3));
    expect((await call(url, "GET", "/kv/user-1")).json).toMatchObject({ value: 3 });
  });

  it("answers 404 not_found for a key never written, and 200 for deleting one", async () => {
    expectError(await call(url, "GET", "/kv/never-written"), 404, "not_found");
    const del = await call(url, "DELETE", "/kv/never-written-2");
    expectWrite(del);
    expectError(await call(url, "GET", "/kv/never-written-2"), 404, "not_found");
  });

  it("round-trips every kind of JSON value, and null is a value, not a delete", async () => {
    const values: unknown[] = [null, false, true, 0, -1.5, 1e21, "", "ü😀\u0000\n\"", [], {}, [1, [2, [3]]], { "": 1, __proto__x: 2, "a b": [null] }];
    for (const [i, v] of values.entries()) {
      expectWrite(await callJson(url, "PUT", `/kv/json-${i}`, v));
      const got = await call(url, "GET", `/kv/json-${i}`);
      expect(got.status, `value #${i}`).toBe(200);
      expect((got.json as { value: unknown }).value, `value #${i}`).toEqual(v);
    }
  });

  it("keeps an own __proto__ member of a stored object", async () => {
    const text = '{"__proto__": {"polluted": 1}, "a": 2}';
    expectWrite(await call(url, "PUT", "/kv/proto", { headers: { "content-type": "application/json" }, body: text }));
    const got = await call(url, "GET", "/kv/proto");
    expect(got.text).toContain('"__proto__":{"polluted":1}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("takes unicode keys, keys with '/' sent as %2F, spaces, '%', '?', '#' and '+'", async () => {
    const keys = ["ключ", "日本語", "😀 emoji", "a/b/c", "/leading", "trailing/", "with space", " ", "100%", "q?x=1", "h#frag", "a+b", "é", "__proto__", "constructor"];
    for (const key of keys) {
      const put = await callJson(url, "PUT", `/kv/${enc(key)}`, { key });
      expectWrite(put);
      expect((put.json as { key: string }).key).toBe(key);
      const got = await call(url, "GET", `/kv/${enc(key)}`);
      expect(got.status, key).toBe(200);
      expect(got.json).toMatchObject({ key, value: { key } });
    }
    // "a/b/c" is one key: its parts are not keys.
    expectError(await call(url, "GET", "/kv/a"), 404, "not_found");
    // An unencoded "/" is not part of a key.
    expectError(await call(url, "GET", "/kv/a/b/c"), 400, "invalid_key");
    // Precomposed and decomposed "é" are different keys (no normalization).
    expectError(await call(url, "GET", `/kv/${enc("e\u0301")}`), 404, "not_found");
  });

  it("takes a key of exactly 1024 bytes, multi-byte characters included", async () => {
    for (const key of ["k".repeat(1024), "é".repeat(512), "😀".repeat(256), `${"x".repeat(1021)}€`]) {
      expect(Buffer.byteLength(key)).toBe(1024);
      expectWrite(await callJson(url, "PUT", `/kv/${enc(key)}`, 1));
      expect((await call(url, "GET", `/kv/${enc(key)}`)).json).toMatchObject({ key, value: 1 });
    }
  });
});

describe("kv listing", () => {
  // Byte order differs from JS (UTF-16) order for "\uFF21" vs an astral
  // character: UTF-8 EF BC A1 < F0 9F 98 80, but "\uFF21" > "\uD83D".
  const suffixes = ["a", "a b", "a/b", "a0", "b", "B", "é", "\uFF21", "😀", "日本", " ", "z", "zz", "~"];
  const keys = suffixes.map((s) => `list/${s}`);
  const sorted = [...keys].sort(byteOrder);

  beforeAll(async () => {
    for (const k of keys) expectWrite(await callJson(url, "PUT", `/kv/${enc(k)}`, { k }));
    // Deleted keys are not listed.
    expectWrite(await callJson(url, "PUT", `/kv/${enc("list/deleted")}`, 1));
    expectWrite(await call(url, "DELETE", `/kv/${enc("list/deleted")}`));
    // Neighbours outside the prefix.
    expectWrite(await callJson(url, "PUT", "/kv/list", 0));
    expectWrite(await callJson(url, "PUT", "/kv/lisu", 0));
    expectWrite(await callJson(url, "PUT", `/kv/${enc("list0")}`, 0));
  });

  it("lists a prefix in UTF-8 byte order with values and versions, next null at the end", async () => {
    expect(sorted.indexOf("list/\uFF21")).toBeLessThan(sorted.indexOf("list/😀"));
    const a = await call(url, "GET", `/kv?${new URLSearchParams({ prefix: "list/" })}`);
    expect(a.status).toBe(200);
    const page = a.json as { items: Array<{ key: string; value: unknown; version: { hlc: string; node: string } }>; next: string | null };
    expect(page.items.map((i) => i.key)).toEqual(sorted);
    expect(page.next).toBeNull();
    for (const item of page.items) {
      expect(item.value).toEqual({ k: item.key });
      expect(item.version.node).toBe("t-1");
      expect(item.version.hlc).toMatch(HLC_RE);
      expect((await call(url, "GET", `/kv/${enc(item.key)}`)).json).toEqual(item);
    }
  });

  it("pages with limit and next, passing next back as after", async () => {
    for (const limit of [1, 2, 3, 5, 7, 14, 100]) {
      const seen: string[] = [];
      let after: string | null = null;
      let pages = 0;
      for (;;) {
        const q = new URLSearchParams({ prefix: "list/", limit: String(limit) });
        if (after !== null) q.set("after", after);
        const a = await call(url, "GET", `/kv?${q}`);
        expect(a.status).toBe(200);
        const page = a.json as { items: Array<{ key: string }>; next: string | null };
        pages++;
        expect(page.items.length).toBeLessThanOrEqual(limit);
        seen.push(...page.items.map((i) => i.key));
        if (page.next === null) break;
        expect(page.items.length).toBe(limit);
        expect(page.next).toBe(page.items[page.items.length - 1]?.key);
        after = page.next;
        expect(pages).toBeLessThan(100);
      }
      expect(seen, `limit ${limit}`).toEqual(sorted);
      // No empty last page when the keys divide evenly into pages.
      expect(pages, `limit ${limit}`).toBe(Math.max(1, Math.ceil(sorted.length / limit)));
    }
  });

  it("treats after as exclusive, also for a key that does not exist", async () => {
    const q = new URLSearchParams({ prefix: "list/", after: sorted[3] as string });
    expect(((await call(url, "GET", `/kv?${q}`)).json as { items: Array<{ key: string }> }).items.map((i) => i.key)).toEqual(sorted.slice(4));
    const q2 = new URLSearchParams({ prefix: "list/", after: "list/a1" });
    const expected = sorted.filter((k) => byteOrder(k, "list/a1") > 0);
    expect(((await call(url, "GET", `/kv?${q2}`)).json as { items: Array<{ key: string }> }).items.map((i) => i.key)).toEqual(expected);
    // after before the prefix: the whole prefix; after past it: nothing.
    const q3 = new URLSearchParams({ prefix: "list/", after: "a" });
    expect(((await call(url, "GET", `/kv?${q3}`)).json as { items: unknown[] }).items).toHaveLength(sorted.length);
    const q4 = new URLSearchParams({ prefix: "list/", after: "list0" });
    expect((await call(url, "GET", `/kv?${q4}`)).json).toEqual({ items: [], next: null });
  });

  it("matches prefixes by bytes: a key equal to the prefix, unicode prefixes, no wildcards", async () => {
    const keysOf = async (prefix: string) => ((await call(url, "GET", `/kv?${new URLSearchParams({ prefix })}`)).json as { items: Array<{ key: string }> }).items.map((i) => i.key);
    expect(await keysOf("list/a")).toEqual(["list/a", "list/a b", "list/a/b", "list/a0"]);
    expect(await keysOf("list/é")).toEqual(["list/é"]);
    expect(await keysOf("list/😀")).toEqual(["list/😀"]);
    expect(await keysOf("list/ ")).toEqual(["list/ "]);
    expect(await keysOf("list/%")).toEqual([]);
    expect(await keysOf("list/_")).toEqual([]);
    expect(await keysOf("LIST/")).toEqual([]);
    expect(await keysOf("list")).toEqual(["list", ...sorted, "list0"]);
  });

  it("lists every key with no prefix, in byte order, across pages", async () => {
    const all = await listAllKv(url, 3);
    const ks = all.map((i) => i.key);
    expect(ks).toEqual([...ks].sort(byteOrder));
    expect(new Set(ks).size).toBe(ks.length);
    for (const k of [...keys, "list", "lisu", "list0"]) expect(ks).toContain(k);
    expect(ks).not.toContain("list/deleted");
  });
});

describe("counters", () => {
  it("is 0 when never written", async () => {
    const a = await call(url, "GET", "/counters/never");
    expect(a.status).toBe(200);
    expect(a.json).toEqual({ key: "never", value: 0 });
  });

  it("adds positive, negative and zero deltas", async () => {
    let expected = 0;
    for (const delta of [5, -3, -10, 0, 1_000_000, -999_999]) {
      expected += delta;
      const a = await callJson(url, "POST", "/counters/c1", { delta });
      const token = expectWrite(a);
      expect(a.json).toEqual({ key: "c1", value: expected, token });
    }
    expect((await call(url, "GET", "/counters/c1")).json).toEqual({ key: "c1", value: expected });
  });

  it("takes the largest safe deltas, unicode and %2F keys", async () => {
    const key = "ctr/ü 😀";
    expectWrite(await callJson(url, "POST", `/counters/${enc(key)}`, { delta: Number.MAX_SAFE_INTEGER }));
    expectWrite(await callJson(url, "POST", `/counters/${enc(key)}`, { delta: -Number.MAX_SAFE_INTEGER }));
    expect((await call(url, "GET", `/counters/${enc(key)}`)).json).toEqual({ key, value: 0 });
  });

  it("ignores unknown fields next to delta", async () => {
    expectWrite(await callJson(url, "POST", "/counters/c2", { delta: 2, note: "x" }));
    expect((await call(url, "GET", "/counters/c2")).json).toEqual({ key: "c2", value: 2 });
  });
});

describe("sets", () => {
  it("is empty when never written", async () => {
    const a = await call(url, "GET", "/sets/never");
    expect(a.status).toBe(200);
    expect(a.json).toEqual({ key: "never", members: [] });
  });

  it("adds and removes members and answers them sorted", async () => {
    let a = await callJson(url, "POST", "/sets/s1", { add: ["pear", "apple", "fig", "apple"] });
    let token = expectWrite(a);
    expect(a.json).toEqual({ key: "s1", members: ["apple", "fig", "pear"], token });

    a = await callJson(url, "POST", "/sets/s1", { remove: ["fig", "absent"] });
    token = expectWrite(a);
    expect(a.json).toEqual({ key: "s1", members: ["apple", "pear"], token });

    a = await callJson(url, "POST", "/sets/s1", { add: ["kiwi", "fig"], remove: ["apple"] });
    expectWrite(a);
    expect((a.json as { members: string[] }).members).toEqual(["fig", "kiwi", "pear"]);

    expect((await call(url, "GET", "/sets/s1")).json).toEqual({ key: "s1", members: ["fig", "kiwi", "pear"] });
  });

  it("takes any string as a member: empty, unicode, __proto__", async () => {
    const members = ["", " ", "ü", "😀", "\uFF21", "__proto__", "constructor", "toString", "a\u0000b"];
    const a = await callJson(url, "POST", "/sets/s2", { add: members });
    expectWrite(a);
    const got = (await call(url, "GET", "/sets/s2")).json as { members: string[] };
    expect(new Set(got.members)).toEqual(new Set(members));
    // Sorted, in JS string order (the order the set CRDT documents).
    expect(got.members).toEqual([...members].sort());
    expectWrite(await callJson(url, "POST", "/sets/s2", { remove: ["__proto__", ""] }));
    expect(((await call(url, "GET", "/sets/s2")).json as { members: string[] }).members).toEqual(members.filter((m) => m !== "__proto__" && m !== "").sort());
  });

  it("removing everything leaves an empty set, and an add brings a member back", async () => {
    expectWrite(await callJson(url, "POST", "/sets/s3", { add: ["x"] }));
    expectWrite(await callJson(url, "POST", "/sets/s3", { remove: ["x"] }));
    expect((await call(url, "GET", "/sets/s3")).json).toEqual({ key: "s3", members: [] });
    expectWrite(await callJson(url, "POST", "/sets/s3", { add: ["x"] }));
    expect((await call(url, "GET", "/sets/s3")).json).toEqual({ key: "s3", members: ["x"] });
  });
});

describe("docs", () => {
  function postUpdate(key: string, update: Uint8Array, headers: Record<string, string> = {}): Promise<Answer> {
    return call(url, "POST", `/docs/${enc(key)}/updates`, { headers: { "content-type": "application/octet-stream", ...headers }, body: update });
  }

  async function getDoc(key: string, sv?: Uint8Array): Promise<Answer> {
    const q = sv === undefined ? "" : `?${new URLSearchParams({ sv: b64(sv) })}`;
    const a = await call(url, "GET", `/docs/${enc(key)}${q}`);
    expect(a.status, a.text).toBe(200);
    expect(a.headers.get("content-type")).toBe("application/octet-stream");
    return a;
  }

  it("serves an empty doc for a key never written", async () => {
    const a = await getDoc("never");
    const d = new Y.Doc();
    Y.applyUpdate(d, a.bytes);
    expect(d.getText("t").toString()).toBe("");
  });

  it("stores Yjs updates and serves the whole state, and the diff from a state vector", async () => {
    const key = "notes/ü 1";
    const author = new Y.Doc();
    author.getText("t").insert(0, "hello");
    const a = await postUpdate(key, Y.encodeStateAsUpdate(author));
    const token = expectWrite(a);
    expect(a.json).toEqual({ key, token });

    const reader = new Y.Doc();
    Y.applyUpdate(reader, (await getDoc(key)).bytes);
    expect(reader.getText("t").toString()).toBe("hello");

    // An incremental update, captured as the author edits.
    const incremental: Uint8Array[] = [];
    author.on("update", (u: Uint8Array) => incremental.push(u));
    author.getText("t").insert(5, ", world");
    author.getText("t").delete(0, 1);
    author.getText("t").insert(0, "H");
    expect(incremental.length).toBeGreaterThan(0);
    for (const u of incremental) expectWrite(await postUpdate(key, u));

    const full = await getDoc(key);
    const diff = await getDoc(key, Y.encodeStateVector(reader));
    expect(diff.bytes.byteLength).toBeLessThan(full.bytes.byteLength);
    Y.applyUpdate(reader, diff.bytes);
    expect(reader.getText("t").toString()).toBe("Hello, world");

    // Up to date: the diff changes nothing.
    const none = await getDoc(key, Y.encodeStateVector(reader));
    Y.applyUpdate(reader, none.bytes);
    expect(reader.getText("t").toString()).toBe("Hello, world");

    // A fresh doc from the whole state equals the author's.
    const fresh = new Y.Doc();
    Y.applyUpdate(fresh, full.bytes);
    expect(fresh.getText("t").toString()).toBe(author.getText("t").toString());
  });

  it("merges concurrent edits from two clients like Yjs does, and re-posting an update is harmless", async () => {
    const key = "shared";
    const a = new Y.Doc();
    const b = new Y.Doc();
    a.getText("t").insert(0, "from a ");
    b.getText("t").insert(0, "from b ");
    b.getMap("m").set("x", 1);
    expectWrite(await postUpdate(key, Y.encodeStateAsUpdate(a)));
    expectWrite(await postUpdate(key, Y.encodeStateAsUpdate(b)));
    expectWrite(await postUpdate(key, Y.encodeStateAsUpdate(a)));

    const local = new Y.Doc();
    Y.applyUpdate(local, Y.encodeStateAsUpdate(a));
    Y.applyUpdate(local, Y.encodeStateAsUpdate(b));

    const served = new Y.Doc();
    Y.applyUpdate(served, (await getDoc(key)).bytes);
    expect(served.getText("t").toString()).toBe(local.getText("t").toString());
    expect(served.getText("t").toString()).toHaveLength("from a from b ".length);
    expect(served.getMap("m").get("x")).toBe(1);
  });

  it("accepts an update whose dependencies are missing and completes it when they arrive", async () => {
    const key = "pending";
    const a = new Y.Doc();
    const updates: Uint8Array[] = [];
    a.on("update", (u: Uint8Array) => updates.push(u));
    a.getText("t").insert(0, "one ");
    a.getText("t").insert(4, "two");
    expect(updates).toHaveLength(2);
    expectWrite(await postUpdate(key, updates[1] as Uint8Array));
    expectWrite(await postUpdate(key, updates[0] as Uint8Array));
    const d = new Y.Doc();
    Y.applyUpdate(d, (await getDoc(key)).bytes);
    expect(d.getText("t").toString()).toBe("one two");
  });

  it("keeps doc keys that contain '/updates' or are 'updates' apart", async () => {
    for (const [key, text] of [["x/updates", "one"], ["updates", "two"], ["x", "three"], ["updates/updates", "four"]] as const) {
      const a = await postUpdate(key, docUpdate(text));
      expectWrite(a);
      expect((a.json as { key: string }).key).toBe(key);
    }
    for (const [key, text] of [["x/updates", "one"], ["updates", "two"], ["x", "three"], ["updates/updates", "four"]] as const) {
      const d = new Y.Doc();
      Y.applyUpdate(d, (await getDoc(key)).bytes);
      expect(d.getText("t").toString(), key).toBe(text);
    }
  });

  it("takes the state vector in URL-safe base64 too", async () => {
    const key = "notes/ü 1";
    const reader = new Y.Doc();
    const sv = Y.encodeStateVector(reader);
    const a = await call(url, "GET", `/docs/${enc(key)}?sv=${Buffer.from(sv).toString("base64url")}`);
    expect(a.status).toBe(200);
    Y.applyUpdate(reader, a.bytes);
    expect(reader.getText("t").toString()).toBe("Hello, world");
  });
});

describe("concurrent writes to one key", () => {
  it("counts every one of 50 concurrent deltas", async () => {
    const deltas = Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? -i : i + 1));
    const answers = await Promise.all(deltas.map((delta) => callJson(url, "POST", "/counters/concurrent", { delta })));
    const tokens = answers.map(expectWrite);
    expect(new Set(tokens).size).toBe(50);
    expect((await call(url, "GET", "/counters/concurrent")).json).toEqual({ key: "concurrent", value: deltas.reduce((a, b) => a + b, 0) });
  });

  it("keeps every member of 40 concurrent set adds", async () => {
    const members = Array.from({ length: 40 }, (_, i) => `m${String(i).padStart(2, "0")}`);
    await Promise.all(members.map((m) => callJson(url, "POST", "/sets/concurrent", { add: [m] }).then(expectWrite)));
    expect((await call(url, "GET", "/sets/concurrent")).json).toEqual({ key: "concurrent", members });
  });

  it("lets the last of 30 concurrent puts win, with no conflict recorded on one node", async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => callJson(url, "PUT", "/kv/concurrent", i)));
    const byVersion = answers
      .map((a, i) => ({ i, v: (a.json as { version: { hlc: string } }).version.hlc, token: expectWrite(a) }))
      .sort((x, y) => (x.v < y.v ? -1 : x.v > y.v ? 1 : 0));
    const last = byVersion[byVersion.length - 1] as { i: number; v: string; token: string };
    expect(new Set(byVersion.map((x) => x.v)).size).toBe(30);
    expect((await call(url, "GET", "/kv/concurrent")).json).toEqual({ key: "concurrent", value: last.i, version: { hlc: last.v, node: "t-1" } });
    expect((await call(url, "GET", "/conflicts")).json).toEqual({ items: [] });
  });

  it("merges 20 concurrent doc updates from different clients", async () => {
    const words = Array.from({ length: 20 }, (_, i) => `w${i};`);
    await Promise.all(
      words.map((w) =>
        call(url, "POST", "/docs/concurrent/updates", { headers: { "content-type": "application/octet-stream" }, body: docUpdate(w) }).then(expectWrite),
      ),
    );
    const d = new Y.Doc();
    Y.applyUpdate(d, (await call(url, "GET", "/docs/concurrent")).bytes);
    const text = d.getText("t").toString();
    expect(text).toHaveLength(words.join("").length);
    for (const w of words) expect(text).toContain(w);
  });
});

describe("conflicts", () => {
  it("is an empty list on a single node", async () => {
    for (const q of ["", "?limit=1", "?limit=1000"]) {
      const a = await call(url, "GET", `/conflicts${q}`);
      expect(a.status).toBe(200);
      expect(a.json).toEqual({ items: [] });
    }
  });
});

describe("headers", () => {
  it("sends X-Geokv-Node on every response: answers, errors, 404s, HEAD and OPTIONS", async () => {
    const requests: Array<[string, string, Record<string, string>?, string?]> = [
      ["GET", "/health"],
      ["GET", "/ready"],
      ["GET", "/status"],
      ["GET", "/metrics"],
      ["GET", "/kv"],
      ["GET", "/kv/absent"],
      ["GET", "/nope"],
      ["GET", "/"],
      ["DELETE", "/nope/x"],
      ["PATCH", "/kv/x"],
      ["OPTIONS", "/kv/x"],
      ["HEAD", "/kv/absent"],
      ["HEAD", "/health"],
      ["PUT", "/kv/x", { "content-type": "application/json" }, "{bad"],
      ["PUT", "/kv/", { "content-type": "application/json" }, "1"],
      ["GET", "/kv/x", { "x-geokv-token": "garbage" }],
      ["GET", "/counters/x"],
      ["GET", "/sets/x"],
      ["GET", "/docs/x"],
      ["GET", "/conflicts"],
    ];
    for (const [method, path, headers, body] of requests) {
      const a = await call(url, method, path, { ...(headers ? { headers } : {}), ...(body === undefined ? {} : { body }) });
      expect(a.headers.get("x-geokv-node"), `${method} ${path}`).toBe("t-1");
      if (a.status >= 400 && method !== "HEAD") expect(errorCode(a), `${method} ${path}: ${a.text}`).toBeDefined();
    }
  });

  it("sends X-Geokv-Token on every kind of write, with increasing seqs, and not on reads", async () => {
    const tokens = [
      expectWrite(await callJson(url, "PUT", "/kv/tok", 1)),
      expectWrite(await call(url, "DELETE", "/kv/tok")),
      expectWrite(await callJson(url, "POST", "/counters/tok", { delta: 1 })),
      expectWrite(await callJson(url, "POST", "/sets/tok", { add: ["a"] })),
      expectWrite(await call(url, "POST", "/docs/tok/updates", { headers: { "content-type": "application/octet-stream" }, body: docUpdate("x") })),
    ];
    const seqs = tokens.map(seqOf);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
    for (const path of ["/kv/tok", "/counters/tok", "/sets/tok", "/docs/tok", "/kv"]) {
      expect((await call(url, "GET", path)).headers.get("x-geokv-token"), path).toBeNull();
    }
  });
});

function docUpdate(text: string): Uint8Array {
  const d = new Y.Doc();
  d.getText("t").insert(0, text);
  return Y.encodeStateAsUpdate(d);
}

describe("causal tokens (X-Geokv-Token)", () => {
  it("serves a read at once when the token's write is applied", async () => {
    const token = expectWrite(await callJson(url, "PUT", "/kv/ryw", "v1"));
    const started = Date.now();
    const reads = await Promise.all([
      call(url, "GET", "/kv/ryw", { headers: { "x-geokv-token": token } }),
      call(url, "GET", "/kv?prefix=ryw", { headers: { "x-geokv-token": token } }),
      call(url, "GET", "/counters/ryw", { headers: { "x-geokv-token": token } }),
      call(url, "GET", "/sets/ryw", { headers: { "x-geokv-token": token } }),
      call(url, "GET", "/docs/ryw", { headers: { "x-geokv-token": token } }),
    ]);
    for (const r of reads) expect(r.status, r.text).toBe(200);
    expect(reads[0]?.json).toMatchObject({ value: "v1" });
    // An older token is applied too.
    expect((await call(url, "GET", "/kv/ryw", { headers: { "x-geokv-token": "t-1:1" } })).status).toBe(200);
    // Had any read waited for the token, it would have taken the whole wait.
    expect(Date.now() - started).toBeLessThan(TOKEN_WAIT_MS);
  });

  it("holds a read with the token of the next write until that write is applied", async () => {
    const last = expectWrite(await callJson(url, "PUT", "/kv/ryw-next", "old"));
    const next = `t-1:${seqOf(last) + 1}`;
    const read = call(url, "GET", "/kv/ryw-next", { headers: { "x-geokv-token": next } });
    const write = callJson(url, "PUT", "/kv/ryw-next", "new");
    const [r, w] = await Promise.all([read, write]);
    expect(expectWrite(w)).toBe(next);
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ value: "new" });
  });

  it("answers 503 stale_replica with Retry-After when the token's write never arrives", async () => {
    const before = await statusVv(url);
    const started = Date.now();
    const answers = await Promise.all([
      call(url, "GET", "/kv/ryw", { headers: { "x-geokv-token": "t-1:999999" } }),
      call(url, "GET", "/kv?prefix=ryw", { headers: { "x-geokv-token": "t-1:999999" } }),
      call(url, "GET", "/counters/ryw", { headers: { "x-geokv-token": "other-node:1" } }),
      call(url, "GET", "/sets/ryw", { headers: { "x-geokv-token": "t-1:999999" } }),
      call(url, "GET", "/docs/ryw", { headers: { "x-geokv-token": "t-1:999999" } }),
      // A write that names an unapplied write waits too, then changes nothing.
      callJson(url, "PUT", "/kv/ryw", "should-not-land", { "x-geokv-token": "t-1:999999" }),
      callJson(url, "POST", "/counters/ryw", { delta: 1 }, { "x-geokv-token": "t-1:999999" }),
    ]);
    const elapsed = Date.now() - started;
    for (const a of answers) {
      expectError(a, 503, "stale_replica");
      expect(Number(a.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    // It waited (about writeWaitMs) before giving up.
    expect(elapsed).toBeGreaterThanOrEqual(TOKEN_WAIT_MS - 50);
    expect((await call(url, "GET", "/kv/ryw")).json).toMatchObject({ value: "v1" });
    expect((await call(url, "GET", "/counters/ryw")).json).toEqual({ key: "ryw", value: 0 });
    expect(await statusVv(url)).toEqual(before);
  });

  it("answers 400 bad_request for a token it cannot parse, at once, on reads and writes", async () => {
    const before = await statusVv(url);
    for (const token of ["garbage", "", "t-1", "t-1:", ":5", "t-1:0", "t-1:-1", "t-1:1.5", "t-1:abc", "t-1:99999999999999999", "t 1:1", "t-1:1:2", "ü:1", "x".repeat(5000)]) {
      const started = Date.now();
      expectError(await call(url, "GET", "/kv/ryw", { headers: { "x-geokv-token": token } }), 400, "bad_request");
      expectError(await callJson(url, "PUT", "/kv/ryw", "no", { "x-geokv-token": token }), 400, "bad_request");
      expect(Date.now() - started, JSON.stringify(token)).toBeLessThan(TOKEN_WAIT_MS);
    }
    expect((await call(url, "GET", "/kv/ryw")).json).toMatchObject({ value: "v1" });
    expect(await statusVv(url)).toEqual(before);
  });
});

describe("Idempotency-Key", () => {
  it("answers a retry with the first answer and applies the write once", async () => {
    const h = { "idempotency-key": "idem-counter-1" };
    const first = await callJson(url, "POST", "/counters/idem", { delta: 7 }, h);
    const token = expectWrite(first);
    const vv = await statusVv(url);
    for (let i = 0; i < 3; i++) {
      const again = await callJson(url, "POST", "/counters/idem", { delta: 7 }, h);
      expect(expectWrite(again)).toBe(token);
      expect(again.json).toEqual(first.json);
    }
    expect((await call(url, "GET", "/counters/idem")).json).toEqual({ key: "idem", value: 7 });
    expect(await statusVv(url)).toEqual(vv);
  });

  it("replays a kv put after the key changed, without putting the old value back", async () => {
    const h = { "idempotency-key": "idem-kv-1" };
    const first = await callJson(url, "PUT", "/kv/idem", "first", h);
    const token = expectWrite(first);
    expectWrite(await callJson(url, "PUT", "/kv/idem", "second"));
    const retry = await callJson(url, "PUT", "/kv/idem", "first", h);
    expect(expectWrite(retry)).toBe(token);
    expect(retry.json).toEqual(first.json);
    expect((await call(url, "GET", "/kv/idem")).json).toMatchObject({ value: "second" });
  });

  it("replays deletes, set and doc writes", async () => {
    const del1 = await call(url, "DELETE", "/kv/idem-del", { headers: { "idempotency-key": "idem-del" } });
    const del2 = await call(url, "DELETE", "/kv/idem-del", { headers: { "idempotency-key": "idem-del" } });
    expect(expectWrite(del2)).toBe(expectWrite(del1));

    const s1 = await callJson(url, "POST", "/sets/idem", { add: ["a"] }, { "idempotency-key": "idem-set" });
    expectWrite(await callJson(url, "POST", "/sets/idem", { remove: ["a"] }));
    const s2 = await callJson(url, "POST", "/sets/idem", { add: ["a"] }, { "idempotency-key": "idem-set" });
    expect(expectWrite(s2)).toBe(expectWrite(s1));
    expect((await call(url, "GET", "/sets/idem")).json).toEqual({ key: "idem", members: [] });

    const u = docUpdate("doc idem");
    const h = { "content-type": "application/octet-stream", "idempotency-key": "idem-doc" };
    const d1 = await call(url, "POST", "/docs/idem/updates", { headers: h, body: u });
    const d2 = await call(url, "POST", "/docs/idem/updates", { headers: h, body: u });
    expect(expectWrite(d2)).toBe(expectWrite(d1));
  });

  it("refuses the same key with a different request: 409 idempotency_mismatch, nothing applied", async () => {
    const h = { "idempotency-key": "idem-mismatch" };
    expectWrite(await callJson(url, "POST", "/counters/idem-m", { delta: 1 }, h));
    const vv = await statusVv(url);
    expectError(await callJson(url, "POST", "/counters/idem-m", { delta: 2 }, h), 409, "idempotency_mismatch");
    expectError(await callJson(url, "POST", "/counters/idem-other", { delta: 1 }, h), 409, "idempotency_mismatch");
    expectError(await callJson(url, "PUT", "/kv/idem-m", { delta: 1 }, h), 409, "idempotency_mismatch");
    expectError(await call(url, "DELETE", "/kv/idem-m", { headers: h }), 409, "idempotency_mismatch");
    expectError(await call(url, "POST", "/docs/idem-m/updates", { headers: { ...h, "content-type": "application/octet-stream" }, body: docUpdate("z") }), 409, "idempotency_mismatch");
    expect((await call(url, "GET", "/counters/idem-m")).json).toEqual({ key: "idem-m", value: 1 });
    expect((await call(url, "GET", "/counters/idem-other")).json).toEqual({ key: "idem-other", value: 0 });
    expectError(await call(url, "GET", "/kv/idem-m"), 404, "not_found");
    expect(await statusVv(url)).toEqual(vv);
  });

  it("gives ten concurrent duplicates one answer and applies the delta once", async () => {
    const vv = await statusVv(url);
    const h = { "idempotency-key": "idem-concurrent" };
    const answers = await Promise.all(Array.from({ length: 10 }, () => callJson(url, "POST", "/counters/idem-c", { delta: 5 }, h)));
    const tokens = answers.map(expectWrite);
    expect(new Set(tokens).size).toBe(1);
    for (const a of answers) expect(a.json).toEqual({ key: "idem-c", value: 5, token: tokens[0] });
    expect((await call(url, "GET", "/counters/idem-c")).json).toEqual({ key: "idem-c", value: 5 });
    const after = await statusVv(url);
    expect(after["t-1"]).toBe((vv["t-1"] ?? 0) + 1);
  });

  it("refuses concurrent requests that share a key but differ, applying only one", async () => {
    const h = { "idempotency-key": "idem-concurrent-mixed" };
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => callJson(url, "POST", "/counters/idem-cm", { delta: i + 1 }, h)));
    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status !== 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const a of refused) expectError(a, 409, "idempotency_mismatch");
    const winner = (ok[0]?.json as { value: number }).value;
    for (const a of ok) expect((a.json as { value: number }).value).toBe(winner);
    expect((await call(url, "GET", "/counters/idem-cm")).json).toEqual({ key: "idem-cm", value: winner });
  });
});

describe("operations endpoints", () => {
  it("/health and /ready answer 200", async () => {
    const h = await call(url, "GET", "/health");
    expect(h.status).toBe(200);
    const r = await call(url, "GET", "/ready");
    expect(r.status).toBe(200);
  });

  it("/status has the fields of the contract", async () => {
    const token = expectWrite(await callJson(url, "PUT", "/kv/status-probe", 1));
    const a = await call(url, "GET", "/status");
    expect(a.status).toBe(200);
    const s = a.json as Record<string, unknown>;
    expect(s).toMatchObject({ node: "t-1", region: "t", role: "leader", leader: "t-1", peers: [] });
    expect(Number.isInteger(s.epoch)).toBe(true);
    expect(s.fencingToken).toBe(`t:${String(s.epoch)}`);
    expect((s.vv as Record<string, number>)["t-1"]).toBeGreaterThanOrEqual(seqOf(token));
  });

  it("/metrics is Prometheus text with request, write and read counters per namespace", async () => {
    const before = (await call(url, "GET", "/metrics")).text;
    expectWrite(await callJson(url, "PUT", "/kv/metrics", 1));
    expectWrite(await callJson(url, "POST", "/counters/metrics", { delta: 1 }));
    expectWrite(await callJson(url, "POST", "/counters/metrics", { delta: 1 }, { "idempotency-key": "metrics-1" }));
    // A replay and a refused write are not new writes.
    expectWrite(await callJson(url, "POST", "/counters/metrics", { delta: 1 }, { "idempotency-key": "metrics-1" }));
    expectError(await callJson(url, "POST", "/counters/metrics", { delta: 1.5 }), 400, "bad_request");
    expectWrite(await callJson(url, "POST", "/sets/metrics", { add: ["a"] }));
    expectWrite(await call(url, "POST", "/docs/metrics/updates", { headers: { "content-type": "application/octet-stream" }, body: docUpdate("m") }));
    expect((await call(url, "GET", "/kv/metrics")).status).toBe(200);
    expect((await call(url, "GET", "/kv")).status).toBe(200);
    expect((await call(url, "GET", "/counters/metrics")).status).toBe(200);
    expect((await call(url, "GET", "/sets/metrics")).status).toBe(200);
    expect((await call(url, "GET", "/docs/metrics")).status).toBe(200);

    const m = await call(url, "GET", "/metrics");
    expect(m.status).toBe(200);
    expect(m.headers.get("content-type")).toMatch(/^text\/plain/);
    const after = m.text;
    expect(after).toContain("# TYPE geokv_http_requests_total counter");
    expect(after).toContain("# TYPE geokv_writes_total counter");
    expect(after).toContain("# TYPE geokv_reads_total counter");
    expect(after).toContain("# TYPE geokv_peer_bytes_sent_total counter");
    expect(after).toMatch(/^geokv_event_loop_delay_seconds\{stat="max"\} \d/m);
    expect(after).toMatch(/^geokv_event_loop_delay_seconds\{stat="p99"\} \d/m);
    const delta = (name: string, labels: string) => metricValue(after, name, labels) - metricValue(before, name, labels);
    expect(delta("geokv_writes_total", 'ns="kv"')).toBe(1);
    expect(delta("geokv_writes_total", 'ns="counters"')).toBe(2);
    expect(delta("geokv_writes_total", 'ns="sets"')).toBe(1);
    expect(delta("geokv_writes_total", 'ns="docs"')).toBe(1);
    expect(delta("geokv_reads_total", 'ns="kv"')).toBe(2);
    expect(delta("geokv_reads_total", 'ns="counters"')).toBe(1);
    expect(delta("geokv_reads_total", 'ns="sets"')).toBe(1);
    expect(delta("geokv_reads_total", 'ns="docs"')).toBe(1);
    expect(delta("geokv_http_requests_total", 'route="/counters/*",method="POST",code="200"')).toBe(3);
    expect(delta("geokv_http_requests_total", 'route="/counters/*",method="POST",code="400"')).toBe(1);
    // Route labels are patterns, never raw keys.
    expect(after).not.toContain('route="/kv/metrics"');
  });
});

describe("auth", () => {
  let secured: TestNode;
  const CLIENT = "client-secret-1";
  const ADMIN = "admin-secret-1";

  beforeAll(async () => {
    secured = await startTestNode({ env: { GEOKV_CLIENT_TOKEN: CLIENT, GEOKV_ADMIN_TOKEN: ADMIN } });
  });

  afterAll(async () => {
    await secured?.close();
  });

  const dataRequests: Array<[string, string, unknown?]> = [
    ["PUT", "/kv/a", 1],
    ["GET", "/kv/a"],
    ["DELETE", "/kv/a"],
    ["GET", "/kv"],
    ["GET", "/kv?prefix=a"],
    ["POST", "/counters/a", { delta: 1 }],
    ["GET", "/counters/a"],
    ["POST", "/sets/a", { add: ["x"] }],
    ["GET", "/sets/a"],
    ["GET", "/docs/a"],
    ["GET", "/conflicts"],
  ];

  function send(method: string, path: string, body: unknown, auth?: string): Promise<Answer> {
    const headers: Record<string, string> = auth === undefined ? {} : { authorization: auth };
    if (body === undefined) return call(secured.url, method, path, { headers });
    return callJson(secured.url, method, path, body, headers);
  }

  it("needs the client token on the data API: none 401, wrong 403, right 200", async () => {
    for (const [method, path, body] of dataRequests) {
      const none = await send(method, path, body);
      expect(none.status, `${method} ${path}`).toBe(401);
      expect(errorCode(none)).toBe("unauthorized");
      expect(none.headers.get("x-geokv-node")).toBe("t-1");
      for (const wrong of [`Bearer ${CLIENT}x`, `Bearer ${CLIENT.slice(0, -1)}`, "Bearer ", `Bearer ${ADMIN}`, `bearer wrong`]) {
        const a = await send(method, path, body, wrong);
        expect(a.status, `${method} ${path} with ${wrong}`).toBe(403);
        expect(errorCode(a)).toBe("forbidden");
      }
    }
    const docPost = await call(secured.url, "POST", "/docs/a/updates", { headers: { "content-type": "application/octet-stream" }, body: docUpdate("x") });
    expect(docPost.status).toBe(401);
    // Nothing was written by the refused requests.
    expect(await statusVv(secured.url)).toEqual({});

    expectWrite(await send("PUT", "/kv/a", 1, `Bearer ${CLIENT}`));
    const got = await send("GET", "/kv/a", undefined, `Bearer ${CLIENT}`);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ key: "a", value: 1 });
    expect((await send("GET", "/kv", undefined, `Bearer ${CLIENT}`)).status).toBe(200);
    expectWrite(await send("POST", "/counters/a", { delta: 1 }, `Bearer ${CLIENT}`));
    expect((await send("GET", "/conflicts", undefined, `Bearer ${CLIENT}`)).status).toBe(200);
  });

  it("leaves /health, /ready and /status open; /metrics needs a token that reads (or the admin token)", async () => {
    for (const path of ["/health", "/ready", "/status"]) {
      expect((await call(secured.url, "GET", path)).status, path).toBe(200);
    }
    expect((await call(secured.url, "GET", "/metrics")).status).toBe(401);
    expect((await call(secured.url, "GET", "/metrics", { headers: { authorization: "Bearer wrong" } })).status).toBe(403);
    for (const t of [CLIENT, ADMIN]) {
      const m = await call(secured.url, "GET", "/metrics", { headers: { authorization: `Bearer ${t}` } });
      expect(m.status).toBe(200);
      expect(m.text).toContain("geokv_http_requests_total");
    }
  });

  it("needs the admin token on /admin/* and /leadership/stepdown", async () => {
    for (const path of ["/admin/faults", "/leadership/stepdown"]) {
      const none = await callJson(secured.url, "POST", path, {});
      expect(none.status, path).toBe(401);
      expect(errorCode(none)).toBe("unauthorized");
      const wrong = await callJson(secured.url, "POST", path, {}, { authorization: `Bearer ${CLIENT}` });
      expect(wrong.status, path).toBe(403);
      expect(errorCode(wrong)).toBe("forbidden");
      const right = await callJson(secured.url, "POST", path, {}, { authorization: `Bearer ${ADMIN}` });
      expect([401, 403]).not.toContain(right.status);
    }
  });
});
