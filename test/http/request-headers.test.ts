// Request headers as the node reads them: the HTTP layer reads them from
// Node's raw header list rather than through a web Headers object, and must
// read them exactly as Headers would (repeated fields joined with ", "), not
// as Node's parsed `headers` does (it keeps only the first Content-Type or
// Authorization). fetch cannot send a header twice, so these go through
// node:http with header arrays.

import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startTestNode, type TestNode } from "./helpers.js";

let n: TestNode;
beforeAll(async () => {
  n = await startTestNode();
});
afterAll(async () => {
  await n.close();
});

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly json: unknown;
}

/** One request whose header values may be arrays (one field line per element). */
function send(method: string, path: string, headers: Record<string, string | string[]>, body?: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(`${n.url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text.length > 0 ? (JSON.parse(text) as unknown) : undefined });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("request headers", () => {
  it("refuses a Content-Type sent twice, as the joined value is no media type", async () => {
    const a = await send("PUT", "/kv/twice?ack=local", { "content-type": ["application/json", "application/json"] }, '"v"');
    expect(a.status).toBe(400);
    expect(a.json).toMatchObject({ error: { code: "bad_request" } });
    expect((await call(n.url, "GET", "/kv/twice")).status).toBe(404);
  });

  it("joins an Idempotency-Key sent twice into one key, which a retry with the joined value replays", async () => {
    const first = await send("PUT", "/kv/idem-twice?ack=local", { "content-type": "application/json", "idempotency-key": ["a", "b"] }, '"v"');
    expect(first.status).toBe(200);
    const retry = await send("PUT", "/kv/idem-twice?ack=local", { "content-type": "application/json", "idempotency-key": "a, b" }, '"v"');
    expect(retry.status).toBe(200);
    expect(retry.headers["idempotent-replayed"]).toBe("true");
    expect(retry.headers["x-geokv-token"]).toBe(first.headers["x-geokv-token"]);
  });

  it("echoes X-Request-Id (joined when repeated) and names the node on every answer", async () => {
    const one = await send("GET", "/kv/none", { "x-request-id": "req-1" });
    expect(one.status).toBe(404);
    expect(one.headers["x-request-id"]).toBe("req-1");
    expect(one.headers["x-geokv-node"]).toBe(n.nodeId);
    const two = await send("GET", "/health", { "x-request-id": ["req-1", "req-2"] });
    expect(two.headers["x-request-id"]).toBe("req-1, req-2");
    expect(two.headers["x-geokv-node"]).toBe(n.nodeId);
    // A generated one when none is sent: a UUID, as before.
    const put = await send("PUT", "/kv/gen?ack=local", { "content-type": "application/json" }, "1");
    expect(put.headers["x-request-id"]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(put.headers["x-geokv-node"]).toBe(n.nodeId);
    expect(put.headers["content-type"]).toBe("application/json");
  });
});
