// The sets namespace's entry: add-wins OR-sets, each remove naming the add
// tags its writer observed (or-set.ts).

import { applySet, setMembers } from "../crdt/or-set.js";
import type { SetOp, SetRemove } from "../op.js";
import { makeSetOp } from "../write.js";
import type { NamespaceEntry } from "./namespace.js";

interface SetLogBody { readonly add: readonly string[]; readonly remove: readonly SetRemove[] }

/** The sets entry. */
export const setsEntry: NamespaceEntry<"sets"> = {
  ns: "sets",
  wireTag: 3,
  build: (state, key, intent, at) => makeSetOp(state, key, intent.add, intent.remove, at.origin, at.seq, at.hlc),
  apply: (state, op) => ({ state: applySet(state, op), conflicts: [] }),
  read: (state) => setMembers(state),
  answer: (op, after, token) => ({ key: op.key, members: setMembers(after), token }),
  load: (reader, key) => reader.getSet(key),
  row: (key, state) => ({ key, state }),

  toLogBody: (op) => {
    const body: SetLogBody = { add: op.add, remove: op.remove };
    return { body: JSON.stringify(body), payload: null };
  },
  fromLogBody: (head, text) => {
    const body = JSON.parse(text) as SetLogBody;
    return { ...head, ns: "sets", add: body.add, remove: body.remove };
  },

  wireHint: () => 0,
  checkWire: () => undefined,
  writeWire: (w, op) => {
    w.varint(op.add.length);
    for (const m of op.add) w.string(m);
    w.varint(op.remove.length);
    for (const rm of op.remove) {
      w.string(rm.member);
      w.varint(rm.tags.length);
      for (const t of rm.tags) w.string(t);
    }
  },
  readWire: (r, head) => {
    const addCount = r.count("set add count", 1);
    const add: string[] = [];
    for (let i = 0; i < addCount; i++) add.push(r.string("set member"));
    const removeCount = r.count("set remove count", 2);
    const remove: SetRemove[] = [];
    for (let i = 0; i < removeCount; i++) {
      const member = r.string("set member");
      const tagCount = r.count("set tag count", 1);
      const tags: string[] = [];
      for (let j = 0; j < tagCount; j++) tags.push(r.string("set tag"));
      remove.push({ member, tags });
    }
    return { ns: "sets", ...head, add, remove } satisfies SetOp;
  },
};
