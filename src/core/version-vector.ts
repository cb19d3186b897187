// Version vectors: for each origin node, the highest sequence number seen. Two
// vectors are either ordered (one saw everything the other saw) or concurrent
// (each saw something the other did not). This is what tells a causal
// overwrite from a true conflict, and what replication compares to know what a
// peer lacks.

import { isValidId, type NodeId } from "./ids.js";

/** origin node -> highest seq. Missing entries mean 0. */
export type VersionVector = Readonly<Record<string, number>>;

export type VvOrder = "before" | "after" | "equal" | "concurrent";

/** The entry for `node` (0 when absent). */
export function vvGet(vv: VersionVector, node: NodeId | string): number {
  return Object.hasOwn(vv, node) ? (vv[node] as number) : 0;
}

/** How `a` relates to `b`: "before" means a < b (b saw all of a and more). */
export function compareVv(a: VersionVector, b: VersionVector): VvOrder {
  let aAhead = false;
  let bAhead = false;
  for (const k in a) {
    const av = a[k] as number;
    const bv = vvGet(b, k);
    if (av > bv) aAhead = true;
    else if (av < bv) bAhead = true;
    if (aAhead && bAhead) return "concurrent";
  }
  for (const k in b) {
    if (Object.hasOwn(a, k)) continue;
    if ((b[k] as number) > 0) bAhead = true;
    if (aAhead && bAhead) return "concurrent";
  }
  if (aAhead) return "after";
  if (bAhead) return "before";
  return "equal";
}

/** True when `a` has seen everything `b` has (a >= b). */
export function dominates(a: VersionVector, b: VersionVector): boolean {
  for (const k in b) {
    if ((b[k] as number) > vvGet(a, k)) return false;
  }
  return true;
}

/** The least upper bound: entrywise max. */
export function mergeVv(a: VersionVector, b: VersionVector): VersionVector {
  const out: Record<string, number> = { ...a };
  for (const k in b) {
    const bv = b[k] as number;
    if (bv > vvGet(out, k)) out[k] = bv;
  }
  return out;
}

/** A copy of `vv` with `node` set to `seq` (used to add a write's own dot). */
export function vvWith(vv: VersionVector, node: NodeId | string, seq: number): VersionVector {
  return { ...vv, [node]: seq };
}

/** Entries with value 0 dropped and keys sorted: one canonical form per vector. */
export function normalizeVv(vv: VersionVector): VersionVector {
  const out: Record<string, number> = {};
  for (const k of Object.keys(vv).sort()) {
    const v = vv[k] as number;
    if (v > 0) out[k] = v;
  }
  return out;
}

/** Equality up to missing-vs-zero entries. */
export function vvEquals(a: VersionVector, b: VersionVector): boolean {
  return compareVv(a, b) === "equal";
}

/** Total ops the vector accounts for (sum of entries): a lag figure. */
export function vvTotal(vv: VersionVector): number {
  let n = 0;
  for (const k in vv) n += vv[k] as number;
  return n;
}

/** How many ops `behind` lacks relative to `ahead` (entrywise, never negative). */
export function vvLag(ahead: VersionVector, behind: VersionVector): number {
  let n = 0;
  for (const k in ahead) n += Math.max(0, (ahead[k] as number) - vvGet(behind, k));
  return n;
}

/** True for a structurally valid vector from untrusted input. */
export function isValidVv(x: unknown): x is VersionVector {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return false;
  for (const [k, v] of Object.entries(x)) {
    // Keys are node ids. Anything looser lets "__proto__" (an own key after
    // JSON.parse) through, and mergeVv/normalizeVv would silently drop it.
    if (!isValidId(k)) return false;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) return false;
  }
  return true;
}

/** True when `vv` is exactly `{origin: seq}`: a version's own dot and nothing else (zero entries ignored). */
export function vvIsDot(vv: VersionVector, origin: string, seq: number): boolean {
  let n = 0;
  for (const k in vv) {
    if ((vv[k] as number) === 0) continue;
    if (k !== origin) return false;
    n++;
  }
  return n === 1 && vvGet(vv, origin) === seq;
}
