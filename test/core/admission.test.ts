// Admission (src/core/admission.ts): a bound lets in exactly what fits, sheds
// the rest with its unit and limit named, and never refuses a request that
// is larger than the whole bound when nothing else is queued.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { admit, BOUND_NAMES, SHED_RETRY_AFTER_S, shedMessage } from "../../src/core/admission.js";

describe("admit", () => {
  it("admits while the bound has room, sheds past it with Retry-After", () => {
    expect(admit("inflightRequests", 0, 2)).toBeNull();
    expect(admit("inflightRequests", 1, 2)).toBeNull();
    const shed = admit("inflightRequests", 2, 2);
    expect(shed).toEqual({ bound: "inflightRequests", held: 2, max: 2, retryAfterS: SHED_RETRY_AFTER_S });
    expect(shedMessage(shed as NonNullable<typeof shed>)).toBe("overloaded: 2 requests in flight of at most 2; retry after 1 s");
  });

  it("counts what a request adds, and lets one larger than the bound into an empty queue only", () => {
    expect(admit("pendingWriteOps", 3, 4, 2)).not.toBeNull();
    expect(admit("pendingWriteOps", 2, 4, 2)).toBeNull();
    expect(admit("pendingWriteOps", 0, 4, 10)).toBeNull();
    expect(admit("pendingWriteOps", 1, 4, 10)).not.toBeNull();
  });

  it("never holds more than the bound plus one oversized request, for any bound and sequence", () => {
    fc.assert(
      fc.property(fc.constantFrom(...BOUND_NAMES), fc.integer({ min: 1, max: 50 }), fc.array(fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant(-1))), (bound, max, steps) => {
        const held: number[] = [];
        let total = 0;
        for (const s of steps) {
          if (s < 0) {
            total -= held.shift() ?? 0;
            continue;
          }
          if (admit(bound, total, max, s) === null) {
            held.push(s);
            total += s;
          }
          // Within the bound, or a single request that was let into an empty queue.
          expect(total <= max || held.length === 1).toBe(true);
        }
      }),
    );
  });
});
