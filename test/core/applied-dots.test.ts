// The applied-dots record decides which incoming ops are duplicates and what
// the node version vector claims. Checked against a plain set-of-dots model:
// any delivery order with any duplicates ends in the same state, the vector
// counts only gap-free prefixes, and the out-of-order set stays bounded.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  addDot,
  admitDot,
  aheadCount,
  appliedFromVv,
  appliedVv,
  emptyApplied,
  hasDot,
  missingBelow,
  type AppliedDots,
  type SeqRange,
} from "../../src/core/applied-dots.js";
import type { NodeId } from "../../src/core/ids.js";
import type { Dot } from "../../src/core/op.js";
import { normalizeVv } from "../../src/core/version-vector.js";

const ORIGINS = ["a", "b", "c"] as const;
const MAX_SEQ = 24;

const dot = (origin: string, seq: number): Dot => ({ origin: origin as NodeId, seq });

const dotArb: fc.Arbitrary<Dot> = fc.record({ origin: fc.constantFrom(...ORIGINS), seq: fc.integer({ min: 1, max: MAX_SEQ }) }).map((d) => dot(d.origin, d.seq));

/** A delivery: some dots, in any order, some delivered more than once. */
const deliveryArb: fc.Arbitrary<Dot[]> = fc.array(dotArb, { maxLength: 60 }).chain((dots) =>
  fc.tuple(fc.shuffledSubarray(dots, { minLength: dots.length, maxLength: dots.length }), fc.subarray(dots)).map(([shuffled, dups]) => [...shuffled, ...dups]),
);

const keyOf = (d: Dot): string => `${d.origin}:${d.seq}`;

function applyAll(dots: readonly Dot[], start: AppliedDots = emptyApplied()): AppliedDots {
  let s = start;
  for (const d of dots) s = addDot(s, d);
  return s;
}

/** The model: the highest k with 1..k all present. */
function modelContiguous(set: ReadonlySet<string>, origin: string): number {
  let k = 0;
  while (set.has(`${origin}:${k + 1}`)) k++;
  return k;
}

/** The model: ranges of 1..upTo not in the set. */
function modelMissing(set: ReadonlySet<string>, origin: string, upTo: number): SeqRange[] {
  const out: SeqRange[] = [];
  let start = 0;
  for (let s = 1; s <= upTo + 1; s++) {
    const missing = s <= upTo && !set.has(`${origin}:${s}`);
    if (missing && start === 0) start = s;
    if (!missing && start !== 0) {
      out.push({ fromSeq: start, toSeq: s - 1 });
      start = 0;
    }
  }
  return out;
}

describe("applied dots", () => {
  it("matches the set-of-dots model: hasDot, appliedVv and missingBelow", () => {
    fc.assert(
      fc.property(deliveryArb, fc.integer({ min: 0, max: MAX_SEQ + 3 }), (dots, upTo) => {
        const s = applyAll(dots);
        const set = new Set(dots.map(keyOf));
        const vv = appliedVv(s);
        for (const o of ORIGINS) {
          const k = modelContiguous(set, o);
          expect(vv[o] ?? 0).toBe(k);
          expect(missingBelow(s, o, upTo)).toEqual(modelMissing(set, o, upTo));
          const seqs = Array.from({ length: MAX_SEQ + 2 }, (_, i) => i + 1);
          expect(seqs.filter((seq) => hasDot(s, dot(o, seq)))).toEqual(seqs.filter((seq) => set.has(`${o}:${seq}`)));
        }
        // Zero entries never appear: one form per vector.
        expect(vv).toEqual(normalizeVv(vv));
        expect(aheadCount(s)).toBe(set.size - ORIGINS.reduce((n, o) => n + modelContiguous(set, o), 0));
      }),
    );
  });

  it("any delivery order, with any duplicates, gives the same state", () => {
    const pairArb = fc.array(dotArb, { maxLength: 60 }).chain((dots) =>
      fc.tuple(
        fc.constant(dots),
        fc.shuffledSubarray(dots, { minLength: dots.length, maxLength: dots.length }),
        fc.subarray(dots),
      ),
    );
    fc.assert(
      fc.property(pairArb, ([dots, reordered, dups]) => {
        const a = applyAll(dots);
        const b = applyAll([...dups, ...reordered, ...dups]);
        expect(appliedVv(b)).toEqual(appliedVv(a));
        expect(b).toEqual(a);
      }),
    );
  });

  it("a duplicate returns the same object and earlier states are never mutated", () => {
    fc.assert(
      fc.property(deliveryArb, (dots) => {
        let s = emptyApplied();
        for (const d of dots) {
          const before = JSON.stringify(s);
          const next = addDot(s, d);
          expect(JSON.stringify(s)).toBe(before);
          if (hasDot(s, d)) {
            expect(admitDot(s, d)).toBe("duplicate");
            expect(next).toBe(s);
          } else {
            expect(admitDot(s, d)).toBe("new");
            expect(hasDot(next, d)).toBe(true);
          }
          s = next;
        }
      }),
    );
  });

  it("the out-of-order set stays within the window; dots beyond it are refused", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(dotArb, { maxLength: 80 }), (window, dots) => {
        let s = emptyApplied(window);
        for (const d of dots) {
          const base = appliedVv(s)[d.origin] ?? 0;
          const admission = admitDot(s, d);
          if (d.seq <= base) expect(admission).toBe("duplicate");
          else if (d.seq - base > window) {
            expect(admission).toBe("too_far_ahead");
            expect(() => addDot(s, d)).toThrow(/window/);
            continue;
          }
          s = addDot(s, d);
          for (const o of ORIGINS) {
            const top = (appliedVv(s)[o] ?? 0) + window;
            for (const seq of s.ahead[o] ?? []) expect(seq).toBeLessThanOrEqual(top);
            expect((s.ahead[o] ?? []).length).toBeLessThan(window);
          }
        }
      }),
    );
  });

  it("closing a gap absorbs the run above it", () => {
    let s = applyAll([dot("a", 3), dot("a", 4), dot("a", 6), dot("a", 2)]);
    expect(appliedVv(s)).toEqual({});
    expect(missingBelow(s, "a", 7)).toEqual([{ fromSeq: 1, toSeq: 1 }, { fromSeq: 5, toSeq: 5 }, { fromSeq: 7, toSeq: 7 }]);
    s = addDot(s, dot("a", 1));
    expect(appliedVv(s)).toEqual({ a: 4 });
    expect(s.ahead).toEqual({ a: [6] });
    s = addDot(s, dot("a", 5));
    expect(appliedVv(s)).toEqual({ a: 6 });
    expect(s.ahead).toEqual({});
    expect(missingBelow(s, "a", 6)).toEqual([]);
    expect(missingBelow(s, "b", 2)).toEqual([{ fromSeq: 1, toSeq: 2 }]);
    expect(missingBelow(s, "b", 0)).toEqual([]);
  });

  it("appliedFromVv restores a persisted vector with no gaps", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...ORIGINS), fc.nat(30)), dotArb, (vv, d) => {
        const s = appliedFromVv(vv);
        expect(appliedVv(s)).toEqual(normalizeVv(vv));
        expect(hasDot(s, d)).toBe(d.seq <= (vv[d.origin] ?? 0));
      }),
    );
  });

  it("refuses nonsense as a programmer error", () => {
    expect(() => addDot(emptyApplied(), dot("a", 0))).toThrow();
    expect(() => addDot(emptyApplied(), dot("a", 1.5))).toThrow();
    expect(() => emptyApplied(0)).toThrow();
    expect(() => appliedFromVv({ a: -1 })).toThrow();
  });
});
