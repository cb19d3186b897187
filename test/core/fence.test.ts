// Fencing tokens and the rules around them: one format and one parse, which
// batches a node takes, which pings teach a region's epoch (only an active
// leader's), and how a sender backs off from a refusal instead of looping.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { advanceKnownEpoch, epochLearnedFromPing, fencingTokenOf, formatFencingToken, judgeBatch, parseFencingToken } from "../../src/core/fence.js";
import type { RegionId } from "../../src/core/ids.js";
import {
  REFUSAL_BACKOFF_MAX_MS,
  REFUSAL_BACKOFF_MIN_MS,
  markSent,
  mayPush,
  onAck,
  onRefused,
  planSend,
  sendStateFrom,
} from "../../src/core/replication/decisions.js";

describe("fencing tokens", () => {
  it("format and parse are inverse, and garbage parses to null", () => {
    fc.assert(
      fc.property(fc.constantFrom("us-east", "eu-west", "r.1_x") as fc.Arbitrary<RegionId>, fc.integer({ min: 0, max: 10 ** 15 - 1 }), (region, epoch) => {
        const text = formatFencingToken(fencingTokenOf(region, epoch));
        expect(text).toBe(`${region}:${epoch}`);
        expect(parseFencingToken(text)).toEqual({ region, epoch });
      }),
    );
    for (const bad of ["", "us-east", "us-east:", ":3", "us-east:-1", "us-east:1.5", "us east:1", "a:b:1", "us-east:9999999999999999", "us-east:0x1"]) {
      expect(parseFencingToken(bad), bad).toBeNull();
    }
    expect(() => fencingTokenOf("us-east" as RegionId, -1)).toThrow(/epoch/);
    expect(() => fencingTokenOf("us-east" as RegionId, 1.5)).toThrow(/epoch/);
  });

  it("a batch is taken at or above the known epoch, refused below it, dropped when malformed or from another region", () => {
    expect(judgeBatch("", "us-east", 5)).toEqual({ kind: "unfenced" });
    expect(judgeBatch("us-east:5", "us-east", 5)).toEqual({ kind: "accept", epoch: 5 });
    expect(judgeBatch("us-east:6", "us-east", 5)).toEqual({ kind: "accept", epoch: 6 });
    expect(judgeBatch("us-east:4", "us-east", 5)).toEqual({ kind: "stale", epoch: 4, knownEpoch: 5 });
    expect(judgeBatch("eu-west:9", "us-east", 5)).toEqual({ kind: "malformed" });
    expect(judgeBatch("us-east:x", "us-east", 5)).toEqual({ kind: "malformed" });
  });

  it("only an active leader's ping moves the known epoch, and only forward", () => {
    expect(epochLearnedFromPing("candidate", 9)).toBeNull();
    expect(epochLearnedFromPing("follower", 9)).toBeNull();
    expect(epochLearnedFromPing("leader", 9)).toBe(9);
    // A candidate cut off from its region pings ever higher epochs: none of them is learned.
    let known = advanceKnownEpoch(0, epochLearnedFromPing("leader", 2));
    for (let e = 3; e <= 20; e++) known = advanceKnownEpoch(known, epochLearnedFromPing("candidate", e));
    expect(known).toBe(2);
    expect(advanceKnownEpoch(7, epochLearnedFromPing("leader", 3))).toBe(7);
  });
});

describe("a refused sender backs off", () => {
  const fence = "us-east:2";

  it("resyncs from the refuser's vector, waits, doubles the wait up to a bound, and tries a new fence at once", () => {
    let s = sendStateFrom({});
    s = markSent(s, { a: 512 }).state;
    s = markSent(s, { a: 1024 }).state;
    expect(planSend(s, { a: 2000 }, 1024)).toEqual([]); // window full
    s = onRefused(s, { a: 10 }, fence, 1000);
    expect(s.sent).toEqual({ a: 10 });
    expect(s.inflight.size).toBe(0);
    expect(mayPush(s, fence, 1000 + REFUSAL_BACKOFF_MIN_MS - 1)).toBe(false);
    expect(mayPush(s, fence, 1000 + REFUSAL_BACKOFF_MIN_MS)).toBe(true);
    // The refusal of the second batch, already on the wire, changes nothing.
    expect(onRefused(s, { a: 10 }, fence, 1001)).toBe(s);
    // Refused again after the wait: twice as long, up to the max.
    let at = 1000 + REFUSAL_BACKOFF_MIN_MS;
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      s = onRefused(s, { a: 10 }, fence, at);
      waits.push((s.refused?.untilMs ?? 0) - at);
      at = s.refused?.untilMs ?? at;
    }
    expect(waits.slice(0, 3)).toEqual([2 * REFUSAL_BACKOFF_MIN_MS, 4 * REFUSAL_BACKOFF_MIN_MS, 8 * REFUSAL_BACKOFF_MIN_MS]);
    expect(Math.max(...waits)).toBe(REFUSAL_BACKOFF_MAX_MS);
    // A new epoch (a new fence) is not held back by the old refusal.
    expect(mayPush(s, "us-east:3", at - 1)).toBe(true);
    // An ack ends the refusal.
    s = onAck(markSent(s, { a: 11 }).state, s.nextBatch, { a: 11 });
    expect(s.refused).toBeNull();
    expect(mayPush(s, fence, 0)).toBe(true);
  });

  it("costs at most one window per backoff period, whatever the refusals' timing", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 200 }), (gaps) => {
        // A peer that refuses every batch, answering after each gap; the sender pushes whenever it may.
        let s = sendStateFrom({});
        let now = 0;
        let windowsSent = 0;
        for (const gap of gaps) {
          now += gap;
          if (mayPush(s, fence, now) && planSend(s, { a: 100_000 }, 1024).length > 0) {
            s = markSent(s, { a: (s.sent["a"] ?? 0) + 1024 }).state;
            windowsSent++;
          }
          s = onRefused(s, {}, fence, now);
        }
        // The first window, then one per elapsed backoff (each at least the minimum).
        expect(windowsSent).toBeLessThanOrEqual(1 + Math.floor(now / REFUSAL_BACKOFF_MIN_MS));
      }),
    );
  });
});
