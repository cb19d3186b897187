// How an op is laid out in the op log: the columns every op has, a JSON body
// with the fields of its namespace, a binary payload for Yjs updates (so
// they are stored as bytes, not inflated to base64), and the client's
// Idempotency-Key with its request hash when the write had one (columns of
// their own, so a replica can tell which logged op answered which key). The
// binary wire codec (src/core/codec) is a separate concern; the log only
// needs to round-trip Op values. Both storage implementations use this
// layout, so they agree exactly on what survives a round trip.

import { decodeHlc, encodeHlc } from "../core/hlc.js";
import type { NodeId } from "../core/ids.js";
import type { Namespace, Op, OpIdem, SetRemove } from "../core/op.js";
import type { VersionVector } from "../core/version-vector.js";

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

interface KvBody { readonly valueJson: string | null; readonly vv: VersionVector }
interface CounterBody { readonly delta: number; readonly pTotal: number; readonly nTotal: number }
interface SetBody { readonly add: readonly string[]; readonly remove: readonly SetRemove[] }

function unreachable(x: never): never {
  throw new Error(`unknown namespace: ${JSON.stringify(x)}`);
}

/** The row an op is stored as. The payload is copied, so later changes to the op's bytes do not reach the log. */
export function opToRow(op: Op): OpRow {
  const base = {
    origin: op.origin, seq: op.seq, hlc: encodeHlc(op.hlc), ns: op.ns, key: op.key,
    idemKey: op.idem?.key ?? null, idemHash: op.idem?.requestHash ?? null,
  };
  switch (op.ns) {
    case "kv": {
      const body: KvBody = { valueJson: op.valueJson, vv: op.vv };
      return { ...base, body: JSON.stringify(body), payload: null };
    }
    case "counters": {
      const body: CounterBody = { delta: op.delta, pTotal: op.pTotal, nTotal: op.nTotal };
      return { ...base, body: JSON.stringify(body), payload: null };
    }
    case "sets": {
      const body: SetBody = { add: op.add, remove: op.remove };
      return { ...base, body: JSON.stringify(body), payload: null };
    }
    case "docs":
      return { ...base, body: "{}", payload: new Uint8Array(op.update) };
    default:
      return unreachable(op);
  }
}

/** `{ idem }` when the row has one, else nothing: an op without idem has no such field at all. */
function idemFromRow(row: OpRow): { idem?: OpIdem } {
  if (row.idemKey === null && row.idemHash === null) return {};
  if (row.idemKey === null || row.idemHash === null) throw new Error(`op log: half an idempotency key at ${row.origin}:${row.seq}`);
  return { idem: { key: row.idemKey, requestHash: row.idemHash } };
}

/** The op a row holds. Throws on a row this code did not write (a corrupt log). */
export function opFromRow(row: OpRow): Op {
  const hlc = decodeHlc(row.hlc);
  if (hlc === null) throw new Error(`op log: bad hlc ${JSON.stringify(row.hlc)} at ${row.origin}:${row.seq}`);
  const base = { origin: row.origin as NodeId, seq: row.seq, hlc, key: row.key, ...idemFromRow(row) };
  switch (row.ns) {
    case "kv": {
      const body = JSON.parse(row.body) as KvBody;
      return { ...base, ns: "kv", valueJson: body.valueJson, vv: body.vv };
    }
    case "counters": {
      const body = JSON.parse(row.body) as CounterBody;
      return { ...base, ns: "counters", delta: body.delta, pTotal: body.pTotal, nTotal: body.nTotal };
    }
    case "sets": {
      const body = JSON.parse(row.body) as SetBody;
      return { ...base, ns: "sets", add: body.add, remove: body.remove };
    }
    case "docs": {
      if (row.payload === null) throw new Error(`op log: docs op ${row.origin}:${row.seq} has no payload`);
      return { ...base, ns: "docs", update: new Uint8Array(row.payload) };
    }
    default:
      return unreachable(row.ns);
  }
}
