// The write-forwarding wait (a write sent while the region has no leader
// waits up to writeWaitMs for one) runs on the monotonic clock: with the
// wall clock stepped back 10 s during the wait, it still ends on time. On
// Date.now it lasted 10 s longer (and a step forward ended it at once).

import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/http/app.js";
import { createMetrics } from "../../src/node/metrics.js";
import type { ClusterService, DataService, FaultService, LeadershipService, WriteRouter } from "../../src/node/service.js";

const WRITE_WAIT_MS = 300;

/** A region with no leader, as the router tells it; changed() resolves after `ms`. */
const leaderless: WriteRouter = {
  route: () => ({ kind: "none", reason: "no leader in this test" }),
  changed: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

afterEach(() => {
  vi.useRealTimers();
});

describe("write forwarding wait", () => {
  it("ends writeWaitMs after it started although the wall clock was stepped back 10 s meanwhile", async () => {
    // Only Date is faked (and runs with real time): timers and performance.now stay real.
    vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
    // The app with its default clock; nothing past the forwarding wait is reached.
    const unused = new Proxy({}, { get: () => () => { throw new Error("not called by this test"); } });
    const app = createApp({
      nodeId: "t-1",
      service: unused as DataService,
      cluster: unused as ClusterService,
      metrics: createMetrics({ storageBytes: () => 0 }, false),
      logger: pino({ level: "silent" }),
      maxValueBytes: 1024,
      tokenWaitMs: 100,
      writeWaitMs: WRITE_WAIT_MS,
      router: leaderless,
      faults: unused as FaultService,
      leadership: unused as LeadershipService,
    });
    const started = performance.now();
    const answer = app.request("/kv/k", { method: "PUT", body: "1", headers: { "content-type": "application/json" } });
    vi.setSystemTime(Date.now() - 10_000);
    const res = await answer;
    const tookMs = performance.now() - started;
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("no_leader");
    expect(tookMs).toBeGreaterThanOrEqual(WRITE_WAIT_MS - 5);
    expect(tookMs).toBeLessThan(WRITE_WAIT_MS + 5_000);
  });
});
