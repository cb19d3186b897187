// Laws of version vectors: dominates is a partial order, compareVv agrees with
// it, and mergeVv is the least upper bound. Replication and kv conflict
// detection are only correct if these hold, including for missing-vs-zero
// entries (a vector from JSON may carry explicit zeros, one from memory not).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compareVv,
  dominates,
  isValidVv,
  mergeVv,
  normalizeVv,
  vvEquals,
  vvGet,
  vvLag,
  vvTotal,
  vvWith,
  type VersionVector,
} from "../../src/core/version-vector.js";

const NODES = ["a", "b", "c", "d"] as const;

// Few nodes and small seqs, so that equal, ordered and concurrent pairs are all common.
// Explicit zeros appear, and (fast-check's default) some vectors have a null prototype.
const vvArb: fc.Arbitrary<VersionVector> = fc.dictionary(fc.constantFrom(...NODES), fc.integer({ min: 0, max: 3 }), { maxKeys: 4 });

/** A vector that dominates `vv`: each entry raised by a random amount. */
const aboveArb = (vv: VersionVector): fc.Arbitrary<VersionVector> =>
  fc.tuple(...NODES.map(() => fc.integer({ min: 0, max: 2 }))).map((bumps) => {
    const out: Record<string, number> = {};
    NODES.forEach((n, i) => {
      const v = vvGet(vv, n) + (bumps[i] as number);
      if (v > 0 || Object.hasOwn(vv, n)) out[n] = v;
    });
    return out;
  });

const entries = (vv: VersionVector): number[] => NODES.map((n) => vvGet(vv, n));

describe("version vectors: partial order", () => {
  it("dominates is reflexive", () => {
    fc.assert(
      fc.property(vvArb, (a) => {
        expect(dominates(a, a)).toBe(true);
        expect(compareVv(a, a)).toBe("equal");
      }),
    );
  });

  it("dominates is antisymmetric (up to missing-vs-zero)", () => {
    fc.assert(
      fc.property(vvArb, vvArb, (a, b) => {
        if (dominates(a, b) && dominates(b, a)) {
          expect(entries(a)).toEqual(entries(b));
          expect(vvEquals(a, b)).toBe(true);
        }
      }),
    );
  });

  it("dominates is transitive", () => {
    const chainArb = vvArb.chain((a) => aboveArb(a).chain((b) => fc.tuple(fc.constant(a), fc.constant(b), aboveArb(b))));
    fc.assert(
      fc.property(fc.oneof(chainArb, fc.tuple(vvArb, vvArb, vvArb)), ([a, b, c]) => {
        if (dominates(b, a) && dominates(c, b)) expect(dominates(c, a)).toBe(true);
      }),
    );
    // The generated chains really are chains, so the implication above is exercised.
    fc.assert(
      fc.property(chainArb, ([a, b, c]) => {
        expect(dominates(b, a) && dominates(c, b) && dominates(c, a)).toBe(true);
      }),
    );
  });

  it("dominates agrees with the entrywise definition", () => {
    fc.assert(
      fc.property(vvArb, vvArb, (a, b) => {
        const ea = entries(a);
        const eb = entries(b);
        expect(dominates(a, b)).toBe(ea.every((x, i) => x >= (eb[i] as number)));
      }),
    );
  });

  it("compareVv is consistent with dominates both ways", () => {
    fc.assert(
      fc.property(vvArb, vvArb, (a, b) => {
        const ab = dominates(a, b);
        const ba = dominates(b, a);
        const expected = ab && ba ? "equal" : ab ? "after" : ba ? "before" : "concurrent";
        expect(compareVv(a, b)).toBe(expected);
      }),
    );
  });

  it("compareVv is antisymmetric and concurrent is symmetric", () => {
    const flip = { before: "after", after: "before", equal: "equal", concurrent: "concurrent" } as const;
    fc.assert(
      fc.property(vvArb, vvArb, (a, b) => {
        expect(compareVv(b, a)).toBe(flip[compareVv(a, b)]);
      }),
    );
  });

  it("a missing entry is the same as 0", () => {
    fc.assert(
      fc.property(vvArb, fc.constantFrom(...NODES), (a, n) => {
        const withZero = Object.hasOwn(a, n) ? a : { ...a, [n]: 0 };
        const without = Object.fromEntries(Object.entries(a).filter(([k]) => k !== n || (a[k] as number) > 0));
        expect(compareVv(withZero, without)).toBe("equal");
        expect(dominates(withZero, without) && dominates(without, withZero)).toBe(true);
        expect(vvEquals(normalizeVv(withZero), normalizeVv(without))).toBe(true);
        expect(normalizeVv(withZero)).toEqual(normalizeVv(without));
      }),
    );
    expect(vvGet({}, "a")).toBe(0);
    expect(compareVv({ a: 0 }, {})).toBe("equal");
    expect(compareVv({}, { a: 0 })).toBe("equal");
    expect(compareVv({ a: 0 }, { b: 1 })).toBe("before");
  });

  it("ordinary pairs", () => {
    expect(compareVv({ a: 1 }, { a: 2 })).toBe("before");
    expect(compareVv({ a: 2, b: 1 }, { a: 2 })).toBe("after");
    expect(compareVv({ a: 2 }, { b: 1 })).toBe("concurrent");
    expect(compareVv({ a: 1, b: 2 }, { a: 2, b: 1 })).toBe("concurrent");
  });
});

describe("version vectors: merge is the least upper bound", () => {
  it("is commutative, associative and idempotent", () => {
    fc.assert(
      fc.property(vvArb, vvArb, vvArb, (a, b, c) => {
        expect(vvEquals(mergeVv(a, b), mergeVv(b, a))).toBe(true);
        expect(vvEquals(mergeVv(mergeVv(a, b), c), mergeVv(a, mergeVv(b, c)))).toBe(true);
        expect(vvEquals(mergeVv(a, a), a)).toBe(true);
        expect(normalizeVv(mergeVv(a, b))).toEqual(normalizeVv(mergeVv(b, a)));
      }),
    );
  });

  it("dominates both inputs, and anything that dominates both dominates it", () => {
    const upperArb = fc.tuple(vvArb, vvArb).chain(([a, b]) => fc.tuple(fc.constant(a), fc.constant(b), aboveArb(mergeVv(a, b))));
    fc.assert(
      fc.property(fc.oneof(upperArb, fc.tuple(vvArb, vvArb, vvArb)), ([a, b, u]) => {
        const m = mergeVv(a, b);
        expect(dominates(m, a)).toBe(true);
        expect(dominates(m, b)).toBe(true);
        if (dominates(u, a) && dominates(u, b)) expect(dominates(u, m)).toBe(true);
        // Least: no entry exceeds the larger input.
        expect(entries(m)).toEqual(entries(a).map((x, i) => Math.max(x, entries(b)[i] as number)));
      }),
    );
  });

  it("does not mutate its inputs", () => {
    fc.assert(
      fc.property(vvArb, vvArb, (a, b) => {
        const a0 = { ...a };
        const b0 = { ...b };
        mergeVv(a, b);
        vvWith(a, "z", 9);
        expect({ ...a }).toEqual(a0);
        expect({ ...b }).toEqual(b0);
      }),
    );
  });
});

describe("version vectors: helpers", () => {
  it("vvLag counts what the behind vector lacks, zero when it dominates", () => {
    fc.assert(
      fc.property(vvArb, vvArb, (a, b) => {
        const lag = entries(a).reduce((s, x, i) => s + Math.max(0, x - (entries(b)[i] as number)), 0);
        expect(vvLag(a, b)).toBe(lag);
        expect(vvLag(a, b) === 0).toBe(dominates(b, a));
        expect(vvTotal(mergeVv(a, b))).toBe(vvTotal(b) + vvLag(a, b));
      }),
    );
  });

  it("normalizeVv is canonical: equal vectors normalize identically, with sorted keys", () => {
    fc.assert(
      fc.property(vvArb, vvArb, (a, b) => {
        const na = normalizeVv(a);
        expect(Object.keys(na)).toEqual(Object.keys(na).sort());
        expect(Object.values(na).every((v) => v > 0)).toBe(true);
        if (vvEquals(a, b)) expect(JSON.stringify(na)).toBe(JSON.stringify(normalizeVv(b)));
      }),
    );
  });

  it("every vector isValidVv accepts survives the algebra (no key is lost to Object.prototype)", () => {
    // Untrusted JSON can carry keys like "__proto__": JSON.parse makes them own
    // properties, but the assignment in mergeVv/normalizeVv would set the
    // prototype instead, silently dropping the entry. isValidVv must refuse them.
    const keyArb = fc.oneof(
      fc.string({ minLength: 1, maxLength: 64 }),
      fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "a", "us-east-1"),
    );
    const jsonVvArb = fc
      .array(fc.tuple(keyArb, fc.integer({ min: 0, max: 5 })), { maxLength: 5 })
      .map((pairs) => JSON.parse(`{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`) as unknown);
    fc.assert(
      fc.property(jsonVvArb, (x) => {
        if (!isValidVv(x)) return;
        const merged = mergeVv({}, x);
        const normal = normalizeVv(x);
        for (const k of Object.keys(x)) {
          expect(vvGet(merged, k)).toBe(x[k]);
          expect(vvGet(normal, k)).toBe(x[k]);
        }
        expect(compareVv(merged, x)).toBe("equal");
      }),
    );
    expect(isValidVv(JSON.parse('{"__proto__": 5}'))).toBe(false);
  });

  it("isValidVv accepts generated vectors and rejects malformed ones", () => {
    fc.assert(fc.property(vvArb, (a) => {
      expect(isValidVv(a)).toBe(true);
    }));
    for (const bad of [null, [], "x", 1, { a: -1 }, { a: 1.5 }, { a: "1" }, { "": 1 }, { a: Number.MAX_SAFE_INTEGER + 1 }, { a: NaN }]) {
      expect(isValidVv(bad), JSON.stringify(bad)).toBe(false);
    }
  });
});
