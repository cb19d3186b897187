// Every malformed request gets its documented error code and changes nothing
// (DESIGN.md: "A malformed request never changes stored data and never
// crashes the node"). Each case is checked against a snapshot of everything
// the API can show: all kv items, the counters, sets and docs the cases aim
// at, the conflicts, the node's version vector and its writes metric.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { call, callJson, enc, errorCode, listAllKv, metricValue, startTestNode, statusVv, type Answer, type Req, type TestNode } from "./helpers.js";

const MAX_VALUE_BYTES = 1024;
const TOKEN_WAIT_MS = 300;

let n: TestNode;
let url: string;

const COUNTERS = ["c", "ovf-p", "ovf-n", "k"];
const SETS = ["s", "k"];
const DOCS = ["d", "k"];

function docUpdate(text: string): Uint8Array {
  const d = new Y.Doc();
  d.getText("t").insert(0, text);
  return Y.encodeStateAsUpdate(d);
}

beforeAll(async () => {
  n = await startTestNode({ flags: { "max-value-bytes": String(MAX_VALUE_BYTES), "write-wait-ms": String(TOKEN_WAIT_MS) } });
  url = n.url;
  // Some state for the bad requests to (not) damage.
  for (const [k, v] of [["k", { a: 1 }], ["other", "x"], ["ü/😀", [1, 2]]] as const) {
    expect((await callJson(url, "PUT", `/kv/${enc(k)}`, v)).status).toBe(200);
  }
  expect((await callJson(url, "POST", "/counters/c", { delta: 42 })).status).toBe(200);
  expect((await callJson(url, "POST", "/counters/ovf-p", { delta: Number.MAX_SAFE_INTEGER })).status).toBe(200);
  expect((await callJson(url, "POST", "/counters/ovf-n", { delta: -Number.MAX_SAFE_INTEGER })).status).toBe(200);
  expect((await callJson(url, "POST", "/sets/s", { add: ["a", "b"] })).status).toBe(200);
  const u = docUpdate("doc text");
  expect((await call(url, "POST", "/docs/d/updates", { headers: { "content-type": "application/octet-stream" }, body: u })).status).toBe(200);
});

afterAll(async () => {
  await n?.close();
});

/** Everything a bad request could have changed, as the API shows it. */
async function snapshot(): Promise<unknown> {
  const counters: Record<string, unknown> = {};
  for (const k of COUNTERS) counters[k] = (await call(url, "GET", `/counters/${k}`)).json;
  const sets: Record<string, unknown> = {};
  for (const k of SETS) sets[k] = (await call(url, "GET", `/sets/${k}`)).json;
  const docs: Record<string, string> = {};
  for (const k of DOCS) docs[k] = Buffer.from((await call(url, "GET", `/docs/${k}`)).bytes).toString("base64");
  const metrics = (await call(url, "GET", "/metrics")).text;
  const writes = ["kv", "counters", "sets", "docs"].map((ns) => metricValue(metrics, "geokv_writes_total", `ns="${ns}"`));
  return {
    kv: await listAllKv(url),
    counters,
    sets,
    docs,
    conflicts: (await call(url, "GET", "/conflicts")).json,
    vv: await statusVv(url),
    writes,
  };
}

interface Case {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly req?: Req;
  readonly status: number;
  readonly code: string;
}

const JSON_CT = { "content-type": "application/json" };
const OCTETS = { "content-type": "application/octet-stream" };

/** Sends the case and checks its answer and that nothing changed. */
async function expectRefused(c: Case): Promise<Answer> {
  const before = await snapshot();
  const a = await call(url, c.method, c.path, c.req);
  expect(a.status, `${c.name}: ${a.text}`).toBe(c.status);
  expect(a.headers.get("x-geokv-node"), c.name).toBe("t-1");
  expect(a.headers.get("x-geokv-token"), c.name).toBeNull();
  if (c.method !== "HEAD") {
    expect(a.headers.get("content-type"), c.name).toMatch(/^application\/json/);
    expect(errorCode(a), `${c.name}: ${a.text}`).toBe(c.code);
    expect((a.json as { error: { message: string } }).error.message.length, c.name).toBeGreaterThan(0);
  }
  expect(await snapshot(), c.name).toEqual(before);
  return a;
}

async function runCases(cases: readonly Case[]): Promise<void> {
  for (const c of cases) await expectRefused(c);
}

function jsonCase(name: string, method: string, path: string, body: string | Uint8Array, status = 400, code = "bad_request", headers: Record<string, string> = JSON_CT): Case {
  return { name, method, path, req: { headers, body }, status, code };
}

const WRITES_WITH_JSON: Array<[string, string]> = [
  ["PUT", "/kv/k"],
  ["POST", "/counters/c"],
  ["POST", "/sets/s"],
];

describe("malformed bodies", () => {
  it("refuses malformed JSON with bad_request", async () => {
    const bodies = ["{bad", "{", "[1,", "undefined", "NaN", "'single'", '{"a":1}}', "1 2", "{\"delta\": 1,}", "\uFEFF", "tru", '"unterminated', "{delta: 1}", "// comment\n1"];
    const cases: Case[] = [];
    for (const [method, path] of WRITES_WITH_JSON) for (const b of bodies) cases.push(jsonCase(`${method} ${path} ${JSON.stringify(b)}`, method, path, b));
    await runCases(cases);
  });

  it("refuses numbers past the range of a double instead of storing them as null", async () => {
    const cases: Case[] = [];
    for (const b of ["1e400", "-1e400", "[1, 1e309]", '{"a": {"b": -2e308}}']) {
      cases.push(jsonCase(`kv ${b}`, "PUT", "/kv/k", b));
      cases.push(jsonCase(`new kv ${b}`, "PUT", "/kv/new-inf", b));
    }
    cases.push(jsonCase("set with a huge number", "POST", "/sets/s", '{"add":["z"],"n":1e400}'));
    await runCases(cases);
  });

  it("refuses a body that is not UTF-8", async () => {
    const cases: Case[] = [];
    for (const [method, path] of WRITES_WITH_JSON) {
      cases.push(jsonCase(`${method} ${path} invalid UTF-8`, method, path, new Uint8Array([0x22, 0xff, 0xfe, 0x22])));
      cases.push(jsonCase(`${method} ${path} encoded surrogate`, method, path, new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22])));
    }
    await runCases(cases);
  });

  it("refuses empty and blank bodies", async () => {
    const cases: Case[] = [];
    for (const [method, path] of WRITES_WITH_JSON) {
      cases.push(jsonCase(`${method} ${path} empty`, method, path, ""));
      cases.push(jsonCase(`${method} ${path} blank`, method, path, "  \n\t "));
      cases.push({ name: `${method} ${path} no body`, method, path, req: { headers: JSON_CT }, status: 400, code: "bad_request" });
    }
    cases.push({ name: "doc update, empty", method: "POST", path: "/docs/d/updates", req: { headers: OCTETS, body: new Uint8Array(0) }, status: 400, code: "bad_request" });
    cases.push({ name: "doc update, no body", method: "POST", path: "/docs/d/updates", req: { headers: OCTETS }, status: 400, code: "bad_request" });
    await runCases(cases);
  });

  it("refuses wrong content types", async () => {
    const cases: Case[] = [];
    for (const [method, path] of WRITES_WITH_JSON) {
      for (const ct of ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "application/octet-stream", "application/jsonx", "json", "multipart/form-data; boundary=x"]) {
        cases.push(jsonCase(`${method} ${path} as ${ct}`, method, path, path.startsWith("/kv") ? "1" : path.startsWith("/counters") ? '{"delta":1}' : '{"add":["z"]}', 400, "bad_request", { "content-type": ct }));
      }
    }
    const u = docUpdate("never stored");
    for (const ct of ["application/json", "text/plain", "application/octet-streamx"]) {
      cases.push({ name: `doc update as ${ct}`, method: "POST", path: "/docs/d/updates", req: { headers: { "content-type": ct }, body: u }, status: 400, code: "bad_request" });
    }
    // fetch sends no Content-Type for raw bytes: a doc update must say what it is.
    cases.push({ name: "doc update without content type", method: "POST", path: "/docs/d/updates", req: { body: u }, status: 400, code: "bad_request" });
    // fetch labels a string body text/plain when the caller says nothing.
    cases.push({ name: "kv put with fetch's default text/plain", method: "PUT", path: "/kv/k", req: { body: "1" }, status: 400, code: "bad_request" });
    await runCases(cases);
  });
});

describe("invalid keys", () => {
  const routes: Array<[string, (key: string) => string, Req?]> = [
    ["PUT", (k) => `/kv/${k}`, { headers: JSON_CT, body: "1" }],
    ["GET", (k) => `/kv/${k}`],
    ["DELETE", (k) => `/kv/${k}`],
    ["POST", (k) => `/counters/${k}`, { headers: JSON_CT, body: '{"delta":1}' }],
    ["GET", (k) => `/counters/${k}`],
    ["POST", (k) => `/sets/${k}`, { headers: JSON_CT, body: '{"add":["x"]}' }],
    ["GET", (k) => `/sets/${k}`],
    ["POST", (k) => `/docs/${k}/updates`, { headers: OCTETS, body: docUpdate("x") }],
    ["GET", (k) => `/docs/${k}`],
  ];

  const badKeys: Array<[string, string]> = [
    ["empty", ""],
    ["1025 ASCII bytes", "k".repeat(1025)],
    ["1026 bytes of é", enc("é".repeat(513))],
    ["1028 bytes of emoji", enc("😀".repeat(257))],
    ["invalid UTF-8 %FF%FE", "%FF%FE"],
    ["overlong %C0%AF", "%C0%AF"],
    ["lone surrogate %ED%A0%80", "%ED%A0%80"],
    ["low surrogate %ED%B0%80", "a%ED%B0%80b"],
    ["truncated %E2%82", "%E2%82"],
    ["bare %", "%"],
    ["bad escape %G1", "%G1"],
    ["half escape %2", "ab%2"],
    ["unencoded slash", "a/b"],
  ];

  it("refuses each invalid key with invalid_key on every keyed route", async () => {
    const cases: Case[] = [];
    for (const [method, path, req] of routes) {
      for (const [name, raw] of badKeys) {
        cases.push({ name: `${method} ${path(raw)} (${name})`.slice(0, 200), method, path: path(raw), ...(req ? { req } : {}), status: 400, code: "invalid_key" });
      }
    }
    await runCases(cases);
  });

  it("takes %2F alone as the one-byte key '/'", async () => {
    // The boundary the other way: an encoded slash is a valid one-byte key.
    const a = await callJson(url, "PUT", "/kv/%2F", 1);
    expect(a.status).toBe(200);
    expect((await call(url, "GET", "/kv/%2F")).json).toMatchObject({ key: "/", value: 1 });
    expect((await call(url, "DELETE", "/kv/%2F")).status).toBe(200);
  });
});

describe("size limits", () => {
  it("refuses a body over maxValueBytes with value_too_large, on every write", async () => {
    const big = JSON.stringify("x".repeat(MAX_VALUE_BYTES));
    const bigDelta = `{"delta":1,"pad":${JSON.stringify("x".repeat(MAX_VALUE_BYTES))}}`;
    const bigSet = JSON.stringify({ add: Array.from({ length: 300 }, (_, i) => `m${i}`) });
    expect(bigSet.length).toBeGreaterThan(MAX_VALUE_BYTES);
    const bigDoc = docUpdate("y".repeat(MAX_VALUE_BYTES * 2));
    await runCases([
      jsonCase("kv put", "PUT", "/kv/k", big, 413, "value_too_large"),
      jsonCase("kv put, new key", "PUT", "/kv/new-big", big, 413, "value_too_large"),
      jsonCase("counter", "POST", "/counters/c", bigDelta, 413, "value_too_large"),
      jsonCase("set", "POST", "/sets/s", bigSet, 413, "value_too_large"),
      { name: "doc", method: "POST", path: "/docs/d/updates", req: { headers: OCTETS, body: bigDoc }, status: 413, code: "value_too_large" },
      jsonCase("one byte over", "PUT", "/kv/k", `"${"x".repeat(MAX_VALUE_BYTES - 1)}"`, 413, "value_too_large"),
    ]);
  });

  it("refuses an oversized body sent without Content-Length (chunked)", async () => {
    const chunk = new TextEncoder().encode("x".repeat(400));
    const streamed = (prefix: string, chunks: number) =>
      new ReadableStream<Uint8Array>({
        start(ctl) {
          ctl.enqueue(new TextEncoder().encode(prefix));
          for (let i = 0; i < chunks; i++) ctl.enqueue(chunk);
          ctl.enqueue(new TextEncoder().encode('"'));
          ctl.close();
        },
      });
    await runCases([
      { name: "kv chunked", method: "PUT", path: "/kv/k", req: { headers: JSON_CT, body: streamed('"', 10) }, status: 413, code: "value_too_large" },
      { name: "doc chunked", method: "POST", path: "/docs/d/updates", req: { headers: OCTETS, body: streamed("", 10) }, status: 413, code: "value_too_large" },
    ]);
    // A chunked body under the limit is fine.
    const ok = await call(url, "PUT", "/kv/chunked-ok", { headers: JSON_CT, body: streamed('"', 1) });
    expect(ok.status, ok.text).toBe(200);
    expect(((await call(url, "GET", "/kv/chunked-ok")).json as { value: string }).value).toHaveLength(400);
  });

  it("takes a body of exactly maxValueBytes", async () => {
    const exact = `"${"x".repeat(MAX_VALUE_BYTES - 2)}"`;
    expect(Buffer.byteLength(exact)).toBe(MAX_VALUE_BYTES);
    expect((await call(url, "PUT", "/kv/exact", { headers: JSON_CT, body: exact })).status).toBe(200);
  });

  it("refuses an Idempotency-Key over 256 bytes or empty, and takes one of 256", async () => {
    await runCases([
      jsonCase("257-byte key", "PUT", "/kv/k", "2", 400, "bad_request", { ...JSON_CT, "idempotency-key": "i".repeat(257) }),
      jsonCase("129 two-byte chars", "POST", "/counters/c", '{"delta":1}', 400, "bad_request", { ...JSON_CT, "idempotency-key": "é".repeat(129) }),
      jsonCase("empty key", "POST", "/counters/c", '{"delta":1}', 400, "bad_request", { ...JSON_CT, "idempotency-key": "" }),
      { name: "delete with a 4000-byte key", method: "DELETE", path: "/kv/k", req: { headers: { "idempotency-key": "i".repeat(4000) } }, status: 400, code: "bad_request" },
    ]);
    const ok = await callJson(url, "POST", "/counters/idem256", { delta: 1 }, { "idempotency-key": "i".repeat(256) });
    expect(ok.status).toBe(200);
  });
});

describe("field types", () => {
  it("refuses a delta that is not a safe integer", async () => {
    const bodies = ['{"delta":1.5}', '{"delta":"5"}', '{"delta":null}', "{}", '{"delta":true}', '{"delta":[5]}', '{"delta":{"x":1}}', `{"delta":${2 ** 60}}`, `{"delta":${-(2 ** 60)}}`, '{"delta":1e400}', '{"delta":-1e400}', '{"delta":9007199254740992}', '{"Delta":1}', "[{\"delta\":1}]", "5", "null", '"delta"'];
    await runCases(bodies.map((b) => jsonCase(`counter ${b}`, "POST", "/counters/c", b)));
  });

  it("refuses a delta that would overflow the counter's safe integer range (was a 500)", async () => {
    await runCases([
      jsonCase("past +MAX_SAFE_INTEGER", "POST", "/counters/ovf-p", '{"delta":1}'),
      jsonCase("far past +MAX_SAFE_INTEGER", "POST", "/counters/ovf-p", `{"delta":${Number.MAX_SAFE_INTEGER}}`),
      jsonCase("past -MAX_SAFE_INTEGER", "POST", "/counters/ovf-n", '{"delta":-1}'),
    ]);
    // Moving back towards zero is fine; the increments total stays at its
    // limit (a PN-counter's totals only grow), so a further +1 is refused.
    const back = await callJson(url, "POST", "/counters/ovf-p", { delta: -1 });
    expect(back.status, back.text).toBe(200);
    expect(back.json).toMatchObject({ value: Number.MAX_SAFE_INTEGER - 1 });
    await expectRefused(jsonCase("increments total at its limit", "POST", "/counters/ovf-p", '{"delta":1}'));
  });

  it("refuses set bodies with non-string members, non-arrays, or nothing to do", async () => {
    const bodies = [
      '{"add":[1]}', '{"add":[null]}', '{"add":["a",2]}', '{"add":[["a"]]}', '{"add":[{}]}', '{"add":"a"}', '{"add":null}', '{"add":{"0":"a"}}',
      '{"remove":[1]}', '{"remove":"a"}', '{"add":["ok"],"remove":[false]}', '{"add":[1],"remove":["a"]}',
      '{"add":["\\ud800"]}', '{"remove":["x\\udc00"]}',
      "{}", '{"add":[]}', '{"remove":[]}', '{"add":[],"remove":[]}', '{"other":["a"]}',
      "[]", '["a"]', '"a"', "null", "1",
    ];
    await runCases(bodies.map((b) => jsonCase(`set ${b}`, "POST", "/sets/s", b)));
  });

  it("refuses bytes that are not a Yjs update", async () => {
    const valid = docUpdate("a valid update, cut short");
    const bodies: Array<[string, Uint8Array]> = [
      ["one byte 01", new Uint8Array([1])],
      ["one byte ff", new Uint8Array([0xff])],
      ["01 02 03", new Uint8Array([1, 2, 3])],
      ["text", new TextEncoder().encode("hello")],
      ["JSON", new TextEncoder().encode('{"a":1}')],
      ["truncated update", valid.slice(0, valid.length >> 1)],
      ["huge varint", new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])],
    ];
    // Seeded pseudo-random garbage: each starts with a byte that no empty update starts with.
    let seed = 0x2f6b_1d3;
    const next = () => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) >>> 24;
    for (let i = 0; i < 8; i++) {
      const b = new Uint8Array(1 + (i * 37) % 200).map(next);
      b[0] = 0x80 | (b[0] as number);
      bodies.push([`random #${i}`, b]);
    }
    await runCases(bodies.map(([name, body]) => ({ name: `doc ${name}`, method: "POST", path: "/docs/d/updates", req: { headers: OCTETS, body }, status: 400, code: "bad_request" })));
  });
});

describe("bad query parameters", () => {
  it("refuses a bad ?sv=", async () => {
    const svs = ["!!!", "a b", "%FF", "AQ==", "/w==", "////", "gICAgICAgICAgA==", "AA=A", "====="];
    await runCases(svs.map((sv) => ({ name: `sv=${sv}`, method: "GET", path: `/docs/d?sv=${encodeURIComponent(sv)}`, status: 400, code: "bad_request" })));
  });

  it("refuses a bad ?limit= on /kv and /conflicts", async () => {
    const limits = ["0", "-1", "abc", "1.5", "1001", "99999999999", "1e3", "0x10", "%20", "+1", "１"];
    const cases: Case[] = [];
    for (const path of ["/kv", "/conflicts"]) for (const l of limits) cases.push({ name: `${path} limit=${l}`, method: "GET", path: `${path}?limit=${encodeURIComponent(l)}`, status: 400, code: "bad_request" });
    await runCases(cases);
  });

  it("refuses a prefix or after that is not URL-encoded UTF-8", async () => {
    const cases: Case[] = [];
    for (const p of ["%FF", "%ED%A0%80", "%C0%AF", "a%", "%G1"]) {
      cases.push({ name: `prefix=${p}`, method: "GET", path: `/kv?prefix=${p}`, status: 400, code: "bad_request" });
      cases.push({ name: `after=${p}`, method: "GET", path: `/kv?after=${p}`, status: 400, code: "bad_request" });
    }
    await runCases(cases);
  });

  it("refuses a bad ?ack= on every write, and writes nothing", async () => {
    const cases: Case[] = [];
    for (const ack of ["none", "ALL", "1", "local,region", "quorum"]) {
      const q = `?ack=${encodeURIComponent(ack)}`;
      cases.push(jsonCase(`kv ack=${ack}`, "PUT", `/kv/k${q}`, '"changed"'));
      cases.push(jsonCase(`new kv ack=${ack}`, "PUT", `/kv/new-ack${q}`, '"changed"'));
      cases.push({ name: `delete ack=${ack}`, method: "DELETE", path: `/kv/k${q}`, status: 400, code: "bad_request" });
      cases.push(jsonCase(`counter ack=${ack}`, "POST", `/counters/c${q}`, '{"delta":1}'));
      cases.push(jsonCase(`set ack=${ack}`, "POST", `/sets/s${q}`, '{"add":["z"]}'));
      cases.push({ name: `doc ack=${ack}`, method: "POST", path: `/docs/d/updates${q}`, req: { headers: OCTETS, body: docUpdate("z") }, status: 400, code: "bad_request" });
    }
    await runCases(cases);
    for (const ack of ["local", "region", "all"]) expect((await callJson(url, "POST", `/counters/acks?ack=${ack}`, { delta: 1 })).status).toBe(200);
    expect((await call(url, "GET", "/counters/acks")).json).toEqual({ key: "acks", value: 3 });
  });

  it("refuses a garbage X-Geokv-Token on a write, and an unapplied one after the wait", async () => {
    await runCases([
      jsonCase("garbage token", "PUT", "/kv/k", '"changed"', 400, "bad_request", { ...JSON_CT, "x-geokv-token": "garbage" }),
      jsonCase("unapplied token", "PUT", "/kv/k", '"changed"', 503, "stale_replica", { ...JSON_CT, "x-geokv-token": "t-1:999999" }),
      jsonCase("unapplied token, counter", "POST", "/counters/c", '{"delta":1}', 503, "stale_replica", { ...JSON_CT, "x-geokv-token": "t-1:999999" }),
    ]);
  });
});

describe("unknown routes and methods", () => {
  it("answers 404 not_found in the JSON error shape", async () => {
    const routes: Array<[string, string]> = [
      ["GET", "/nope"],
      ["GET", "/kv2/x"],
      ["GET", "/KV/k"],
      ["POST", "/kv"],
      ["POST", "/kv/k"],
      ["PATCH", "/kv/k"],
      ["OPTIONS", "/kv/k"],
      ["PUT", "/counters/c"],
      ["DELETE", "/counters/c"],
      ["PUT", "/sets/s"],
      ["DELETE", "/sets/s"],
      ["PUT", "/docs/d"],
      ["DELETE", "/docs/d"],
      ["POST", "/docs/d"],
      ["POST", "/docs/d/update"],
      ["POST", "/docs/updates"],
      ["PUT", "/status"],
      ["POST", "/health"],
      ["DELETE", "/conflicts"],
      ["GET", "/%FF"],
      ["GET", "/kv%2Fk"],
    ];
    const cases: Case[] = routes.map(([method, path]) => ({ name: `${method} ${path}`, method, path, req: method === "GET" || method === "OPTIONS" ? {} : { headers: JSON_CT, body: "1" }, status: 404, code: "not_found" }));
    cases.push({ name: "HEAD /nope", method: "HEAD", path: "/nope", status: 404, code: "not_found" });
    await runCases(cases);
  });
});

describe("refused requests leave no trace", () => {
  it("does not consume an Idempotency-Key on a refused request", async () => {
    const h = { "idempotency-key": "refused-first" };
    await expectRefused(jsonCase("bad delta with a key", "POST", "/counters/c", '{"delta":1.5}', 400, "bad_request", { ...JSON_CT, ...h }));
    await expectRefused(jsonCase("bad ack with a key", "POST", "/counters/c?ack=x", '{"delta":3}', 400, "bad_request", { ...JSON_CT, ...h }));
    const ok = await callJson(url, "POST", "/counters/c", { delta: 3 }, h);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json).toMatchObject({ value: 45 });
  });

  it("keeps serving after all of the above", async () => {
    expect((await call(url, "GET", "/health")).status).toBe(200);
    expect((await call(url, "GET", "/kv/k")).json).toMatchObject({ value: { a: 1 } });
    expect((await call(url, "GET", "/sets/s")).json).toEqual({ key: "s", members: ["a", "b"] });
    const d = new Y.Doc();
    Y.applyUpdate(d, (await call(url, "GET", "/docs/d")).bytes);
    expect(d.getText("t").toString()).toBe("doc text");
  });
});

describe("message content", () => {
  it("says what is wrong", async () => {
    const a = await callJson(url, "POST", "/counters/c", { delta: 1.5 });
    expect((a.json as { error: { message: string } }).error.message).toMatch(/delta/);
    const b = await call(url, "GET", `/kv/${"k".repeat(1025)}`);
    expect((b.json as { error: { message: string } }).error.message).toMatch(/1025 bytes/);
    expect(errorCode(b)).toBe("invalid_key");
  });
});
