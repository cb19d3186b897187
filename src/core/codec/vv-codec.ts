// Version vectors and node ids in the binary codec. Ops carry vectors (kv),
// replication frames carry them (acks, hellos), so the canonical form lives
// apart from both: sorted entries, zero entries dropped, strict ids.

import { isValidId, type NodeId } from "../ids.js";
import type { VersionVector } from "../version-vector.js";
import type { ByteReader, ByteWriter } from "./bytes.js";

/** Node ids are at most 64 ASCII characters (ids.ts). */
export const MAX_ID_BYTES = 64;
/** One vv entry is at least a 1-byte length, a 1-byte id and a 1-byte seq. */
const MIN_VV_ENTRY_BYTES = 3;

/**
 * Writes a version vector canonically: entries sorted by node id, zero
 * entries dropped (missing means 0), so equal vectors encode equally.
 */
export function writeVv(w: ByteWriter, vv: VersionVector): void {
  const nodes = Object.keys(vv).filter((k) => (vv[k] as number) !== 0).sort();
  w.varint(nodes.length);
  for (const node of nodes) {
    if (!isValidId(node)) throw new Error(`vv node is not a valid id: ${JSON.stringify(node)}`);
    w.string(node);
    w.varint(vv[node] as number);
  }
}

/** Reads writeVv's form, refusing duplicates, unsorted or invalid ids and zero seqs. Throws ReadFailure. */
export function readVv(r: ByteReader): VersionVector {
  const n = r.count("vv entry count", MIN_VV_ENTRY_BYTES);
  const vv: Record<string, number> = {};
  let prev: string | null = null;
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const node = readNodeId(r, "vv node");
    if (prev !== null && node <= prev) r.fail("vv nodes not strictly ascending", at);
    prev = node;
    const seqAt = r.pos;
    const seq = r.varint("vv seq");
    if (seq < 1) r.fail("vv seq must be >= 1", seqAt);
    vv[node] = seq;
  }
  return vv;
}

/** Reads a node id, refusing anything ids.ts would not accept. Throws ReadFailure. */
export function readNodeId(r: ByteReader, what: string): NodeId {
  const at = r.pos;
  const s = r.string(what, 1, MAX_ID_BYTES);
  if (!isValidId(s)) r.fail(`${what} is not a valid node id`, at);
  return s as NodeId;
}
