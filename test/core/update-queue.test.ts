// The live-doc write queue (src/core/docs/update-queue.ts): batching by size
// and delay, the bound while no leader is known, retries after a failed
// write, and as a property: whatever the offers, failures and timings,
// every accepted update is written exactly once, in order, and the queue
// never holds more than its bound.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { emptyQueue, nextStep, offer, written, type UpdateQueueLimits } from "../../src/core/docs/update-queue.js";

const limits: UpdateQueueLimits = { batchBytes: 100, batchDelayMs: 10, queueBytes: 300, retryMs: 50 };
const u = (client: number, n: number) => ({ client, bytes: new Uint8Array(n).fill(client) });

describe("the live-doc write queue", () => {
  it("waits the batch delay from the first update, then writes everything that came meanwhile as one batch", () => {
    const q = emptyQueue();
    expect(offer(q, u(1, 10), 0, limits).accepted).toBe(true);
    expect(offer(q, u(2, 10), 4, limits).accepted).toBe(true);
    expect(nextStep(q, 5, true, limits)).toEqual({ kind: "wait", ms: 5 });
    const step = nextStep(q, 10, true, limits);
    expect(step.kind).toBe("write");
    expect(step.kind === "write" && step.batch.map((b) => b.client)).toEqual([1, 2]);
    // One write at a time: nothing more until it ends.
    offer(q, u(3, 10), 11, limits);
    expect(nextStep(q, 100, true, limits)).toEqual({ kind: "idle" });
    written(q, true, 12, limits);
    expect(q.items.map((i) => i.client)).toEqual([3]);
    expect(q.bytes).toBe(10);
  });

  it("writes at once when a batch's bytes are reached, and a batch never passes batchBytes unless one update alone does", () => {
    const q = emptyQueue();
    for (let i = 0; i < 6; i++) offer(q, u(i, 30), 0, limits);
    const s1 = nextStep(q, 0, true, limits);
    expect(s1.kind === "write" && s1.batch.length).toBe(3);
    written(q, true, 0, limits);
    const big = emptyQueue();
    offer(big, u(9, 250), 0, limits);
    const s2 = nextStep(big, 0, true, limits);
    expect(s2.kind === "write" && s2.batch.length).toBe(1);
  });

  it("holds updates while no leader is known, refuses one past the bound with the reason, and retries a failed write later", () => {
    const q = emptyQueue();
    offer(q, u(1, 200), 0, limits);
    expect(nextStep(q, 1000, false, limits)).toEqual({ kind: "wait", ms: 50 });
    const refused = offer(q, u(2, 150), 1, limits);
    expect(refused).toEqual({ accepted: false, reason: "200 bytes of edits wait to be written (bound 300)" });
    expect(q.bytes).toBe(200);
    const s = nextStep(q, 1000, true, limits);
    expect(s.kind).toBe("write");
    written(q, false, 1000, limits);
    expect(q.items).toHaveLength(1);
    expect(nextStep(q, 1020, true, limits)).toEqual({ kind: "wait", ms: 30 });
    expect(nextStep(q, 1050, true, limits).kind).toBe("write");
  });

  it("property: every accepted update is written exactly once and in order, and the queue stays within its bound", () => {
    const event = fc.oneof(
      fc.record({ t: fc.constant("offer" as const), n: fc.integer({ min: 1, max: 120 }) }),
      fc.record({ t: fc.constant("step" as const), leader: fc.boolean() }),
      fc.record({ t: fc.constant("done" as const), ok: fc.boolean() }),
      fc.record({ t: fc.constant("time" as const), ms: fc.integer({ min: 0, max: 60 }) }),
    );
    fc.assert(
      fc.property(fc.array(event, { maxLength: 120 }), (events) => {
        const q = emptyQueue();
        let now = 0;
        let next = 0;
        const accepted: number[] = [];
        const wrote: number[] = [];
        let inFlight: number[] | null = null;
        const run = (e: (typeof events)[number] | { t: "step"; leader: true } | { t: "done"; ok: true }) => {
          if (e.t === "offer") {
            const id = next++;
            if (offer(q, { client: id, bytes: new Uint8Array(e.n) }, now, limits).accepted) accepted.push(id);
          } else if (e.t === "step") {
            const s = nextStep(q, now, e.leader, limits);
            if (s.kind === "write") {
              expect(inFlight).toBeNull();
              const size = s.batch.reduce((a, b) => a + b.bytes.length, 0);
              expect(s.batch.length === 1 || size <= limits.batchBytes).toBe(true);
              inFlight = s.batch.map((b) => b.client);
            }
          } else if (e.t === "done") {
            if (inFlight === null) return;
            if (e.ok) wrote.push(...inFlight);
            written(q, e.ok, now, limits);
            inFlight = null;
          } else now += e.ms;
          expect(q.bytes).toBeLessThanOrEqual(limits.queueBytes);
          expect(q.bytes).toBe(q.items.reduce((a, b) => a + b.bytes.length, 0));
        };
        for (const e of events) run(e);
        // Then a leader stays and every write succeeds: the queue drains.
        for (let i = 0; i < 1000 && (q.items.length > 0 || inFlight !== null); i++) {
          now += 60;
          run({ t: "step", leader: true });
          run({ t: "done", ok: true });
        }
        expect(q.items).toHaveLength(0);
        expect(wrote).toEqual(accepted);
      }),
    );
  });
});
