// The stored text of a kv register: what the kv table holds per key, what the
// read cache keeps, and what a snapshot row carries. A register is read on
// every write to its key and there is one per key, so its form is what disk
// and memory pay per key: one JSON array of siblings, each
//
//     [wallMs, logical, origin, seq, valueJson]          vv is just the dot
//     [wallMs, logical, origin, seq, valueJson, vv]      vv has other entries
//
// (valueJson null for a tombstone). A version's vector always holds its own
// dot, so a vector that is only the dot (a single writer's key, or one folded
// by compaction) is left out. Against the first form, an object per sibling
// with named fields, this is about 90 bytes less per key.
//
// The first form, `{"siblings":[{...}]}`, is still read: rows written before
// this form (schema 5 and older, backups, a peer's snapshot of protocol 3)
// decode the same, and a row is written in this form the next time it changes.
// Text from a peer or a file is checked as strictly as an op from the wire:
// anything else is an error, never a register.

import { isValidHlc, type Hlc } from "../hlc.js";
import { isValidId, type NodeId } from "../ids.js";
import type { KvRegister, KvVersion } from "../op.js";
import { isValidVv, vvGet, vvIsDot, type VersionVector } from "../version-vector.js";

type Sibling = [number, number, string, number, string | null] | [number, number, string, number, string | null, VersionVector];

/** The stored text of a register. */
export function encodeKvState(reg: KvRegister): string {
  const out: Sibling[] = reg.siblings.map((s) =>
    vvIsDot(s.vv, s.origin, s.seq) ? [s.hlc.wallMs, s.hlc.logical, s.origin, s.seq, s.valueJson] : [s.hlc.wallMs, s.hlc.logical, s.origin, s.seq, s.valueJson, s.vv],
  );
  return JSON.stringify(out);
}

/**
 * The texts a stored register may have: this form, and the first form for a
 * row not rewritten since (compare-and-delete of a tombstone accepts either).
 */
export function kvStateTexts(reg: KvRegister): [string, string] {
  return [encodeKvState(reg), JSON.stringify(reg)];
}

/** A register from its stored text, either form; throws an Error saying what is wrong. */
export function decodeKvState(text: string): KvRegister {
  const parsed: unknown = JSON.parse(text);
  if (Array.isArray(parsed)) return { siblings: parsed.map((s, i) => compactSibling(s, i)) };
  if (typeof parsed === "object" && parsed !== null && Array.isArray((parsed as { siblings?: unknown }).siblings)) {
    return { siblings: ((parsed as { siblings: unknown[] }).siblings).map((s, i) => legacySibling(s, i)) };
  }
  throw new Error("not a kv register");
}

function compactSibling(s: unknown, i: number): KvVersion {
  if (!Array.isArray(s) || (s.length !== 5 && s.length !== 6)) throw new Error(`kv register: sibling ${i} is not a 5- or 6-element array`);
  const [wallMs, logical, origin, seq, valueJson, vv] = s as unknown[];
  return checked({ wallMs, logical }, origin, seq, valueJson, s.length === 5 ? { [origin as string]: seq as number } : vv, i);
}

function legacySibling(s: unknown, i: number): KvVersion {
  if (typeof s !== "object" || s === null) throw new Error(`kv register: sibling ${i} is not an object`);
  const o = s as Record<string, unknown>;
  return checked(o.hlc, o.origin, o.seq, o.valueJson, o.vv, i);
}

function checked(hlc: unknown, origin: unknown, seq: unknown, valueJson: unknown, vv: unknown, i: number): KvVersion {
  const h = hlc as Hlc;
  if (typeof hlc !== "object" || hlc === null || !isValidHlc(h)) throw new Error(`kv register: sibling ${i} has a bad hlc`);
  if (typeof origin !== "string" || !isValidId(origin)) throw new Error(`kv register: sibling ${i} has a bad origin`);
  if (!(Number.isSafeInteger(seq) && (seq as number) >= 1)) throw new Error(`kv register: sibling ${i} has a bad seq`);
  if (valueJson !== null && typeof valueJson !== "string") throw new Error(`kv register: sibling ${i} has a bad value`);
  if (!isValidVv(vv) || vvGet(vv, origin) !== seq) throw new Error(`kv register: sibling ${i} has a bad vv (it must hold its own dot)`);
  return { valueJson, hlc: { wallMs: h.wallMs, logical: h.logical }, origin: origin as NodeId, seq: seq as number, vv };
}
