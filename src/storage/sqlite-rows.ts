// The SQLite store's row shapes (what each SELECT of sqlite.ts returns) and
// the small conversions between rows and the port's values.

import type { Conflict, Version } from "../core/op.js";
import { decodeHlc } from "../core/hlc.js";
import type { VersionVector } from "../core/version-vector.js";
import type { OpRow } from "./op-row.js";

export interface SqlOpRow extends Omit<OpRow, "payload"> {
  readonly payload: Buffer | null;
}
export interface SqlKvRow { readonly key: string; readonly state: string; readonly deleted: number }
export interface SqlConflictRow { readonly key: string; readonly winner: string; readonly loser: string; readonly at: string }
export interface SqlIdempotencyRow {
  readonly k: string;
  readonly hash: string;
  readonly status: number;
  readonly body: string;
  readonly created_at_ms: number;
}
export interface SqlVvRow { readonly origin: string; readonly seq: number }

/** The bytes of one op row that opLogStats counts (SQL; the JS twin is opRowBytes). */
export const OP_ROW_BYTES = "length(CAST(key AS BLOB)) + length(CAST(body AS BLOB)) + COALESCE(length(payload), 0)";

/** What an op row adds to opLogStats' bytes. */
export function opRowBytes(r: OpRow): number {
  return Buffer.byteLength(r.key) + Buffer.byteLength(r.body) + (r.payload?.length ?? 0);
}

export const OP_SELECT_COLUMNS = "origin, seq, hlc, ns, key, body, payload, idem_key AS idemKey, idem_hash AS idemHash";

export function vvFromRows(rows: readonly SqlVvRow[]): VersionVector {
  const out: Record<string, number> = {};
  for (const r of rows) if (r.seq > 0) out[r.origin] = r.seq;
  return out;
}

export function conflictFromRow(r: SqlConflictRow): Conflict {
  const at = decodeHlc(r.at);
  if (at === null) throw new Error(`conflicts: bad hlc ${JSON.stringify(r.at)}`);
  return { key: r.key, winner: JSON.parse(r.winner) as Version, loser: JSON.parse(r.loser) as Version, at };
}

/** A Uint8Array view of a Buffer, so callers get the plain type the port promises. */
export function bytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
