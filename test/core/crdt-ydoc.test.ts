// Yjs documents as update bytes: merging is a lattice join, concurrent edits
// from several Y.Docs converge whatever order and how often their updates
// arrive, diffs against a state vector bring a peer up to date, and
// validateDocUpdate rejects garbage without ever throwing.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { applyDoc, compactDoc, DOC_COMPACT_MIN_BYTES, docCompactionDue, docDiff, docDigest, docStateVector, emptyDoc, keepsCompaction, mergeDoc, validateDocUpdate, validateDocUpdateFor, validateStateVector } from "../../src/core/crdt/ydoc.js";
import type { DocOp, DocState } from "../../src/core/op.js";
import { deliver, deliveryArb, historyArb, runHistory } from "./arbitraries.js";

const stateOf = (updates: readonly Uint8Array[]): DocState => updates.reduce<DocState>((s, u) => applyDoc(s, u), emptyDoc());

/** The visible content of a state, through a real Y.Doc and typed accessors. */
function contentOf(state: Uint8Array): { text: string; map: Record<string, unknown> } {
  const doc = new Y.Doc({ guid: "test" });
  Y.applyUpdate(doc, state);
  const out = { text: doc.getText("t").toString(), map: doc.getMap("m").toJSON() };
  doc.destroy();
  return out;
}

/** Concurrent edits from 2-4 Y.Docs (one per simulated node), each made on that node's view. */
const updatesArb = historyArb(["doc"], 24).map((h) =>
  runHistory(h)
    .ops.filter((op): op is DocOp => op.ns === "docs" && op.key === "k1")
    .map((op) => op.update),
);

const threeStatesArb = fc
  .tuple(updatesArb, fc.array(fc.nat({ max: 2 }), { minLength: 40, maxLength: 40 }))
  .map(([ups, pick]) => {
    const part = (n: number) => ups.filter((_, i) => pick[i % pick.length] !== n);
    return [stateOf(part(0)), stateOf(part(1)), stateOf(part(2))] as const;
  });

function editor(clientID: number): { doc: Y.Doc; updates: Uint8Array[] } {
  const doc = new Y.Doc({ guid: "test" });
  doc.clientID = clientID;
  const updates: Uint8Array[] = [];
  doc.on("update", (u: Uint8Array) => updates.push(u));
  return { doc, updates };
}

describe("ydoc: examples", () => {
  it("merges concurrent text edits and serves diffs against a state vector", () => {
    const a = editor(1);
    const b = editor(2);
    a.doc.getText("t").insert(0, "hello");
    b.doc.getText("t").insert(0, "world");
    b.doc.getMap("m").set("k", 1);
    let s = emptyDoc();
    for (const u of [...a.updates, ...b.updates]) s = applyDoc(s, u);
    const merged = contentOf(s);
    expect(["helloworld", "worldhello"]).toContain(merged.text);
    expect(merged.map).toEqual({ k: 1 });

    // A client that has a's edits only asks for what it lacks.
    const diff = docDiff(s, Y.encodeStateVector(a.doc));
    Y.applyUpdate(a.doc, diff);
    expect(a.doc.getText("t").toString()).toBe(merged.text);
    expect(diff.length).toBeLessThan(s.length);
    expect(docDiff(s)).toEqual(s);
    expect(Y.decodeStateVector(docStateVector(s))).toEqual(new Map([[1, 5], [2, 6]]));
  });

  it("an empty doc is the empty update", () => {
    expect(emptyDoc()).toEqual(Y.encodeStateAsUpdate(new Y.Doc({ guid: "test" })));
    expect(validateDocUpdate(emptyDoc())).toBe(true);
    expect(contentOf(emptyDoc())).toEqual({ text: "", map: {} });
    expect(docDigest(emptyDoc())).toEqual({ structs: {}, deleted: {}, content: {} });
  });

  it("never aliases the update it was given", () => {
    const a = editor(1);
    a.doc.getText("t").insert(0, "x");
    const u = a.updates[0] as Uint8Array;
    const s = applyDoc(undefined, u);
    expect(s).not.toBe(u);
    expect(docDiff(s)).not.toBe(s);
  });

  it("validates updates: real ones pass, garbage and truncations fail", () => {
    const a = editor(7);
    a.doc.getText("t").insert(0, "hello world");
    const full = Y.encodeStateAsUpdate(a.doc);
    expect(validateDocUpdate(full)).toBe(true);
    expect(validateDocUpdate(new Uint8Array([]))).toBe(false);
    expect(validateDocUpdate(full.subarray(0, full.length - 3))).toBe(false);
    // A varint that claims 2^24-odd structs: Y.applyUpdate alone would allocate for it.
    expect(validateDocUpdate(new Uint8Array([88, 134, 147, 247, 9]))).toBe(false);
    expect(validateDocUpdate(new TextEncoder().encode('{"not":"yjs"}'))).toBe(false);
    expect(validateStateVector(Y.encodeStateVector(a.doc))).toBe(true);
    expect(validateStateVector(new Uint8Array([5, 1]))).toBe(false);
  });

  it("an update whose dependencies have not arrived is valid and waits", () => {
    const a = editor(1);
    a.doc.getText("t").insert(0, "ab");
    a.doc.getText("t").insert(1, "X");
    const [first, second] = a.updates as [Uint8Array, Uint8Array];
    expect(validateDocUpdate(second)).toBe(true);
    const early = applyDoc(undefined, second);
    expect(contentOf(early).text).toBe("");
    expect(contentOf(applyDoc(early, first)).text).toBe("aXb");
  });
});

describe("ydoc: properties", () => {
  it("merge is commutative, associative and idempotent (byte-equal states for editor updates)", () => {
    fc.assert(
      fc.property(threeStatesArb, ([a, b, c]) => {
        expect(mergeDoc(a, b)).toEqual(mergeDoc(b, a));
        expect(mergeDoc(mergeDoc(a, b), c)).toEqual(mergeDoc(a, mergeDoc(b, c)));
        expect(mergeDoc(a, a)).toEqual(a);
        expect(mergeDoc(a, emptyDoc())).toEqual(a);
      }),
    );
  });

  it("concurrent edits delivered in any order with duplicates give the same document", () => {
    fc.assert(
      fc.property(updatesArb, deliveryArb, deliveryArb, (updates, d1, d2) => {
        const s1 = stateOf(deliver(updates, d1));
        const s2 = stateOf(deliver(updates, d2));
        expect(s2).toEqual(s1);
        expect(docDigest(s2)).toEqual(docDigest(s1));
        // Real Y.Docs fed the raw updates (in other orders, with duplicates) agree with the merged state.
        const doc = new Y.Doc({ guid: "test" });
        for (const u of deliver(updates, d2)) Y.applyUpdate(doc, u);
        expect({ text: doc.getText("t").toString(), map: doc.getMap("m").toJSON() }).toEqual(contentOf(s1));
        doc.destroy();
      }),
    );
  });

  it("with overlapping updates (full states of garbage-collected docs) merges agree up to docDigest", () => {
    // Yjs writes a struct that two inputs both hold from whichever input its merge loop meets
    // first, and a gc'd doc holds a GC struct where another update has the deleted item: the
    // bytes then depend on merge order, the document does not.
    const overlappingArb = historyArb(["doc"], 24).map((h) => {
      const run = runHistory(h);
      const updates = run.ops.filter((op): op is DocOp => op.ns === "docs" && op.key === "k1").map((op) => op.update);
      for (const node of run.nodes) {
        const editor = node.editors.get("k1");
        if (editor !== undefined) updates.push(Y.encodeStateAsUpdate(editor));
      }
      return updates;
    });
    fc.assert(
      fc.property(overlappingArb, deliveryArb, deliveryArb, fc.array(fc.nat({ max: 2 }), { minLength: 40, maxLength: 40 }), (updates, d1, d2, pick) => {
        const s1 = stateOf(deliver(updates, d1));
        expect(docDigest(stateOf(deliver(updates, d2)))).toEqual(docDigest(s1));
        expect(contentOf(stateOf(deliver(updates, d2)))).toEqual(contentOf(s1));
        const part = (n: number) => stateOf(updates.filter((_, i) => pick[i % pick.length] !== n));
        const [a, b, c] = [part(0), part(1), part(2)];
        expect(docDigest(mergeDoc(a, b))).toEqual(docDigest(mergeDoc(b, a)));
        expect(docDigest(mergeDoc(mergeDoc(a, b), c))).toEqual(docDigest(mergeDoc(a, mergeDoc(b, c))));
        expect(docDigest(mergeDoc(a, a))).toEqual(docDigest(a));
        expect(docDigest(mergeDoc(mergeDoc(a, b), c))).toEqual(docDigest(s1));
      }),
    );
  });

  it("a diff against any earlier state brings that state up to date", () => {
    fc.assert(
      fc.property(updatesArb, fc.nat(), (updates, cut) => {
        const full = stateOf(updates);
        const early = stateOf(updates.slice(0, cut % (updates.length + 1)));
        const caughtUp = applyDoc(early, docDiff(full, docStateVector(early)));
        expect(docDigest(caughtUp)).toEqual(docDigest(full));
      }),
    );
  });

  it("validateDocUpdate never throws on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(typeof validateDocUpdate(bytes)).toBe("boolean");
      }),
    );
  });

  it("validateDocUpdate never throws on corrupted real updates, and what it accepts can be merged and loaded", () => {
    const edits = fc.array(
      fc.record({ kind: fc.constantFrom("set", "insert", "delete", "truncate"), pos: fc.nat(), byte: fc.nat({ max: 255 }) }),
      { minLength: 1, maxLength: 3 },
    );
    fc.assert(
      fc.property(updatesArb, fc.nat(), edits, (updates, which, muts) => {
        const state = stateOf(updates);
        const bytes = Array.from(updates.length === 0 ? state : (updates[which % updates.length] as Uint8Array));
        for (const m of muts) {
          const p = m.pos % (bytes.length + 1);
          if (m.kind === "set" && bytes.length > 0) bytes[p % bytes.length] = m.byte;
          else if (m.kind === "insert") bytes.splice(p, 0, m.byte);
          else if (m.kind === "delete") bytes.splice(p, 1);
          else if (m.kind === "truncate") bytes.length = p;
        }
        const candidate = Uint8Array.from(bytes);
        if (!validateDocUpdate(candidate)) return;
        const merged = applyDoc(state, candidate);
        const doc = new Y.Doc({ guid: "test" });
        Y.applyUpdate(doc, merged);
        doc.destroy();
      }),
    );
  });
});

describe("ydoc: compaction through a garbage-collecting Y.Doc", () => {
  /** A doc whose text was written and mostly deleted again, as updates of one editing session. */
  function churn(rounds: number, client = 5): Uint8Array[] {
    const d = new Y.Doc({ gc: false });
    d.clientID = client;
    const updates: Uint8Array[] = [];
    d.on("update", (u: Uint8Array) => updates.push(u));
    const t = d.getText("t");
    for (let i = 0; i < rounds; i++) {
      t.insert(t.length, `line ${i} ${"x".repeat(200)}\n`);
      if (t.length > 2000) t.delete(0, t.length - 500);
    }
    d.destroy();
    return updates;
  }

  it("is due each time a state past 64 KiB crosses a power of two, and never below", () => {
    expect(docCompactionDue(1000, 60_000)).toBe(false);
    expect(docCompactionDue(60_000, DOC_COMPACT_MIN_BYTES + 1)).toBe(true);
    expect(docCompactionDue(70_000, 80_000)).toBe(false);
    expect(docCompactionDue(131_073, 135_000)).toBe(false);
    expect(docCompactionDue(131_000, 131_073)).toBe(true);
  });

  it("drops deleted content once the state passes the bound, holding the same document, and stays mergeable with full states", () => {
    const updates = churn(1500);
    const compacted = stateOf(updates);
    const full = Y.mergeUpdates([emptyDoc(), ...updates]);
    expect(full.length).toBeGreaterThan(4 * DOC_COMPACT_MIN_BYTES);
    expect(compacted.length).toBeLessThan(full.length / 4);
    expect(contentOf(compacted)).toEqual(contentOf(full));
    expect(docDigest(compacted)).toEqual(docDigest(full));
    // A replica that never compacted, and a later concurrent edit: the joins agree.
    const other = new Y.Doc();
    other.clientID = 77;
    Y.applyUpdate(other, full);
    other.getText("t").insert(3, "<edit>");
    const edit = Y.encodeStateAsUpdate(other, docStateVector(full));
    expect(docDigest(applyDoc(compacted, edit))).toEqual(docDigest(applyDoc(full, edit)));
    expect(docDigest(mergeDoc(compacted, full))).toEqual(docDigest(full));
    expect(compactDoc(emptyDoc())).toEqual(emptyDoc());
  });
});

describe("ydoc: updates that are valid alone but not for their doc", () => {
  // Found by mutating a real update: it decodes and applies to an empty doc,
  // but names structs of this doc with other content, so the merge no longer loads.
  const state = Uint8Array.from(Buffer.from("01020100040101740b68656c6c6f20776f726c642801016d0161017d0100", "hex"));
  const bad = Uint8Array.from(Buffer.from("01010200c402040105072c2074686572650101010002", "hex"));

  it("are refused by validateDocUpdateFor, and taken by validateDocUpdate alone", () => {
    expect(validateDocUpdate(bad)).toBe(true);
    expect(validateDocUpdateFor(state, bad)).toBe(false);
    expect(validateDocUpdateFor(undefined, bad)).toBe(true);
    const good = new Y.Doc();
    Y.applyUpdate(good, state);
    good.getText("t").insert(0, ">");
    expect(validateDocUpdateFor(state, Y.encodeStateAsUpdate(good, docStateVector(state)))).toBe(true);
  });

  it("never make compaction throw: a state that does not load is kept as it is", () => {
    const poisoned = Y.mergeUpdates([state, bad]);
    expect(() => Y.applyUpdate(new Y.Doc(), poisoned)).toThrow();
    expect(compactDoc(poisoned)).toEqual(poisoned);
  });

  it("a compaction that saves less than a quarter is not kept, so a state just past a threshold does not pay for a pass on every op", () => {
    expect(keepsCompaction(100_000, 90_000)).toBe(false);
    expect(keepsCompaction(100_000, 75_000)).toBe(true);
    // Map entries under distinct keys: nothing to drop or join, so the merged state is kept past its threshold.
    const d = new Y.Doc({ gc: false });
    let state = emptyDoc();
    for (let i = 0; state.length <= DOC_COMPACT_MIN_BYTES; i++) {
      const sv = docStateVector(state);
      d.getMap("m").set(`k${i}`, "v".repeat(400));
      state = applyDoc(state, Y.encodeStateAsUpdate(d, sv));
    }
    expect(state.length).toBeGreaterThan(DOC_COMPACT_MIN_BYTES);
    expect(keepsCompaction(state.length, compactDoc(state).length)).toBe(false);
    d.destroy();
  });
});
