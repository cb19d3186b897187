// A follower's wait for a leader is measured on the monotonic clock: a wall
// clock stepped back 10 s during the wait neither holds the write 10 s longer
// nor, stepped forward, cuts it short (the clock tests of issue 14 run nodes
// under libfaketime; this pins the forwarding wait itself).

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Hono } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { forwardWrites } from "../../src/http/forward.js";
import type { WriteRouter } from "../../src/node/service.js";

const WAIT_MS = 600;

/** A region without a leader: every route is "none", and a change is only ever the wait running out. */
const leaderless: WriteRouter = {
  route: () => ({ kind: "none", reason: "no leader in this test" }),
  admitWait: () => null,
  changed: (ms) => new Promise((r) => setTimeout(r, ms)),
};

function app(): Hono {
  const a = new Hono();
  a.use("*", forwardWrites({ nodeId: "f-1", router: leaderless, writeWaitMs: WAIT_MS, fetch }));
  a.put("/kv/:key", (c) => c.json({ served: true }));
  return a;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("the forwarding wait for a leader", () => {
  it.each([
    ["back", -10_000],
    ["forward", 10_000],
  ])("ends after writeWaitMs when the wall clock steps %s 10 s during it", async (_dir, stepMs) => {
    // Only Date is faked: timers and performance.now stay real.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const t0 = performance.now();
    const answer = app().request("/kv/a", { method: "PUT", body: "1" });
    setTimeout(() => vi.setSystemTime(Date.now() + stepMs), WAIT_MS / 3);
    const res = await answer;
    const took = performance.now() - t0;
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("no_leader");
    expect(took).toBeGreaterThanOrEqual(WAIT_MS - 50);
    expect(took).toBeLessThan(WAIT_MS + 5000);
  });
});

describe("a forwarded write, timed on the monotonic clock", () => {
  let leader: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => (leader ? leader.close(r) : r(undefined)));
    leader = undefined;
  });

  it("reaches the leader and relays its answer (a fractional budget once made the relay throw: no_leader)", async () => {
    leader = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ from: "leader", forwardedBy: req.headers["x-geokv-forwarded"] })));
    });
    await new Promise<void>((r) => (leader as Server).listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(leader.address() as AddressInfo).port}`;
    const router: WriteRouter = { route: () => ({ kind: "forward", node: "l-1", url }), admitWait: () => null, changed: (ms) => new Promise((r) => setTimeout(r, ms)) };
    const a = new Hono();
    // A clock with fractions, as performance.now gives them.
    let t = 0.25;
    a.use("*", forwardWrites({ nodeId: "f-1", router, writeWaitMs: WAIT_MS, fetch, now: () => (t += 0.5) }));
    const res = await a.request("/kv/a", { method: "PUT", body: "1", headers: { "content-type": "application/json" } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ from: "leader", forwardedBy: "f-1" });
  });
});

