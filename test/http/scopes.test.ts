// Scoped client tokens on a real node (HTTP server, SQLite), every route
// family with each kind of token: the variables' (client, read, admin) and a
// tokens file's (hashed, with scopes and namespaces). A refused write answers
// 403 forbidden and changes nothing: the value and the node's version vector
// are what they were.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import * as Y from "yjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatTokenHash } from "../../src/http/access.js";
import { waitFor } from "../support/cluster-files.js";
import { editor, synced } from "../yjs/support.js";
import { call, callJson, errorCode, startTestNode, statusVv, type Answer, type TestNode } from "./helpers.js";

const RW = "var-client-token";
const RO = "var-read-token";
const ADM = "var-admin-token";
/** From the tokens file. */
const KV_RW = "file-kv-writer";
const READER = "file-reader";
const OPS = "file-ops";
const COUNTERS_W = "file-counters-write-only";
const DOCS_RO = "file-docs-reader";

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

function docUpdate(text: string): Uint8Array {
  const d = new Y.Doc();
  d.getText("t").insert(0, text);
  return Y.encodeStateAsUpdate(d);
}

/** One write per namespace, as [what, send(token)]. */
const WRITES: Array<[string, (url: string, token?: string) => Promise<Answer>]> = [
  ["PUT /kv/k", (u, t) => callJson(u, "PUT", "/kv/k", "changed", t === undefined ? {} : bearer(t))],
  ["DELETE /kv/k", (u, t) => call(u, "DELETE", "/kv/k", { headers: t === undefined ? {} : bearer(t) })],
  ["POST /counters/c", (u, t) => callJson(u, "POST", "/counters/c", { delta: 5 }, t === undefined ? {} : bearer(t))],
  ["POST /sets/s", (u, t) => callJson(u, "POST", "/sets/s", { add: ["changed"], remove: ["m"] }, t === undefined ? {} : bearer(t))],
  ["POST /docs/d/updates", (u, t) => call(u, "POST", "/docs/d/updates", { headers: { "content-type": "application/octet-stream", ...(t === undefined ? {} : bearer(t)) }, body: docUpdate("changed") })],
];

let n: TestNode;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "geokv-scopes-"));
  const file = join(dir, "tokens.json");
  writeFileSync(
    file,
    JSON.stringify([
      { "token-hash": formatTokenHash(KV_RW), scopes: ["read", "write"], namespaces: ["kv"] },
      { "token-hash": formatTokenHash(READER), scopes: ["read"] },
      { "token-hash": formatTokenHash(OPS), scopes: ["admin"] },
      { "token-hash": formatTokenHash(COUNTERS_W), scopes: ["write"], namespaces: ["counters"] },
      { "token-hash": formatTokenHash(DOCS_RO), scopes: ["read"], namespaces: ["docs"] },
    ]),
  );
  n = await startTestNode({ flags: { tokens: file }, env: { GEOKV_CLIENT_TOKEN: RW, GEOKV_READ_TOKEN: RO, GEOKV_ADMIN_TOKEN: ADM } });
  // Something in every namespace, so "unchanged" means something.
  expect((await callJson(n.url, "PUT", "/kv/k", "original", bearer(RW))).status).toBe(200);
  expect((await callJson(n.url, "POST", "/counters/c", { delta: 2 }, bearer(RW))).status).toBe(200);
  expect((await callJson(n.url, "POST", "/sets/s", { add: ["m"] }, bearer(RW))).status).toBe(200);
  expect((await call(n.url, "POST", "/docs/d/updates", { headers: { "content-type": "application/octet-stream", ...bearer(RW) }, body: docUpdate("original") })).status).toBe(200);
});

afterAll(async () => {
  await n?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** What every namespace holds now, read with the client token. */
async function state() {
  const kv = await call(n.url, "GET", "/kv/k", { headers: bearer(RW) });
  const counter = await call(n.url, "GET", "/counters/c", { headers: bearer(RW) });
  const set = await call(n.url, "GET", "/sets/s", { headers: bearer(RW) });
  const doc = await call(n.url, "GET", "/docs/d", { headers: bearer(RW) });
  return { kv: kv.json, counter: counter.json, set: set.json, doc: Buffer.from(doc.bytes).toString("hex"), vv: await statusVv(n.url) };
}

describe("the data API", () => {
  it("a write with a read token answers 403 forbidden and changes nothing (read token, file reader, docs reader)", async () => {
    const before = await state();
    for (const token of [RO, READER, DOCS_RO]) {
      for (const [what, send] of WRITES) {
        const a = await send(n.url, token);
        expect(a.status, `${what} with ${token}`).toBe(403);
        expect(errorCode(a)).toBe("forbidden");
        expect(a.text).not.toContain(token);
      }
    }
    expect(await state()).toEqual(before);
  });

  it("no token answers 401 and a wrong one 403, changing nothing", async () => {
    const before = await state();
    for (const [what, send] of WRITES) {
      expect((await send(n.url)).status, what).toBe(401);
      expect((await send(n.url, "not-a-token")).status, what).toBe(403);
      // The hash in the file is not a token.
      expect((await send(n.url, formatTokenHash(KV_RW))).status, what).toBe(403);
    }
    expect(await state()).toEqual(before);
  });

  it("read tokens read every namespace; the admin tokens read none", async () => {
    for (const token of [RO, READER, RW]) {
      for (const path of ["/kv/k", "/kv?prefix=k", "/counters/c", "/sets/s", "/docs/d", "/conflicts"]) {
        expect((await call(n.url, "GET", path, { headers: bearer(token) })).status, `${path} with ${token}`).toBe(200);
      }
    }
    for (const token of [ADM, OPS]) {
      const a = await call(n.url, "GET", "/kv/k", { headers: bearer(token) });
      expect(a.status).toBe(403);
      expect((a.json as { error: { message: string } }).error.message).toBe("this token lacks the read scope on namespace kv");
    }
  });

  it("a token limited to namespaces works on them and gets 403 on the others, changing nothing there", async () => {
    const before = await state();
    for (const [what, send] of WRITES.filter(([w]) => !w.includes("/kv/"))) {
      const a = await send(n.url, KV_RW);
      expect(a.status, what).toBe(403);
      expect((a.json as { error: { message: string } }).error.message).toMatch(/^this token lacks the write scope on namespace (counters|sets|docs)$/);
    }
    for (const path of ["/counters/c", "/sets/s", "/docs/d"]) expect((await call(n.url, "GET", path, { headers: bearer(KV_RW) })).status, path).toBe(403);
    expect(await state()).toEqual(before);

    expect((await callJson(n.url, "PUT", "/kv/scoped", 1, bearer(KV_RW))).status).toBe(200);
    expect((await call(n.url, "GET", "/kv/scoped", { headers: bearer(KV_RW) })).json).toMatchObject({ value: 1 });
    expect((await call(n.url, "GET", "/conflicts", { headers: bearer(KV_RW) })).status).toBe(200);
  });

  it("a write-only token limited to counters writes them and reads nothing", async () => {
    const a = await callJson(n.url, "POST", "/counters/w", { delta: 3 }, bearer(COUNTERS_W));
    expect(a.status).toBe(200);
    expect((await call(n.url, "GET", "/counters/w", { headers: bearer(COUNTERS_W) })).status).toBe(403);
    expect((await call(n.url, "GET", "/counters/w", { headers: bearer(RO) })).json).toMatchObject({ value: 3 });
    expect((await callJson(n.url, "PUT", "/kv/w", 1, bearer(COUNTERS_W))).status).toBe(403);
  });
});

describe("/metrics", () => {
  it("needs a token that reads (any namespace) or administers", async () => {
    expect((await call(n.url, "GET", "/metrics")).status).toBe(401);
    for (const t of [RO, READER, DOCS_RO, KV_RW, RW, ADM, OPS]) expect((await call(n.url, "GET", "/metrics", { headers: bearer(t) })).status, t).toBe(200);
    expect((await call(n.url, "GET", "/metrics", { headers: bearer(COUNTERS_W) })).status).toBe(403);
  });

  it("is open on a node with no token at all", async () => {
    const open = await startTestNode();
    try {
      expect((await call(open.url, "GET", "/metrics")).status).toBe(200);
    } finally {
      await open.close();
    }
  });
});

describe("/admin and /leadership", () => {
  const ADMIN_CALLS: Array<[string, string, unknown]> = [
    ["POST", "/admin/faults", { clear: true }],
    ["POST", "/admin/compact", {}],
    ["POST", "/leadership/stepdown", {}],
    ["POST", "/leadership/promote", {}],
  ];

  it("need the admin scope: none 401, data tokens 403, admin tokens (variable and file) pass", async () => {
    for (const [method, path, body] of ADMIN_CALLS) {
      expect((await callJson(n.url, method, path, body)).status, path).toBe(401);
      for (const t of [RW, RO, KV_RW, READER]) {
        const a = await callJson(n.url, method, path, body, bearer(t));
        expect(a.status, `${path} with ${t}`).toBe(403);
        expect(errorCode(a)).toBe("forbidden");
      }
    }
    // Not stepdown: it would leave the one-node region leaderless for a while.
    for (const t of [ADM, OPS]) {
      expect((await callJson(n.url, "POST", "/admin/faults", { clear: true }, bearer(t))).status, t).toBe(200);
      expect((await callJson(n.url, "POST", "/admin/compact", {}, bearer(t))).status, t).toBe(200);
      expect([401, 403]).not.toContain((await callJson(n.url, "POST", "/leadership/promote", {}, bearer(t))).status);
    }
  });
});

describe("the dashboard", () => {
  it("serves the page and its snapshot openly, says which tokens its calls need, and guards its controls and key view", async () => {
    expect((await call(n.url, "GET", "/")).status).toBe(200);
    const s = await call(n.url, "GET", "/dashboard/state");
    expect((s.json as { auth: unknown }).auth).toEqual({ admin: true, client: true });
    expect((await callJson(n.url, "POST", "/dashboard/partition", { region: "t", action: "heal" }, bearer(RW))).status).toBe(403);
    expect((await callJson(n.url, "POST", "/dashboard/partition", { region: "t", action: "heal" }, bearer(OPS))).status).toBe(200);
    expect((await call(n.url, "GET", "/dashboard/key/k")).status).toBe(401);
    expect((await call(n.url, "GET", "/dashboard/key/k", { headers: bearer(COUNTERS_W) })).status).toBe(403);
    expect((await call(n.url, "GET", "/dashboard/key/k", { headers: bearer(DOCS_RO) })).status).toBe(403);
    const read = await call(n.url, "GET", "/dashboard/key/k", { headers: bearer(KV_RW) });
    expect(read.status).toBe(200);
    expect(read.json).toEqual({ key: "k", regions: [expect.objectContaining({ region: "t", status: 200 })] });
  });
});

/** The close of a raw /yjs connection. */
function yjsClose(url: string, room: string, token: string): Promise<{ code: number; reason: string }> {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/yjs/${room}?token=${encodeURIComponent(token)}`);
  return new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}

describe("the live documents at /yjs", () => {
  it("refuse a token without read on docs (4403, with the reason) and an unknown one", async () => {
    for (const t of [KV_RW, COUNTERS_W, ADM]) {
      const c = await yjsClose(n.url, "live", t);
      expect(c.code, t).toBe(4403);
      expect(c.reason).toBe("geokv: forbidden: this token lacks the read scope on namespace docs");
    }
    expect((await yjsClose(n.url, "live", "nope")).reason).toBe("geokv: forbidden: wrong client token");
  });

  it("let a docs reader sync and receive, but not write", async () => {
    const writer = editor(n.url, "live", { params: { token: RW } });
    const reader = editor(n.url, "live", { params: { token: DOCS_RO } });
    try {
      await synced(writer);
      await synced(reader);
      reader.text.insert(0, "from the reader ");
      writer.text.insert(0, "from the writer");
      await waitFor("the reader received the writer's edit", () => reader.text.toString().includes("from the writer"));
      const served = async () => {
        const d = new Y.Doc();
        Y.applyUpdate(d, (await call(n.url, "GET", "/docs/live", { headers: bearer(RW) })).bytes);
        return d.getText("t").toString();
      };
      await waitFor("the writer's edit was written", async () => (await served()) === "from the writer");
      // The reader's edit, made first, never reached the store.
      expect(await served()).not.toContain("reader");
    } finally {
      writer.destroy();
      reader.destroy();
    }
  });
});
