// Argument checks shared by both storage implementations, so that they refuse
// the same programmer errors in the same way (the contract suite relies on
// it), and the JSON encoding of metadata values, which must fail before
// anything is written rather than halfway through a batch.

import type { Batch } from "./port.js";
import { STORAGE_PAGE_MAX } from "./port.js";
import { assertWellFormedKey } from "./key-order.js";

/** Throws a RangeError unless `n` is an integer in [min, max]. */
export function assertIntIn(what: string, n: number, min: number, max: number): void {
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new RangeError(`${what} must be an integer in [${min}, ${max}], got ${String(n)}`);
  }
}

/** Throws unless `limit` is a page size storage serves (0 to STORAGE_PAGE_MAX). */
export function assertLimit(limit: number): void {
  assertIntIn("limit", limit, 0, STORAGE_PAGE_MAX);
}

/** Throws unless every entry of a version vector is a non-negative safe integer. */
export function assertVv(what: string, vv: Readonly<Record<string, number>>): void {
  for (const [origin, seq] of Object.entries(vv)) assertIntIn(`${what}[${origin}]`, seq, 0, Number.MAX_SAFE_INTEGER);
}

/** Checks the parts of a batch that are cheap to check up front (programmer errors). */
export function assertBatch(batch: Batch): void {
  for (const op of batch.ops ?? []) {
    assertIntIn(`op seq of ${op.origin}`, op.seq, 1, Number.MAX_SAFE_INTEGER);
    assertWellFormedKey(op.key, "op key");
  }
  for (const list of [batch.kv, batch.counters, batch.sets, batch.docs]) {
    for (const row of list ?? []) assertWellFormedKey(row.key);
  }
  if (batch.appliedVv !== undefined) assertVv("appliedVv", batch.appliedVv);
}

/** JSON text of a metadata value; throws a TypeError for values JSON cannot hold. */
export function encodeMetaValue(key: string, value: unknown): string {
  // JSON.stringify throws on BigInt and cycles, and returns undefined for functions, symbols and undefined.
  let text: string | undefined;
  try {
    text = JSON.stringify(value) as string | undefined;
  } catch (err) {
    throw new TypeError(`meta ${JSON.stringify(key)}: value is not JSON-serializable (${(err as Error).message})`);
  }
  if (text === undefined) throw new TypeError(`meta ${JSON.stringify(key)}: value is not JSON-serializable`);
  return text;
}
