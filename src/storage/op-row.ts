// How an op is laid out in the op log: the columns every op has, a JSON body
// with the fields of its namespace (each namespace's table entry in
// src/core/apply says how), a binary payload for Yjs updates (so
// they are stored as bytes, not inflated to base64), and the client's
// Idempotency-Key with its request hash when the write had one (columns of
// their own, so a replica can tell which logged op answered which key). The
// binary wire codec (src/core/codec) is a separate concern; the log only
// needs to round-trip Op values. Both storage implementations use this
// layout, so they agree exactly on what survives a round trip.

import { anyEntry, NAMESPACE_TABLE } from "../core/apply/table.js";
import { decodeHlc, encodeHlc } from "../core/hlc.js";
import type { NodeId } from "../core/ids.js";
import type { Namespace, Op, OpIdem } from "../core/op.js";

/** One row of the ops table. */
export interface OpRow {
  readonly origin: string;
  readonly seq: number;
  /** encodeHlc's fixed-width text: readable, and sorts like the clock. */
  readonly hlc: string;
  readonly ns: Namespace;
  readonly key: string;
  /** JSON of the namespace's fields. */
  readonly body: string;
  /** A docs op's update; null for the other namespaces. */
  readonly payload: Uint8Array | null;
  /** op.idem.key, or null when the op has no idem (then idemHash is null too). */
  readonly idemKey: string | null;
  /** op.idem.requestHash, or null when the op has no idem. */
  readonly idemHash: string | null;
}

/** The row an op is stored as; the namespace's fields come from its table entry. */
export function opToRow(op: Op): OpRow {
  const { body, payload } = anyEntry(op.ns).toLogBody(op);
  return {
    origin: op.origin, seq: op.seq, hlc: encodeHlc(op.hlc), ns: op.ns, key: op.key, body, payload,
    idemKey: op.idem?.key ?? null, idemHash: op.idem?.requestHash ?? null,
  };
}

/** `{ idem }` when the row has one, else nothing: an op without idem has no such field at all. */
function idemFromRow(row: OpRow): { idem?: OpIdem } {
  if (row.idemKey === null && row.idemHash === null) return {};
  if (row.idemKey === null || row.idemHash === null) throw new Error(`op log: half an idempotency key at ${row.origin}:${row.seq}`);
  return { idem: { key: row.idemKey, requestHash: row.idemHash } };
}

/** The op a row holds. Throws on a row this code did not write (a corrupt log). */
export function opFromRow(row: OpRow): Op {
  const where = `${row.origin}:${row.seq}`;
  const hlc = decodeHlc(row.hlc);
  if (hlc === null) throw new Error(`op log: bad hlc ${JSON.stringify(row.hlc)} at ${where}`);
  // A row is not typed by the compiler: its ns column is whatever was on disk.
  if (!Object.hasOwn(NAMESPACE_TABLE, row.ns)) throw new Error(`unknown namespace: ${JSON.stringify(row.ns)}`);
  const head = { origin: row.origin as NodeId, seq: row.seq, hlc, key: row.key, ...idemFromRow(row) };
  return anyEntry(row.ns).fromLogBody(head, row.body, row.payload, where);
}
