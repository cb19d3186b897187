// Small builders for ops and states, shared by the storage tests, so each test
// says what it stores rather than how an op is spelled.

import type { Hlc } from "../../src/core/hlc.js";
import { asNodeId } from "../../src/core/ids.js";
import type { NodeId } from "../../src/core/ids.js";
import type { Conflict, CounterOp, DocOp, KvOp, KvRegister, SetOp } from "../../src/core/op.js";

export const A: NodeId = asNodeId("node-a");
export const B: NodeId = asNodeId("node-b");
export const C: NodeId = asNodeId("node-c");

/** An HLC at `wallMs` with logical counter `logical`. */
export function hlc(wallMs: number, logical = 0): Hlc {
  return { wallMs, logical };
}

/** A kv write of `valueJson` (null: a delete) as op (origin, seq). */
export function kvOp(origin: NodeId, seq: number, key = "k", valueJson: string | null = "1"): KvOp {
  return { ns: "kv", origin, seq, hlc: hlc(1_700_000_000_000 + seq, seq % 3), key, valueJson, vv: { [origin]: seq } };
}

/** A counter delta as op (origin, seq). */
export function counterOp(origin: NodeId, seq: number, key = "c", delta = 1): CounterOp {
  return { ns: "counters", origin, seq, hlc: hlc(1_700_000_000_000 + seq), key, delta, pTotal: Math.max(delta, 0), nTotal: Math.max(-delta, 0) };
}

/** A set write as op (origin, seq). */
export function setOp(origin: NodeId, seq: number, key = "s"): SetOp {
  return {
    ns: "sets", origin, seq, hlc: hlc(1_700_000_000_000 + seq), key,
    add: ["x", "é😀"], remove: [{ member: "y", tags: [`${B}:1:0`, `${C}:2:1`] }],
  };
}

/** A Yjs-update op (origin, seq) with arbitrary bytes. */
export function docOp(origin: NodeId, seq: number, key = "d"): DocOp {
  return { ns: "docs", origin, seq, hlc: hlc(1_700_000_000_000 + seq), key, update: new Uint8Array([0, 1, 2, 255, seq & 0xff]) };
}

/** A one-sibling register holding `valueJson`, written by (origin, seq). */
export function reg(valueJson: string | null, origin: NodeId = A, seq = 1): KvRegister {
  return { siblings: [{ valueJson, hlc: hlc(1_700_000_000_000 + seq), origin, seq, vv: { [origin]: seq } }] };
}

/** A conflict on `key` detected at wall time `atMs`. */
export function conflict(key: string, atMs: number): Conflict {
  return { key, winner: { hlc: hlc(atMs, 1), node: B }, loser: { hlc: hlc(atMs, 0), node: A }, at: hlc(atMs, 2) };
}

/** Compares strings by their UTF-8 bytes, the reference order for listings. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
