// A snapshot's rows as stored (the encoding both stores share) and the one
// install procedure both stores run: each store supplies its reads and
// writes (InstallIo), inside its own transaction or atomic write, and the
// core supplies every decision (InstallRules).

import { decodeKvState } from "../core/codec/kv-state.js";
import type { AnyState, IdempotencyRecord, KvRow, RowOf, StateOf } from "../core/apply/types.js";
import { validateDocUpdate } from "../core/crdt/ydoc.js";
import type { CounterState, DocState, Namespace, OrSetState } from "../core/op.js";
import type { InstalledMeta, SnapshotHeader, SnapshotNs, SnapshotRow } from "../core/snapshot.js";
import type { InstallResult, InstallRules } from "./port.js";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The row data of a state stored as JSON text (kv, counters, sets). */
export function textRowData(text: string): Uint8Array {
  return utf8.encode(text);
}

/** The row data of an idempotency record. */
export function idemRowData(r: IdempotencyRecord): Uint8Array {
  return utf8.encode(JSON.stringify({ h: r.requestHash, s: r.status, b: r.body, t: r.createdAtMs }));
}

/** A staged row decoded; throws with the row's namespace and key when its data is not what that namespace stores. */
export function decodeRow(row: SnapshotRow): { ns: Namespace; state: AnyState } | { ns: "idem"; record: IdempotencyRecord } {
  try {
    if (row.ns === "docs") {
      // Checked here, not left to the merge: a doc this node lacks is not merged, it is stored as sent.
      if (!validateDocUpdate(row.data)) throw new Error("not a Yjs update");
      return { ns: "docs", state: new Uint8Array(row.data) as DocState };
    }
    const text = fromUtf8.decode(row.data);
    if (row.ns === "kv") return { ns: "kv", state: decodeKvState(text) };
    const value = JSON.parse(text) as unknown;
    if (typeof value !== "object" || value === null) throw new Error("not a JSON object");
    if (row.ns === "idem") {
      const v = value as { h?: unknown; s?: unknown; b?: unknown; t?: unknown };
      if (typeof v.h !== "string" || !Number.isSafeInteger(v.s) || typeof v.b !== "string" || !Number.isSafeInteger(v.t)) throw new Error("not an idempotency record");
      return { ns: "idem", record: { key: row.key, requestHash: v.h, status: v.s as number, body: v.b, createdAtMs: v.t as number } };
    }
    if (row.ns === "counters" && (typeof (value as CounterState).p !== "object" || typeof (value as CounterState).n !== "object")) throw new Error("not a counter");
    if (row.ns === "sets" && (typeof (value as OrSetState).entries !== "object" || !Array.isArray((value as OrSetState).removed))) throw new Error("not a set");
    return { ns: row.ns, state: value as AnyState };
  } catch (err) {
    throw new Error(`snapshot row ${row.ns} ${JSON.stringify(row.key)} does not decode: ${(err as Error).message}`);
  }
}

/** Where a staged row sits in the stage's order. */
export interface StageCursor {
  readonly ns: SnapshotNs;
  readonly key: string;
}

/** What an install reads and writes, as one store does it (inside its own transaction). */
export interface InstallIo {
  /** Staged rows after `after` (null: from the first), in (ns, key) order, at most `limit`. */
  stagedPage(after: StageCursor | null, limit: number): SnapshotRow[];
  /** Local kv rows after `after` in key order whose key is not staged, at most `limit`. */
  unstagedKvPage(after: string, limit: number): KvRow[];
  local<N extends Namespace>(ns: N, key: string): StateOf<N> | undefined;
  putRow<N extends Namespace>(ns: N, row: RowOf<N>): void;
  deleteKv(key: string): void;
  /** Adds the record unless one is kept for its key. */
  addIdempotency(r: IdempotencyRecord): void;
  localMeta(): InstalledMeta;
  /** Raises the node vector and the op-log floor to `vv` (dropping the logged ops it covers), writes `meta`, clears the stage. */
  finish(vv: SnapshotHeader["vv"], meta: InstalledMeta): void;
}

const PAGE = 1000;

/** The install procedure (see Storage.installSnapshot): the caller wraps it in one transaction. */
export function runInstall(io: InstallIo, header: SnapshotHeader, rules: InstallRules): InstallResult {
  let rows = 0;
  let removedKv = 0;
  const docKeys: string[] = [];
  const apply = <N extends Namespace>(ns: N, key: string, snap: StateOf<N> | undefined): void => {
    const next = rules.row(ns, key, io.local(ns, key), snap);
    if (next !== undefined) io.putRow(ns, next);
    else if (ns === "kv") {
      io.deleteKv(key);
      removedKv++;
    } else throw new Error(`install rules removed a ${ns} row (${JSON.stringify(key)}): only kv rows may go`);
  };
  for (let after: StageCursor | null = null; ; ) {
    const page = io.stagedPage(after, PAGE);
    for (const row of page) {
      const d = decodeRow(row);
      if (d.ns === "idem") io.addIdempotency(d.record);
      else {
        apply(d.ns, row.key, d.state);
        if (d.ns === "docs") docKeys.push(row.key);
      }
      rows++;
    }
    if (page.length < PAGE) break;
    const last = page[page.length - 1] as SnapshotRow;
    after = { ns: last.ns, key: last.key };
  }
  // A local kv key the snapshot lacks: its versions the snapshot covers were deleted and swept there.
  for (let after = ""; ; ) {
    const page = io.unstagedKvPage(after, PAGE);
    for (const r of page) apply("kv", r.key, undefined);
    if (page.length < PAGE) break;
    after = (page[page.length - 1] as KvRow).key;
  }
  io.finish(header.vv, rules.meta(io.localMeta()));
  return { rows, removedKv, docKeys };
}
