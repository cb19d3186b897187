// The leadership endpoints answer exactly as the contract says, whichever
// layer decides: the node returns typed refusals and the HTTP layer maps them
// to statuses in one place. Pins /fence-token/validate (current, stale,
// non-canonical, unknown region, garbage), promote and stepdown refusals, and
// the JSON 404 for an unknown route.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, callJson, startTestNode, type TestNode } from "./helpers.js";

let n: TestNode;

beforeAll(async () => {
  n = await startTestNode();
});
afterAll(async () => {
  await n?.close();
});

async function currentFence(): Promise<string> {
  const s = (await call(n.url, "GET", "/status")).json as { fencingToken: string };
  return s.fencingToken;
}

describe("POST /fence-token/validate", () => {
  it("says whether a token is current and names the current one", async () => {
    const current = await currentFence();
    expect(current).toMatch(/^t:\d+$/);
    const epoch = Number(current.split(":")[1]);
    const ok = await callJson(n.url, "POST", "/fence-token/validate", { token: current });
    expect(ok.status).toBe(200);
    expect(ok.text).toBe(JSON.stringify({ valid: true, current }));
    const stale = await callJson(n.url, "POST", "/fence-token/validate", { token: `t:${epoch - 1}` });
    expect(stale.status).toBe(200);
    expect(stale.json).toEqual({ valid: false, current });
    // The same epoch spelled otherwise is not the token the leader stamps.
    const padded = await callJson(n.url, "POST", "/fence-token/validate", { token: `t:00${epoch}` });
    expect(padded.status).toBe(200);
    expect(padded.json).toEqual({ valid: false, current });
  });

  it("answers 400 bad_request for a token of no region of the cluster, for garbage, and for a body without a token", async () => {
    for (const token of ["nowhere:1", "t", "t:-1", "", 7]) {
      const a = await callJson(n.url, "POST", "/fence-token/validate", { token });
      expect(a.status, JSON.stringify(token)).toBe(400);
      const expected = typeof token === "string" ? `not a fencing token: ${JSON.stringify(token)}; expected "<region>:<epoch>"` : 'body must be {"token": "<region>:<epoch>"}';
      expect(a.json, JSON.stringify(token)).toEqual({ error: { code: "bad_request", message: expected } });
    }
  });
});

describe("leadership refusals", () => {
  it("promote on a region with a live leader is 409 refused with the reason", async () => {
    const a = await call(n.url, "POST", "/leadership/promote");
    expect(a.status).toBe(409);
    expect(a.headers.get("retry-after")).toBeNull();
    const body = a.json as { error: { code: string; message: string } };
    expect(Object.keys(body)).toEqual(["error"]);
    expect(body.error.code).toBe("refused");
    expect(body.error.message.length).toBeGreaterThan(0);
  });
});

describe("unknown routes", () => {
  it("answer 404 not_found in the contract's JSON shape, with X-Geokv-Node", async () => {
    const a = await call(n.url, "GET", "/no/such/route");
    expect(a.status).toBe(404);
    expect(a.headers.get("x-geokv-node")).toBe(n.nodeId);
    expect(a.headers.get("content-type")).toMatch(/^application\/json/);
    expect(a.json).toEqual({ error: { code: "not_found", message: "no route for GET /no/such/route" } });
  });
});
