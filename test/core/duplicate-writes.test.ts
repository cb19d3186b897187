// The order that decides which copy of a twice-executed write counts: total,
// antisymmetric, and the same on every replica.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { copyLoses, type WriteCopy } from "../../src/core/duplicate-writes.js";

const copy: fc.Arbitrary<WriteCopy> = fc.record({
  hlc: fc.record({ wallMs: fc.integer({ min: 0, max: 5 }), logical: fc.integer({ min: 0, max: 3 }) }),
  origin: fc.constantFrom("r-1", "r-2", "r-3"),
  seq: fc.integer({ min: 1, max: 4 }),
});

describe("which copy of a duplicated write loses", () => {
  it("the later HLC loses, whatever the origin", () => {
    expect(copyLoses({ hlc: { wallMs: 2, logical: 0 }, origin: "a", seq: 1 }, { hlc: { wallMs: 1, logical: 9 }, origin: "z", seq: 9 })).toBe(true);
  });
  it("exactly one of two distinct copies loses (so exactly one node compensates)", () => {
    fc.assert(
      fc.property(copy, copy, (a, b) => {
        const same = a.hlc.wallMs === b.hlc.wallMs && a.hlc.logical === b.hlc.logical && a.origin === b.origin && a.seq === b.seq;
        if (same) expect(copyLoses(a, b)).toBe(false);
        else expect(Number(copyLoses(a, b)) + Number(copyLoses(b, a))).toBe(1);
      }),
    );
  });
  it("is transitive", () => {
    fc.assert(fc.property(copy, copy, copy, (a, b, c) => {
      if (copyLoses(a, b) && copyLoses(b, c)) expect(copyLoses(a, c)).toBe(true);
    }));
  });
});
