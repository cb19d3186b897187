// Fuzzes one real node over HTTP: thousands of random requests (methods,
// valid routes and junk paths with percent-encoding junk, random headers and
// bodies) sent with fetch. No answer may be a 5xx (except stale_replica for a
// request that named an unapplied write), every answer carries X-Geokv-Node
// and errors have the contract's shape, the node stays up, and data written
// before the run under keys the generator can never name is unchanged.
// fast-check prints the seed and path of a failure; FC_SEED/FC_PATH replay it.

import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { statusOf } from "../../src/http/errors.js";
import type { ErrorCode } from "../../src/node/errors.js";
import { byteOrder, call, callJson, enc, errorCode, listAllKv, startTestNode, type TestNode } from "./helpers.js";

const RUNS = 2000;
const MAX_VALUE_BYTES = 4096;
const TOKEN_WAIT_MS = 20;
const REQUEST_TIMEOUT_MS = 10_000;
/** Keys of the data written before the run; the generator never produces this text. */
const FIXED = "fixed::";

let n: TestNode;
let url: string;

beforeAll(async () => {
  // With an admin token the fuzzer's /leadership/stepdown and /admin/faults
  // calls are refused (401/403) instead of making the one-node region
  // leaderless for a while, which would rightly answer writes 503 no_leader.
  n = await startTestNode({ flags: { "max-value-bytes": String(MAX_VALUE_BYTES), "write-wait-ms": String(TOKEN_WAIT_MS) }, env: { GEOKV_ADMIN_TOKEN: "fuzz-admin-token-not-guessable" } });
  url = n.url;
});

afterAll(async () => {
  await n?.close();
});

function docUpdate(text: string, clientID?: number): Uint8Array {
  const d = new Y.Doc();
  if (clientID !== undefined) d.clientID = clientID;
  d.getText("t").insert(0, text);
  d.getMap("m").set("k", text.length);
  return Y.encodeStateAsUpdate(d);
}

/** Decodes every decodable %XX run, leaving the rest: what any server-side decoding could see. */
function looseDecode(s: string): string {
  return s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (m) => {
    try {
      return decodeURIComponent(m);
    } catch {
      return m;
    }
  });
}

function safeEncode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return "%ED%A0%80";
  }
}

// ---- arbitraries -------------------------------------------------------

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });

const percentJunk = fc.constantFrom("%", "%%", "%G1", "%2", "%FF", "%FE%FF", "%C0%AF", "%ED%A0%80", "%ED%B0%80", "%E2%82", "%00", "%2F", "%2f", "%25", "%2e%2e", "%20", "+", "..", ".", "//", ";", ",", "~", "'", "*");

const keySegment = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }).map(safeEncode) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 8 }).map(safeEncode) },
  { weight: 3, arbitrary: fc.constantFrom("a", "b", "k1", "k2", "ü", "😀", "a%2Fb", "with%20space", "x".repeat(1024), "x".repeat(1025), "") },
  { weight: 3, arbitrary: fc.array(fc.oneof(percentJunk, fc.constantFrom("a", "b", "é", "/")), { minLength: 1, maxLength: 6 }).map((p) => p.join("")) },
);

const knownPath = fc.constantFrom("/kv", "/kv/", "/conflicts", "/status", "/health", "/ready", "/metrics", "/", "/admin/faults", "/leadership/stepdown", "/leadership/promote", "/fence-token/validate", "/yjs/room", "/counters", "/sets/", "/docs", "/docs//updates");

const keyedPath = fc
  .tuple(fc.constantFrom("/kv/", "/counters/", "/sets/", "/docs/", "/KV/", "/kv//"), keySegment, fc.constantFrom("", "", "", "/updates", "/updates", "/", "/x", "/updates/x"))
  .map(([a, b, c]) => a + b + c);

const junkPath = fc.array(fc.oneof(percentJunk, printable.map((s) => s.replace(/[#?]/g, "")), fc.string({ unit: "grapheme", maxLength: 6 })), { maxLength: 6 }).map((parts) => `/${parts.join("")}`);

const queryValue = fc.oneof(
  fc.constantFrom("", "0", "1", "-1", "2", "1000", "1001", "1.5", "abc", "1e3", "local", "region", "all", "ALL", "AAAA", "AA==", "/w==", "AQ==", "%FF", "%ED%A0%80", "a+b", "k", "ü", "%2F"),
  printable.map(safeEncode),
);

const query = fc.option(
  fc.array(fc.tuple(fc.constantFrom("prefix", "after", "limit", "sv", "ack", "x", "", "limit%00", "sv%FF"), queryValue), { minLength: 1, maxLength: 4 }).map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join("&")}`),
  { nil: "" },
);

const path = fc
  .tuple(fc.oneof({ weight: 6, arbitrary: keyedPath }, { weight: 2, arbitrary: knownPath }, { weight: 2, arbitrary: junkPath }), query)
  .map(([p, q]) => p + q)
  // The generator must never address the data written before the run.
  .filter((p) => !looseDecode(p.split("?")[0] as string).includes("fixed"));

const method = fc.constantFrom("GET", "GET", "PUT", "PUT", "POST", "POST", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS");

const VALID_DOC_UPDATES = ["hello", "ü 😀", "", "x".repeat(50)].map((t, i) => docUpdate(t, 1000 + i));

const body = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 3, arbitrary: fc.json({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 60 }) },
  { weight: 3, arbitrary: fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(-Number.MAX_SAFE_INTEGER), fc.double(), fc.constant(2 ** 60), fc.string({ maxLength: 3 })).map((d) => JSON.stringify({ delta: d })) },
  {
    weight: 3,
    arbitrary: fc
      .record({ add: fc.array(fc.oneof(fc.string({ unit: "grapheme", maxLength: 6 }), fc.integer()), { maxLength: 5 }), remove: fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }) }, { requiredKeys: [] })
      .map((r) => JSON.stringify(r)),
  },
  { weight: 2, arbitrary: fc.constantFrom(...VALID_DOC_UPDATES) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(...VALID_DOC_UPDATES), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
      .map(([u, flips]) => {
        const m = u.slice();
        for (const [at, byte] of flips) m[at % m.length] = byte;
        return m;
      }),
  },
  { weight: 1, arbitrary: fc.constant("x".repeat(MAX_VALUE_BYTES + 1)) },
  { weight: 1, arbitrary: fc.constantFrom("", "{", "null", "[]", '{"delta":1}', '{"add":["a"]}', '"v"') },
);

const headers = fc.record(
  {
    "content-type": fc.constantFrom("application/json", "application/json", "application/octet-stream", "application/octet-stream", "text/plain", "", "application/json; charset=utf-8", "APPLICATION/JSON", "garbage", "multipart/form-data; boundary=x"),
    "x-geokv-token": fc.oneof(fc.constantFrom("t-1:1", "t-1:2", "t-1:999999", "other-node:1", "garbage", "", "t-1:0", "t-1:99999999999999999", ":"), printable),
    "idempotency-key": fc.oneof(fc.constantFrom("idem-1", "idem-2", "idem-3", "", "i".repeat(257)), printable),
    authorization: fc.constantFrom("Bearer x", "Basic eA==", ""),
    accept: fc.constantFrom("*/*", "application/json", "text/html"),
    "x-request-id": printable,
  },
  { requiredKeys: [] },
);

interface FuzzRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string | Uint8Array | unknown;
}

/** Anything at all: most of it is refused, which is the point. */
const chaosRequest: fc.Arbitrary<FuzzRequest> = fc.record({ method, path, headers, body });

/** Keys the well-formed requests share, so that reads find what writes wrote. */
const liveKey = fc.constantFrom("a", "b", "k1", "ü", "😀 x", "a/b", " ", "__proto__").map(encodeURIComponent);

const goodHeaders = fc.record(
  {
    "idempotency-key": fc.oneof(fc.constantFrom("idem-1", "idem-2"), fc.uuid()),
    "x-geokv-token": fc.constantFrom("t-1:1", "t-1:2"),
    "x-request-id": printable,
  },
  { requiredKeys: [] },
);

/** Well-formed requests (with a little noise in their headers), so the write and read paths run too. */
const wellFormedRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  fc.tuple(liveKey, fc.json({ maxDepth: 3 }), goodHeaders).map(([k, v, h]) => ({ method: "PUT", path: `/kv/${k}`, headers: { ...h, "content-type": "application/json" }, body: v })),
  fc.tuple(liveKey, goodHeaders).map(([k, h]) => ({ method: "DELETE", path: `/kv/${k}`, headers: h, body: undefined })),
  fc.tuple(liveKey, fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER)), goodHeaders).map(([k, d, h]) => ({ method: "POST", path: `/counters/${k}`, headers: { ...h, "content-type": "application/json" }, body: JSON.stringify({ delta: d }) })),
  fc
    .tuple(liveKey, fc.array(fc.string({ unit: "grapheme", maxLength: 4 }), { maxLength: 4 }), fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }), goodHeaders)
    .map(([k, add, remove, h]) => ({ method: "POST", path: `/sets/${k}`, headers: { ...h, "content-type": "application/json" }, body: JSON.stringify({ add: [...add, "x"], remove }) })),
  fc.tuple(liveKey, fc.constantFrom(...VALID_DOC_UPDATES), goodHeaders).map(([k, u, h]) => ({ method: "POST", path: `/docs/${k}/updates`, headers: { ...h, "content-type": "application/octet-stream" }, body: u })),
  fc
    .tuple(fc.constantFrom("/kv/", "/counters/", "/sets/", "/docs/"), liveKey, fc.boolean())
    .map(([ns, k, withToken]): FuzzRequest => ({ method: "GET", path: `${ns}${k}`, headers: withToken ? { "x-geokv-token": "t-1:1" } : {}, body: undefined })),
  fc.tuple(fc.option(liveKey, { nil: undefined }), fc.option(liveKey, { nil: undefined }), fc.integer({ min: 1, max: 5 })).map(([p, a, l]) => ({
    method: "GET",
    path: `/kv?limit=${l}${p === undefined ? "" : `&prefix=${p}`}${a === undefined ? "" : `&after=${a}`}`,
    headers: {},
    body: undefined,
  })),
);

const request: fc.Arbitrary<FuzzRequest> = fc.oneof({ weight: 6, arbitrary: chaosRequest }, { weight: 4, arbitrary: wellFormedRequest }).map((r) => {
  // fetch refuses a body on GET and HEAD.
  const noBody = r.method === "GET" || r.method === "HEAD";
  return { ...r, body: noBody ? undefined : r.body };
});

function bodyInit(b: unknown): string | Uint8Array | undefined {
  if (b === undefined) return undefined;
  if (b instanceof Uint8Array || typeof b === "string") return b;
  return JSON.stringify(b);
}

const KNOWN_CODES = new Set<string>(["bad_request", "invalid_key", "unauthorized", "forbidden", "not_found", "idempotency_mismatch", "value_too_large", "no_leader", "stale_replica", "clock_skew", "refused"]);

// ---- the run -------------------------------------------------------------

interface FixedState {
  kv: unknown[];
  kvItems: unknown;
  counter: unknown;
  set: unknown;
  doc: string;
  docText: string;
}

const FIXED_KV: Array<[string, unknown]> = [
  [`${FIXED}a`, { x: 1, nested: [true, null, "s"] }],
  [`${FIXED}b/c`, [1, 2, 3]],
  [`${FIXED}ü 😀`, "text"],
  [`${FIXED}null`, null],
];

async function fixedState(): Promise<FixedState> {
  const kv: unknown[] = [];
  for (const [k] of FIXED_KV) {
    const a = await call(url, "GET", `/kv/${enc(k)}`);
    kv.push([a.status, a.json]);
  }
  const doc = await call(url, "GET", `/docs/${enc(`${FIXED}doc`)}`);
  const d = new Y.Doc();
  Y.applyUpdate(d, doc.bytes);
  return {
    kv,
    kvItems: (await call(url, "GET", `/kv?${new URLSearchParams({ prefix: FIXED })}`)).json,
    counter: (await call(url, "GET", `/counters/${enc(`${FIXED}cnt`)}`)).json,
    set: (await call(url, "GET", `/sets/${enc(`${FIXED}set`)}`)).json,
    doc: Buffer.from(doc.bytes).toString("base64"),
    docText: d.getText("t").toString(),
  };
}

describe("HTTP fuzz", () => {
  it(`survives ${RUNS} random requests with no 5xx and leaves earlier data alone`, async () => {
    for (const [k, v] of FIXED_KV) expect((await callJson(url, "PUT", `/kv/${enc(k)}`, v)).status).toBe(200);
    expect((await callJson(url, "POST", `/counters/${enc(`${FIXED}cnt`)}`, { delta: 17 })).status).toBe(200);
    expect((await callJson(url, "POST", `/counters/${enc(`${FIXED}cnt`)}`, { delta: -2 })).status).toBe(200);
    expect((await callJson(url, "POST", `/sets/${enc(`${FIXED}set`)}`, { add: ["m1", "m2", "m3"] })).status).toBe(200);
    expect((await callJson(url, "POST", `/sets/${enc(`${FIXED}set`)}`, { remove: ["m3"] })).status).toBe(200);
    const fixedDoc = await call(url, "POST", `/docs/${enc(`${FIXED}doc`)}/updates`, { headers: { "content-type": "application/octet-stream" }, body: docUpdate("fixed doc", 7) });
    expect(fixedDoc.status).toBe(200);
    const before = await fixedState();
    expect(before.counter).toEqual({ key: `${FIXED}cnt`, value: 15 });
    expect(before.set).toEqual({ key: `${FIXED}set`, members: ["m1", "m2"] });
    expect(before.docText).toBe("fixed doc");
    expect((before.kvItems as { items: unknown[] }).items).toHaveLength(FIXED_KV.length);

    const statuses = new Map<number, number>();
    let writesAcked = 0;

    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const init = bodyInit(r.body);
        const res = await fetch(url + r.path, {
          method: r.method,
          headers: r.headers,
          ...(init === undefined ? {} : { body: init }),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        const bytes = new Uint8Array(await res.arrayBuffer());
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.headers.get("x-geokv-token") !== null) writesAcked++;
        const what = `${r.method} ${r.path} -> ${res.status} ${Buffer.from(bytes).toString("utf8").slice(0, 300)}`;

        expect(res.headers.get("x-geokv-node"), what).toBe("t-1");
        if (res.status >= 400 && r.method !== "HEAD") {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.from(bytes).toString("utf8"));
          } catch {
            parsed = undefined;
          }
          const code = errorCode({ status: res.status, headers: res.headers, bytes, text: "", json: parsed });
          expect(code, what).toBeDefined();
          expect(KNOWN_CODES.has(code as string), what).toBe(true);
          expect(statusOf(code as ErrorCode), what).toBe(res.status);
        }
        if (res.status >= 500) {
          // The one 5xx a healthy single node gives: a request that named a
          // write this node has not applied (its own far-future seq, or another node's).
          const token = r.headers["x-geokv-token"] ?? "";
          const unapplied = /^(t-1:\d{6,}|[A-Za-z0-9][A-Za-z0-9._-]*:\d+)$/.test(token) && !/^t-1:[12]$/.test(token);
          expect(res.status, what).toBe(503);
          expect(unapplied, `${what} (token ${JSON.stringify(token)})`).toBe(true);
          expect(res.headers.get("retry-after"), what).not.toBeNull();
        }
      }),
      { numRuns: RUNS },
    );

    // The node is up and serves everything it holds.
    expect((await call(url, "GET", "/health")).status).toBe(200);
    expect((await call(url, "GET", "/ready")).status).toBe(200);
    expect((await call(url, "GET", "/status")).status).toBe(200);
    const all = await listAllKv(url, 50);
    const keys = all.map((i) => i.key);
    expect(keys).toEqual([...keys].sort(byteOrder));
    expect(new Set(keys).size).toBe(keys.length);
    expect((await call(url, "GET", "/conflicts")).json).toEqual({ items: [] });

    // The data written before the run is exactly as it was.
    expect(await fixedState()).toEqual(before);

    // The fuzzer reached the write paths, not only the error paths.
    expect(writesAcked, JSON.stringify([...statuses])).toBeGreaterThan(50);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(200);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(200);
    expect(statuses.get(404) ?? 0).toBeGreaterThan(10);
  }, 120_000);
});
