// Keys are listed in the byte order of their UTF-8 encoding, because that is
// what SQLite's BINARY collation does (memcmp on UTF-8) and what the HTTP API
// promises. JavaScript compares strings by UTF-16 code units, which disagrees
// with UTF-8 byte order when an astral character (a surrogate pair, D800-DFFF)
// meets a BMP character in E000-FFFF. Both storage implementations use these
// helpers so that they list keys in exactly the same order.

import { isWellFormedString } from "../core/key.js";

const SURROGATE_MIN = 0xd800;
const PRIVATE_USE_MIN = 0xe000;
const CODE_POINT_MAX = 0x10ffff;
const LAST_BEFORE_SURROGATES = 0xd7ff;

/** True when `s` has no lone surrogate, i.e. it has a UTF-8 encoding (src/core/key.ts decides). */
export function isWellFormed(s: string): boolean {
  return isWellFormedString(s);
}

/** Throws unless `s` is well-formed (a programmer error: keys are validated at the edge). */
export function assertWellFormedKey(s: string, what = "key"): void {
  if (!isWellFormed(s)) throw new TypeError(`${what} is not well-formed UTF-16 (lone surrogate): ${JSON.stringify(s)}`);
}

/**
 * Orders code units so that UTF-16 comparison agrees with code-point order
 * (and so with UTF-8 byte order): surrogates move above E000-FFFF.
 */
function codePointRank(unit: number): number {
  if (unit < SURROGATE_MIN) return unit;
  return unit >= PRIVATE_USE_MIN ? unit - 0x800 : unit + 0x2000;
}

/** Compares two well-formed strings by the bytes of their UTF-8 encoding: negative, zero or positive. */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/**
 * The least string greater (in UTF-8 byte order) than every string that
 * starts with `prefix`, or null when there is none (empty prefix, or one made
 * only of U+10FFFF). With it a prefix scan is the index range
 * [prefix, upper bound), without LIKE (which folds case and treats % and _ as
 * wildcards).
 */
export function prefixUpperBound(prefix: string): string | null {
  const codePoints = Array.from(prefix);
  while (codePoints.length > 0) {
    const last = (codePoints.pop() as string).codePointAt(0) as number;
    if (last < CODE_POINT_MAX) {
      // UTF-8 has no surrogates: the code point after D7FF is E000.
      const next = last === LAST_BEFORE_SURROGATES ? PRIVATE_USE_MIN : last + 1;
      return codePoints.join("") + String.fromCodePoint(next);
    }
  }
  return null;
}

/** Where a listing starts and stops, in UTF-8 byte order. */
export interface KeyRange {
  readonly lower: string;
  readonly lowerInclusive: boolean;
  /** Exclusive; null: no upper bound. */
  readonly upper: string | null;
}

/** The key range of a listing with an optional prefix and an exclusive `after` cursor. */
export function listRange(prefix = "", after?: string): KeyRange {
  const upper = prefixUpperBound(prefix);
  if (after !== undefined && compareUtf8(after, prefix) >= 0) return { lower: after, lowerInclusive: false, upper };
  return { lower: prefix, lowerInclusive: true, upper };
}
