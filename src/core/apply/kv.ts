// The kv namespace's entry: LWW registers ordered by version vectors, with
// the HLC and node id breaking ties between concurrent versions (lww.ts).

import { applyKv, readKv, versionOf } from "../crdt/lww.js";
import { vvGet } from "../version-vector.js";
import { readVv, writeVv } from "../codec/vv-codec.js";
import { encodeHlc } from "../hlc.js";
import type { KvOp } from "../op.js";
import type { VersionVector } from "../version-vector.js";
import { makeKvOp } from "../write.js";
import type { NamespaceEntry } from "./namespace.js";

interface KvLogBody { readonly valueJson: string | null; readonly vv: VersionVector }

/** The kv entry. */
export const kvEntry: NamespaceEntry<"kv"> = {
  ns: "kv",
  wireTag: 1,
  build: (state, key, intent, at) => makeKvOp(state, key, intent.valueJson, at.origin, at.seq, at.hlc, at.swept),
  apply: (state, op) => {
    const r = applyKv(state, op);
    return { state: r.reg, conflicts: r.conflicts };
  },
  read: (state) => {
    const w = readKv(state);
    return w === undefined || w.valueJson === null ? undefined : { valueJson: w.valueJson, version: versionOf(w) };
  },
  answer: (op, _after, token) =>
    op.valueJson === null ? { key: op.key, token } : { key: op.key, token, version: { hlc: encodeHlc(op.hlc), node: op.origin } },
  load: (reader, key) => reader.getKv(key),
  row: (key, reg) => ({ key, reg, deleted: readKv(reg)?.valueJson === null }),

  toLogBody: (op) => {
    const body: KvLogBody = { valueJson: op.valueJson, vv: op.vv };
    return { body: JSON.stringify(body), payload: null };
  },
  fromLogBody: (head, text) => {
    const body = JSON.parse(text) as KvLogBody;
    return { ...head, ns: "kv", valueJson: body.valueJson, vv: body.vv };
  },

  wireHint: (op) => (op.valueJson?.length ?? 0) * 3,
  checkWire: (op) => {
    if (vvGet(op.vv, op.origin) !== op.seq) throw new Error("kv op: vv[origin] must equal seq");
    if (op.valueJson !== null) JSON.parse(op.valueJson); // throws on a bug upstream, before peers refuse it
  },
  writeWire: (w, op) => {
    if (op.valueJson === null) w.u8(0);
    else {
      w.u8(1);
      w.string(op.valueJson);
    }
    writeVv(w, op.vv);
  },
  readWire: (r, head) => {
    const flagAt = r.pos;
    const flag = r.u8("kv value flag");
    let valueJson: string | null = null;
    if (flag === 1) {
      const valueAt = r.pos;
      valueJson = r.string("kv value");
      if (!isJson(valueJson)) r.fail("kv value is not valid JSON", valueAt);
    } else if (flag !== 0) r.fail(`bad kv value flag ${flag}`, flagAt);
    const vvAt = r.pos;
    const vv = readVv(r);
    if (vv[head.origin] !== head.seq) r.fail("kv vv[origin] must equal seq", vvAt);
    return { ns: "kv", ...head, valueJson, vv } satisfies KvOp;
  },
};

function isJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}
