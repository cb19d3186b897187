// Causal tokens have one format and one parse: they are inverse on every dot,
// and text this API never issues (garbage, seq 0, an unsafe seq, a bad node
// id) parses to null, so the HTTP edge can answer 400 before the node sees it.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { causalTokenOf, formatCausalToken, parseCausalToken } from "../../src/core/causal-token.js";
import { asNodeId } from "../../src/core/ids.js";

describe("causal tokens", () => {
  it("format and parse are inverse on every dot", () => {
    fc.assert(
      fc.property(fc.constantFrom("us-east-1", "n", "A.b_c-9"), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (origin, seq) => {
        const text = formatCausalToken(causalTokenOf({ origin: asNodeId(origin), seq }));
        expect(text).toBe(`${origin}:${seq}`);
        expect(parseCausalToken(text)).toEqual({ origin, seq });
      }),
    );
  });

  it("garbage parses to null", () => {
    for (const bad of ["", "n", "n:", ":1", "n:0", "n:01", "n:-1", "n:1.5", "n:1e3", "a:b:1", "-n:1", "n n:1", "n:9007199254740993", "n:99999999999999999", `${"x".repeat(65)}:1`]) {
      expect(parseCausalToken(bad), bad).toBeNull();
    }
  });

  it("a seq below 1 is a bug, not a token", () => {
    expect(() => causalTokenOf({ origin: asNodeId("n"), seq: 0 })).toThrow(/seq/);
    expect(() => causalTokenOf({ origin: asNodeId("n"), seq: 1.5 })).toThrow(/seq/);
  });
});
