// The SDK's pure parts, without nodes: backoff bounds (property tests, seeds
// printed by fast-check), Retry-After parsing, mapping error answers to
// codes, and which node a call starts at as the client learns the region.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_BACKOFF, fullJitterDelayMs, retryAfterMs } from "../../src/client/backoff.js";
import { errorFromAnswer, GeokvError, isGeokvError } from "../../src/client/errors.js";
import { NodeSet } from "../../src/client/nodes.js";

describe("fullJitterDelayMs", () => {
  it("stays within [0, min(maxMs, baseMs * 2^attempt)] for any random source value", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), fc.double({ min: -1, max: 2, noNaN: true }), fc.integer({ min: 1, max: 500 }), fc.integer({ min: 1, max: 60_000 }), (attempt, r, baseMs, extraMs) => {
        const policy = { baseMs, maxMs: baseMs + extraMs };
        const d = fullJitterDelayMs(attempt, policy, () => r);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(Math.min(policy.maxMs, baseMs * 2 ** attempt));
        expect(Number.isInteger(d)).toBe(true);
      }),
    );
  });

  it("grows with the attempt until the cap when the random source is at its top", () => {
    const top = () => 0.999999;
    const delays = Array.from({ length: 8 }, (_, a) => fullJitterDelayMs(a, DEFAULT_BACKOFF, top));
    expect(delays).toEqual([49, 99, 199, 399, 799, 999, 999, 999]);
  });
});

describe("retryAfterMs", () => {
  it("reads delay seconds and HTTP dates; ignores what it cannot read", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(retryAfterMs("1", now)).toBe(1000);
    expect(retryAfterMs(" 3 ", now)).toBe(3000);
    expect(retryAfterMs("Thu, 01 Jan 2026 00:00:02 GMT", now)).toBe(2000);
    expect(retryAfterMs("Wed, 31 Dec 2025 23:59:00 GMT", now)).toBe(0);
    expect(retryAfterMs(null, now)).toBeNull();
    expect(retryAfterMs("soon", now)).toBeNull();
    expect(retryAfterMs("-1", now)).toBeNull();
  });
});

describe("errorFromAnswer", () => {
  it("takes the contract's code and message", () => {
    const e = errorFromAnswer(400, '{"error":{"code":"invalid_key","message":"key is empty"}}', "r-1");
    expect(e).toBeInstanceOf(GeokvError);
    expect(isGeokvError(e)).toBe(true);
    expect({ code: e.code, message: e.message, status: e.status, node: e.node }).toEqual({ code: "invalid_key", message: "key is empty", status: 400, node: "r-1" });
  });

  it("knows every code of the contract, refused too (a 409 refusal is not an idempotency mismatch)", () => {
    expect(errorFromAnswer(409, '{"error":{"code":"refused","message":"not the leader"}}', "r-1").code).toBe("refused");
  });

  it("falls back to a code for the status when a proxy answered, with a bounded message", () => {
    expect(errorFromAnswer(404, "<html>nope</html>", null).code).toBe("not_found");
    expect(errorFromAnswer(502, "", null)).toMatchObject({ code: "internal", message: "HTTP 502" });
    expect(errorFromAnswer(418, "teapot", null).code).toBe("bad_request");
    expect(errorFromAnswer(400, '{"error":{"code":"made_up","message":"m"}}', null)).toMatchObject({ code: "bad_request", message: "m" });
    expect(errorFromAnswer(500, "x".repeat(10_000), null).message.length).toBeLessThanOrEqual(300);
  });
});

describe("NodeSet", () => {
  const headers = (h: Record<string, string>) => new Headers(h);

  it("starts at the first URL, then at the node that answered last", () => {
    const s = new NodeSet(["a", "b", "c"]);
    expect(s.first(false)).toBe(0);
    s.unreachable(0);
    expect(s.first(false)).toBe(1);
    s.answered(2, headers({ "x-geokv-node": "n3" }), { usable: true, wroteLocally: false });
    expect(s.first(false)).toBe(2);
    expect(s.next(2)).toBe(0);
  });

  it("sends writes to the leader once its URL is known, exploring unnamed URLs until then", () => {
    const s = new NodeSet(["a", "b", "c"]);
    s.answered(0, headers({ "x-geokv-node": "n1", "x-geokv-leader": "n3" }), { usable: true, wroteLocally: true });
    expect(s.leader()).toBe("n3");
    // n3's URL is unknown: a write tries a URL that has not said who it is.
    expect(s.first(true)).toBe(1);
    s.answered(1, headers({ "x-geokv-node": "n2", "x-geokv-leader": "n3" }), { usable: true, wroteLocally: true });
    expect(s.first(true)).toBe(2);
    s.answered(2, headers({ "x-geokv-node": "n3" }), { usable: true, wroteLocally: true });
    expect(s.first(true)).toBe(2);
    // Reads still go to the node that answered last.
    expect(s.first(false)).toBe(2);
    // A leader that stops answering is skipped until it answers again.
    s.unreachable(2);
    expect(s.first(true)).toBe(0);
  });

  it("a refusal (usable: false) does not move the preferred node", () => {
    const s = new NodeSet(["a", "b"]);
    s.answered(1, headers({ "x-geokv-node": "n2" }), { usable: false, wroteLocally: false });
    expect(s.first(false)).toBe(0);
    expect(s.idOf(1)).toBe("n2");
  });

  it("needs at least one URL", () => {
    expect(() => new NodeSet([])).toThrow(/at least one/);
  });
});
