// The docs namespace's entry: Yjs documents, merged update by update
// (ydoc.ts). The op log keeps the update as bytes, not base64 in JSON.

import { applyDoc, emptyDoc } from "../crdt/ydoc.js";
import type { DocOp } from "../op.js";
import { makeDocOp } from "../write.js";
import type { NamespaceEntry } from "./namespace.js";

/** The docs entry. */
export const docsEntry: NamespaceEntry<"docs"> = {
  ns: "docs",
  wireTag: 4,
  build: (_state, key, intent, at) => makeDocOp(key, intent.update, at.origin, at.seq, at.hlc),
  apply: (state, op) => ({ state: applyDoc(state, op.update), conflicts: [] }),
  read: (state) => state ?? emptyDoc(),
  answer: (op, _after, token) => ({ key: op.key, token }),
  load: (reader, key) => reader.getDoc(key),
  row: (key, state) => ({ key, state }),

  // The payload is copied, so later changes to the op's bytes do not reach the log.
  toLogBody: (op) => ({ body: "{}", payload: new Uint8Array(op.update) }),
  fromLogBody: (head, _body, payload, where) => {
    if (payload === null) throw new Error(`op log: docs op ${where} has no payload`);
    return { ...head, ns: "docs", update: new Uint8Array(payload) };
  },

  wireHint: (op) => op.update.length,
  checkWire: () => undefined,
  writeWire: (w, op) => w.bytes(op.update),
  readWire: (r, head) => ({ ns: "docs", ...head, update: r.bytes("docs update") }) satisfies DocOp,
};
