// The byte-order helpers against the reference (Buffer.compare on UTF-8), on
// random strings biased toward the characters where UTF-16 and UTF-8 order
// disagree.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareUtf8, isWellFormed, listRange, prefixUpperBound } from "../../src/storage/key-order.js";
import { byteOrder } from "./fixtures.js";

const char = fc.oneof(
  fc.constantFrom("a", "\u007f", "\u0080", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uffff", "\u{10000}", "\u{1F600}", "\u{10FFFF}"),
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
);
const str = fc.string({ unit: char, maxLength: 5 });

describe("key order", () => {
  it("compareUtf8 agrees in sign with comparing UTF-8 bytes", () => {
    fc.assert(fc.property(str, str, (a, b) => {
      expect(Math.sign(compareUtf8(a, b))).toBe(Math.sign(byteOrder(a, b)));
    }));
  });

  it("disagrees with JavaScript's own order exactly where UTF-16 differs from UTF-8", () => {
    expect("\u{1F600}" < "\uffff").toBe(true);
    expect(compareUtf8("\u{1F600}", "\uffff")).toBeGreaterThan(0);
    expect(compareUtf8("\ud7ff", "\u{10000}")).toBeLessThan(0);
    expect(compareUtf8("ab", "a")).toBeGreaterThan(0);
    expect(compareUtf8("é", "é")).toBe(0);
  });

  it("prefixUpperBound bounds exactly the strings that start with the prefix", () => {
    fc.assert(fc.property(str, str, (prefix, s) => {
      const upper = prefixUpperBound(prefix);
      const inRange = byteOrder(s, prefix) >= 0 && (upper === null || byteOrder(s, upper) < 0);
      expect(inRange).toBe(s.startsWith(prefix));
      expect(upper === null || isWellFormed(upper)).toBe(true);
    }));
  });

  it("prefixUpperBound steps over the surrogate range and past U+10FFFF", () => {
    expect(prefixUpperBound("")).toBeNull();
    expect(prefixUpperBound("\u{10FFFF}\u{10FFFF}")).toBeNull();
    expect(prefixUpperBound("ab")).toBe("ac");
    expect(prefixUpperBound("a\ud7ff")).toBe("a\ue000");
    expect(prefixUpperBound("a\uffff")).toBe("a\u{10000}");
    expect(prefixUpperBound("a\u{10FFFF}")).toBe("b");
    expect(prefixUpperBound("\u{1F600}")).toBe("\u{1F601}");
  });

  it("listRange starts at the prefix unless `after` is further on", () => {
    expect(listRange()).toEqual({ lower: "", lowerInclusive: true, upper: null });
    expect(listRange("b", "a")).toEqual({ lower: "b", lowerInclusive: true, upper: "c" });
    expect(listRange("b", "b")).toEqual({ lower: "b", lowerInclusive: false, upper: "c" });
    expect(listRange("b", "bz")).toEqual({ lower: "bz", lowerInclusive: false, upper: "c" });
  });

  it("tells well-formed strings from ones with a lone surrogate", () => {
    expect(isWellFormed("a\u{1F600}b")).toBe(true);
    expect(isWellFormed("\ud83d")).toBe(false);
    expect(isWellFormed("\ude00a")).toBe(false);
    expect(isWellFormed("\ude00\ud83d")).toBe(false);
  });
});
