// One behavioural contract for every Storage implementation (Hono's shared
// case suites, applied to our port): SQLite and the in-memory store the
// simulator uses must be interchangeable, so both run exactly these tests.

import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CounterState, KvRegister, Op } from "../../src/core/op.js";
import type { Batch, Storage } from "../../src/storage/port.js";
import { readNodeMeta } from "../../src/storage/port.js";
import { A, B, C, byteOrder, conflict, counterOp, docOp, hlc, kvOp, reg, setOp } from "./fixtures.js";
import { runSnapshotContract } from "./snapshot-contract.js";

/** How the contract gets stores: fresh ones, and the same data after a restart. */
export interface StorageHarness {
  /** A new, empty store. */
  create(): Storage;
  /** Closes `storage` and opens the same data again, as a restarted node would. */
  reopen(storage: Storage): Storage;
}

/** A batch touching every part of the store, for atomicity and persistence checks. */
function fullBatch(): Batch {
  return {
    ops: [kvOp(A, 1, "k1", "\"v\""), counterOp(A, 2), setOp(A, 3), docOp(A, 4)],
    kv: [{ key: "k1", reg: reg("\"v\"", A, 1), deleted: false }],
    counters: [{ key: "c", state: { p: { [A]: 5 }, n: { [B]: 2 } } }],
    sets: [{ key: "s", state: { entries: { x: [`${A}:3:0`] }, removed: [`${B}:1:0`] } }],
    docs: [{ key: "d", state: new Uint8Array([1, 2, 3, 0, 255]) }],
    conflicts: [conflict("k1", 1_700_000_000_000)],
    idempotency: [{ key: "idem-1", requestHash: "h1", status: 200, body: "{\"key\":\"k1\"}", createdAtMs: 1000 }],
    appliedVv: { [A]: 4 },
    meta: { lastSeq: 4, lastHlc: hlc(1_700_000_000_004) },
  };
}

/** Asserts that nothing of fullBatch() is in `s`. */
function expectNothingOfFullBatch(s: Storage): void {
  expect(s.getOps(A, 1, 100, 100)).toEqual([]);
  expect(s.hasOp(A, 1)).toBe(false);
  expect(s.getKv("k1")).toBeUndefined();
  expect(s.getCounter("c")).toBeUndefined();
  expect(s.getSet("s")).toBeUndefined();
  expect(s.getDoc("d")).toBeUndefined();
  expect(s.conflicts(10)).toEqual([]);
  expect(s.getIdempotency("idem-1")).toBeUndefined();
  expect(s.appliedVv()).toEqual({});
  expect(s.opLogVv()).toEqual({});
  expect(s.getMeta("lastSeq")).toBeUndefined();
  expect(s.listKv({ limit: 10, includeDeleted: true })).toEqual([]);
}

/** Commits one kv op per key (seq = position) with the given tombstone flags. */
function putKeys(s: Storage, keys: readonly string[], deleted: (key: string) => boolean = () => false): void {
  s.commit({ kv: keys.map((key, i) => ({ key, reg: reg(deleted(key) ? null : JSON.stringify(key), A, i + 1), deleted: deleted(key) })) });
}

/** The UTF-8 bytes of `s`, one char per byte: JS string order on these is byte order. */
function latin1Bytes(s: string): string {
  return Buffer.from(s, "utf8").toString("latin1");
}

function keysOf(rows: readonly { key: string }[]): string[] {
  return rows.map((r) => r.key);
}

/** Runs the storage contract against the stores `harness` makes. */
export function runStorageContract(name: string, harness: StorageHarness): void {
  runSnapshotContract(name, harness);
  describe(`storage contract: ${name}`, () => {
    let s: Storage;
    beforeEach(() => {
      s = harness.create();
    });
    afterEach(() => {
      s.close();
    });

    describe("metadata", () => {
      it("starts empty, with defaults for the node's metadata", () => {
        expect(s.getMeta("epoch")).toBeUndefined();
        expect(readNodeMeta(s)).toEqual({ nodeId: undefined, epoch: 0, votedFor: undefined, lastSeq: 0, lastHlc: hlc(0) });
      });

      it("round-trips known and generic keys and keeps them across a reopen", () => {
        s.setMeta("nodeId", A);
        s.setMeta("epoch", 7);
        s.setMeta("votedFor", { epoch: 7, node: B });
        s.setMeta("lastSeq", 42);
        s.setMeta("lastHlc", hlc(1_700_000_000_123, 9));
        s.setMeta("custom", { list: [1, "x", null, true], nested: { "é😀": 1.5 } });
        s.setMeta("epoch", 8);
        s = harness.reopen(s);
        expect(readNodeMeta(s)).toEqual({ nodeId: A, epoch: 8, votedFor: { epoch: 7, node: B }, lastSeq: 42, lastHlc: hlc(1_700_000_000_123, 9) });
        expect(s.getMeta("custom")).toEqual({ list: [1, "x", null, true], nested: { "é😀": 1.5 } });
      });

      it("sets meta entries in a batch, skipping undefined values", () => {
        s.setMeta("keep", "old");
        s.commit({ meta: { epoch: 3, keep: undefined, other: [1, 2] } });
        expect(s.getMeta("epoch")).toBe(3);
        expect(s.getMeta("keep")).toBe("old");
        expect(s.getMeta("other")).toEqual([1, 2]);
      });

      it("refuses a value JSON cannot hold and keeps the old one", () => {
        s.setMeta("x", 1);
        expect(() => s.setMeta("x", 1n)).toThrow(TypeError);
        expect(() => s.setMeta("x", undefined)).toThrow(TypeError);
        expect(s.getMeta("x")).toBe(1);
      });
    });

    describe("commit", () => {
      it("stores every part of a batch, and a reopen keeps it", () => {
        const batch = fullBatch();
        expect(s.commit(batch)).toEqual({ opsInserted: 4 });
        s = harness.reopen(s);
        expect(s.getOps(A, 1, 4, 10)).toEqual(batch.ops);
        expect(s.getKv("k1")).toEqual(reg("\"v\"", A, 1));
        expect(s.getCounter("c")).toEqual({ p: { [A]: 5 }, n: { [B]: 2 } });
        expect(s.getSet("s")).toEqual({ entries: { x: [`${A}:3:0`] }, removed: [`${B}:1:0`] });
        expect(s.getDoc("d")).toEqual(new Uint8Array([1, 2, 3, 0, 255]));
        expect(s.conflicts(10)).toEqual(batch.conflicts);
        expect(s.getIdempotency("idem-1")).toEqual(batch.idempotency?.[0]);
        expect(s.appliedVv()).toEqual({ [A]: 4 });
        expect(s.opLogVv()).toEqual({ [A]: 4 });
        expect(s.getMeta("lastSeq")).toBe(4);
        expect(s.getMeta("lastHlc")).toEqual(hlc(1_700_000_000_004));
        expect(s.integrityCheck()).toBe("ok");
      });

      it("copies bytes: changing the caller's arrays later does not change what is stored", () => {
        const state = new Uint8Array([1, 2, 3]);
        const op = docOp(A, 1);
        s.commit({ ops: [op], docs: [{ key: "d", state }] });
        state[0] = 99;
        op.update[0] = 99;
        const read = s.getDoc("d") as Uint8Array;
        expect(read).toEqual(new Uint8Array([1, 2, 3]));
        read[1] = 99;
        expect(s.getDoc("d")).toEqual(new Uint8Array([1, 2, 3]));
        expect(s.getOps(A, 1, 1, 1)).toEqual([docOp(A, 1)]);
      });

      it("round-trips a counter's copies of keyed writes and its folded adjustment, keys special on JS objects too", () => {
        const copy = (origin: string, seq: number, wallMs: number) => ({ origin, seq, hlc: { wallMs, logical: 3 }, delta: -4 });
        const state: CounterState = {
          p: { [A]: 5 },
          n: { [A]: 8, [B]: 4 },
          keyed: [
            { key: "__proto__", requestHash: "h1", copies: [copy(A, 1, 1_700_000_000_000), copy(B, 1, 1_700_000_000_001)] },
            { key: "constructor", requestHash: "h2", copies: [copy(A, 2, 1_700_000_000_002)] },
          ],
          folded: -7,
        };
        s.commit({ counters: [{ key: "c", state }] });
        s = harness.reopen(s);
        expect(s.getCounter("c")).toEqual(state);
        expect(JSON.stringify(s.getCounter("c"))).toBe(JSON.stringify(state));
      });

      it("applies a batch's lists in order: a later state of the same key wins", () => {
        s.commit({
          kv: [{ key: "k", reg: reg("1"), deleted: false }, { key: "k", reg: reg(null, B, 2), deleted: true }],
          counters: [{ key: "c", state: { p: { [A]: 1 }, n: {} } }, { key: "c", state: { p: { [A]: 2 }, n: {} } }],
        });
        expect(s.getKv("k")).toEqual(reg(null, B, 2));
        expect(s.listKv({ limit: 10 })).toEqual([]);
        expect(s.getCounter("c")).toEqual({ p: { [A]: 2 }, n: {} });
      });

      it("leaves nothing behind when a batch fails midway, and keeps working", () => {
        // The meta entry is written last; a BigInt makes it fail after everything else was written.
        const failing: Batch = { ...fullBatch(), meta: { lastSeq: 4, bad: 10n } };
        expect(() => s.commit(failing)).toThrow();
        expectNothingOfFullBatch(s);
        expect(s.integrityCheck()).toBe("ok");
        s.commit(fullBatch());
        expect(s.opLogVv()).toEqual({ [A]: 4 });
        expect(s.getKv("k1")).toEqual(reg("\"v\"", A, 1));
      });

      it("leaves nothing behind when a batch holds a key that is not well-formed UTF-16", () => {
        const failing: Batch = { ...fullBatch(), sets: [{ key: "\ud800", state: { entries: {}, removed: [] } }] };
        expect(() => s.commit(failing)).toThrow(TypeError);
        expectNothingOfFullBatch(s);
      });
    });

    describe("op log", () => {
      it("ignores a dot it already has, across batches and within one", () => {
        expect(s.commit({ ops: [kvOp(A, 1, "k", "\"first\"")] })).toEqual({ opsInserted: 1 });
        expect(s.commit({ ops: [kvOp(A, 1, "k", "\"second\"")] })).toEqual({ opsInserted: 0 });
        expect(s.commit({ ops: [kvOp(A, 2), kvOp(A, 2, "other"), kvOp(B, 2)] })).toEqual({ opsInserted: 2 });
        expect(s.getOps(A, 1, 10, 10)).toEqual([kvOp(A, 1, "k", "\"first\""), kvOp(A, 2)]);
        expect(s.hasOp(A, 1)).toBe(true);
        expect(s.hasOp(B, 2)).toBe(true);
        expect(s.hasOp(B, 1)).toBe(false);
        expect(s.hasOp(C, 1)).toBe(false);
      });

      it("serves inclusive seq ranges of one origin, ascending and limited", () => {
        const seqs = [7, 3, 10, 1, 5, 2, 9, 4, 8, 6];
        s.commit({ ops: seqs.map((q) => kvOp(A, q, `k${q}`)) });
        s.commit({ ops: [counterOp(B, 1), setOp(B, 2), docOp(B, 3)] });
        const seqOf = (ops: Op[]): number[] => ops.map((o) => o.seq);
        expect(seqOf(s.getOps(A, 3, 6, 100))).toEqual([3, 4, 5, 6]);
        expect(seqOf(s.getOps(A, 3, 6, 2))).toEqual([3, 4]);
        expect(seqOf(s.getOps(A, 9, Number.MAX_SAFE_INTEGER, 100))).toEqual([9, 10]);
        expect(seqOf(s.getOps(A, 1, 1, 100))).toEqual([1]);
        expect(s.getOps(A, 11, 20, 100)).toEqual([]);
        expect(s.getOps(A, 6, 3, 100)).toEqual([]);
        expect(s.getOps(A, 1, 10, 0)).toEqual([]);
        expect(s.getOps(C, 1, 10, 100)).toEqual([]);
        expect(s.getOps(A, 4, 4, 1)).toEqual([kvOp(A, 4, "k4")]);
        expect(s.getOps(B, 1, 3, 10)).toEqual([counterOp(B, 1), setOp(B, 2), docOp(B, 3)]);
      });

      it("reports per origin the contiguous prefix of the log, stopping at gaps", () => {
        s.commit({ ops: [1, 2, 3, 5].map((q) => kvOp(A, q)) });
        s.commit({ ops: [kvOp(B, 2), kvOp(B, 3), kvOp(C, 1)] });
        expect(s.opLogVv()).toEqual({ [A]: 3, [C]: 1 });
        s.commit({ ops: [kvOp(A, 4)] });
        expect(s.opLogVv()).toEqual({ [A]: 5, [C]: 1 });
        s.commit({ ops: [kvOp(B, 1), kvOp(B, 7)] });
        s = harness.reopen(s);
        expect(s.opLogVv()).toEqual({ [A]: 5, [B]: 3, [C]: 1 });
      });

      it("counts the op log's rows and bytes, through commits, duplicates, compaction and a reopen", () => {
        expect(s.opLogStats()).toEqual({ ops: 0, bytes: 0 });
        s.commit({ ops: [1, 2, 3, 4].map((q) => kvOp(A, q)) });
        const four = s.opLogStats();
        expect(four.ops).toBe(4);
        expect(four.bytes).toBeGreaterThan(4);
        // A duplicate changes nothing; an op of a doc counts its payload.
        s.commit({ ops: [kvOp(A, 2), docOp(B, 1)] });
        const withDoc = s.opLogStats();
        expect(withDoc.ops).toBe(5);
        expect(withDoc.bytes).toBeGreaterThan(four.bytes);
        s.compactOps({ [A]: 2 });
        const compacted = s.opLogStats();
        expect(compacted.ops).toBe(3);
        expect(compacted.bytes).toBeLessThan(withDoc.bytes);
        // Counted again from the rows at open: the same figures.
        s = harness.reopen(s);
        expect(s.opLogStats()).toEqual(compacted);
      });

      it("lists tombstones in byte order and drops only those still unchanged", () => {
        putKeys(s, ["a", "b", "c", "d", "e"], (k) => k !== "c");
        s.commit({ kv: [{ key: "c", reg: reg("1"), deleted: false }] });
        const dead = s.listTombstones("", 10);
        expect(dead.map((r) => r.key)).toEqual(["a", "b", "d", "e"]);
        expect(s.listTombstones("b", 2).map((r) => r.key)).toEqual(["d", "e"]);
        expect(() => s.listTombstones("", 0)).not.toThrow();
        // "d" is written again (still a delete, another register) after the caller read it: it stays.
        s.commit({ kv: [{ key: "d", reg: reg(null, B, 9), deleted: true }] });
        expect(s.dropTombstones(dead)).toBe(3);
        expect(s.getKv("a")).toBeUndefined();
        expect(s.getKv("d")).toEqual(reg(null, B, 9));
        expect(s.getKv("c")).toEqual(reg("1"));
        expect(s.listKv({ limit: 10, includeDeleted: true }).map((r) => r.key)).toEqual(["c", "d"]);
        // A live row given as a tombstone is never dropped.
        expect(s.dropTombstones([{ key: "c", reg: reg("1"), deleted: true }])).toBe(0);
        s = harness.reopen(s);
        expect(s.listTombstones("", 10).map((r) => r.key)).toEqual(["d"]);
      });

      it("folds kv rows only while they are unchanged, and reads the folded form at once (read cache included) and after a reopen", () => {
        const full = (valueJson: string | null, seq: number): KvRegister => ({ siblings: [{ valueJson, hlc: { wallMs: seq, logical: 0 }, origin: B, seq, vv: { [A]: 4, [B]: seq } }] });
        const dotOnly = (r: KvRegister): KvRegister => ({ siblings: r.siblings.map((v) => ({ ...v, vv: { [v.origin]: v.seq } })) });
        s.commit({ kv: [{ key: "f", reg: full('"x"', 2), deleted: false }, { key: "g", reg: full(null, 3), deleted: true }, { key: "h", reg: full('"y"', 5), deleted: false }] });
        expect(s.getKv("f")).toEqual(full('"x"', 2)); // now in the read cache
        // "h" is written again after the caller read it: it stays as written.
        s.commit({ kv: [{ key: "h", reg: full('"z"', 6), deleted: false }] });
        const folds = [full('"x"', 2), full(null, 3), full('"y"', 5)].map((from, i) => ({ key: ["f", "g", "h"][i] as string, from, to: dotOnly(from) }));
        expect(s.foldKv(folds)).toBe(2);
        expect(s.getKv("f")).toEqual(dotOnly(full('"x"', 2)));
        expect(s.getKv("g")).toEqual(dotOnly(full(null, 3)));
        expect(s.getKv("h")).toEqual(full('"z"', 6));
        expect(s.listTombstones("", 10).map((r) => r.key)).toEqual(["g"]);
        expect(s.foldKv([])).toBe(0);
        s = harness.reopen(s);
        expect(s.getKv("f")).toEqual(dotOnly(full('"x"', 2)));
        expect(s.listKv({ limit: 10 }).map((r) => r.key)).toEqual(["f", "h"]);
      });

      it("compacts stable ops, remembers them as logged, and keeps counting from the floor", () => {
        s.commit({ ops: [1, 2, 3, 4, 5].map((q) => kvOp(A, q)) });
        expect(s.compactOps({ [A]: 3 })).toBe(3);
        expect(s.getOps(A, 1, 10, 10).map((o) => o.seq)).toEqual([4, 5]);
        expect(s.opLogFloor()).toEqual({ [A]: 3 });
        expect(s.opLogVv()).toEqual({ [A]: 5 });
        expect(s.hasOp(A, 2)).toBe(true);
        expect(s.commit({ ops: [kvOp(A, 2)] })).toEqual({ opsInserted: 0 });
        expect(s.getOps(A, 1, 3, 10)).toEqual([]);
        // The floor never goes back.
        expect(s.compactOps({ [A]: 2 })).toBe(0);
        expect(s.opLogFloor()).toEqual({ [A]: 3 });
        // A floor for an origin without logged ops (e.g. from a snapshot), then ops after it.
        expect(s.compactOps({ [B]: 4 })).toBe(0);
        expect(s.opLogVv()).toEqual({ [A]: 5, [B]: 4 });
        s.commit({ ops: [kvOp(B, 6)] });
        expect(s.opLogVv()).toEqual({ [A]: 5, [B]: 4 });
        s.commit({ ops: [kvOp(B, 5)] });
        s = harness.reopen(s);
        expect(s.opLogVv()).toEqual({ [A]: 5, [B]: 6 });
        expect(s.opLogFloor()).toEqual({ [A]: 3, [B]: 4 });
        expect(s.compactOps({ [A]: 5, [B]: 6 })).toBe(4);
        expect(s.opLogVv()).toEqual({ [A]: 5, [B]: 6 });
        expect(s.integrityCheck()).toBe("ok");
      });
    });

    it("keeps an op's idempotency key and request hash through commit, getOps and a reopen", () => {
      const idem = (key: string) => ({ key, requestHash: `sha256:${key}` });
      const ops: Op[] = [
        { ...kvOp(A, 1, "k", "\"v\""), idem: idem("retry-é😀") },
        kvOp(A, 2, "k", null),
        { ...counterOp(A, 3, "c", -4), idem: idem("c-1") },
        { ...setOp(A, 4), idem: idem("s-1") },
        { ...docOp(A, 5), idem: idem("d-1") },
      ];
      expect(s.commit({ ops })).toEqual({ opsInserted: 5 });
      expect(s.getOps(A, 1, 5, 10)).toEqual(ops);
      // An op logged without one reads back without the field at all, not as undefined.
      expect("idem" in (s.getOps(A, 2, 2, 1)[0] as Op)).toBe(false);
      // A dot already logged keeps what it was logged with.
      expect(s.commit({ ops: [{ ...kvOp(A, 1, "k", "\"v\""), idem: idem("other") }] })).toEqual({ opsInserted: 0 });
      s = harness.reopen(s);
      expect(s.getOps(A, 1, 5, 10)).toEqual(ops);
      expect(s.getOps(A, 1, 1, 1)[0]?.idem).toEqual(idem("retry-é😀"));
      expect(s.integrityCheck()).toBe("ok");
    });

    it("merges the node vector entrywise by max: it never goes back", () => {
      s.commit({ appliedVv: { [A]: 5, [B]: 2 } });
      s.commit({ appliedVv: { [A]: 3, [C]: 1 } });
      expect(s.appliedVv()).toEqual({ [A]: 5, [B]: 2, [C]: 1 });
      s = harness.reopen(s);
      expect(s.appliedVv()).toEqual({ [A]: 5, [B]: 2, [C]: 1 });
    });

    describe("listKv", () => {
      // Byte order, not UTF-16 order: U+1F600 is a surrogate pair (D83D DE00), which
      // JavaScript sorts before U+FFFF, while its UTF-8 (F0 ...) sorts after (EF ...).
      const ordered = [
        "A", "a", "a%", "a_b", "ab", "a\u{10FFFF}", "a\u{10FFFF}b", "b", "\u00e9", "\ud7ff", "\ue000", "\uffff", "\u{1F600}",
        "\u{10FFFF}", "\u{10FFFF}a",
      ];

      beforeEach(() => {
        // Commit in a scrambled order, so order comes from the store.
        putKeys(s, [...ordered].reverse().sort((x, y) => x.length - y.length));
      });

      it("lists every key in UTF-8 byte order", () => {
        expect([...ordered].sort(byteOrder)).toEqual(ordered);
        const rows = s.listKv({ limit: 100 });
        expect(keysOf(rows)).toEqual(ordered);
        expect(rows[0]).toEqual({ key: "A", reg: s.getKv("A"), deleted: false });
        expect(keysOf(s.listKv({ prefix: "", limit: 100 }))).toEqual(ordered);
      });

      it("matches prefixes by exact bytes: no case folding, no wildcards", () => {
        const list = (prefix: string): string[] => keysOf(s.listKv({ prefix, limit: 100 }));
        expect(list("a")).toEqual(["a", "a%", "a_b", "ab", "a\u{10FFFF}", "a\u{10FFFF}b"]);
        expect(list("a_")).toEqual(["a_b"]);
        expect(list("a%")).toEqual(["a%"]);
        expect(list("A")).toEqual(["A"]);
        expect(list("a\u{10FFFF}")).toEqual(["a\u{10FFFF}", "a\u{10FFFF}b"]);
        expect(list("\u{10FFFF}")).toEqual(["\u{10FFFF}", "\u{10FFFF}a"]);
        expect(list("\ud7ff")).toEqual(["\ud7ff"]);
        expect(list("\u{1F600}")).toEqual(["\u{1F600}"]);
        expect(list("ab")).toEqual(["ab"]);
        expect(list("abc")).toEqual([]);
        expect(list("zzz")).toEqual([]);
      });

      it("starts after `after` (exclusive), within the prefix", () => {
        const list = (prefix: string | undefined, after: string, limit = 100): string[] => keysOf(s.listKv({ prefix, after, limit }));
        expect(list(undefined, "ab")).toEqual(ordered.slice(ordered.indexOf("ab") + 1));
        expect(list(undefined, "aa")).toEqual(ordered.slice(ordered.indexOf("ab")));
        expect(list(undefined, "\uffff", 2)).toEqual(["\u{1F600}", "\u{10FFFF}"]);
        expect(list(undefined, "\u{10FFFF}a")).toEqual([]);
        expect(list("a", "A")).toEqual(["a", "a%", "a_b", "ab", "a\u{10FFFF}", "a\u{10FFFF}b"]);
        expect(list("a", "a_b")).toEqual(["ab", "a\u{10FFFF}", "a\u{10FFFF}b"]);
        expect(list("a", "a\u{10FFFF}b")).toEqual([]);
        expect(list("a", "b")).toEqual([]);
      });

      it("pages through everything when each page's last key is passed back as `after`", () => {
        for (const prefix of ["", "a", "\u{10FFFF}"]) {
          const seen: string[] = [];
          let after: string | undefined;
          for (let page = 0; page < 20; page++) {
            const rows = s.listKv({ prefix, after, limit: 2 });
            seen.push(...keysOf(rows));
            if (rows.length < 2) break;
            after = rows[rows.length - 1]?.key;
          }
          expect(seen).toEqual(ordered.filter((k) => k.startsWith(prefix)));
        }
      });

      it("skips keys whose winner is a tombstone, and the limit counts live keys only", () => {
        const keys = ["k1", "k2", "k3", "k4", "k5", "k6"];
        putKeys(s, keys, (k) => ["k2", "k3", "k4"].includes(k));
        expect(keysOf(s.listKv({ prefix: "k", limit: 2 }))).toEqual(["k1", "k5"]);
        expect(keysOf(s.listKv({ prefix: "k", after: "k1", limit: 1 }))).toEqual(["k5"]);
        expect(keysOf(s.listKv({ prefix: "k", after: "k1", limit: 2 }))).toEqual(["k5", "k6"]);
        const all = s.listKv({ prefix: "k", limit: 10, includeDeleted: true });
        expect(all.map((r) => [r.key, r.deleted])).toEqual(keys.map((k) => [k, ["k2", "k3", "k4"].includes(k)]));
        s.commit({ kv: [{ key: "k3", reg: reg("\"back\"", B, 9), deleted: false }] });
        expect(keysOf(s.listKv({ prefix: "k", limit: 3 }))).toEqual(["k1", "k3", "k5"]);
        expect(s.listKv({ prefix: "k", limit: 0 })).toEqual([]);
      });

      it("refuses out-of-range limits and keys that are not well-formed", () => {
        expect(() => s.listKv({ limit: -1 })).toThrow(RangeError);
        expect(() => s.listKv({ limit: 10_001 })).toThrow(RangeError);
        expect(() => s.listKv({ limit: 1.5 })).toThrow(RangeError);
        expect(() => s.listKv({ prefix: "a\udc00", limit: 1 })).toThrow(TypeError);
        expect(() => s.listKv({ after: "\ud83d", limit: 1 })).toThrow(TypeError);
      });
    });

    it("lists like a byte-order model for random unicode keys, prefixes and cursors", () => {
      const char = fc.oneof(
        fc.constantFrom("a", "b", "A", "%", "_", "\u00e9", "\ud7ff", "\ue000", "\uffff", "\u{10000}", "\u{1F600}", "\u{10FFFF}"),
        fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
      );
      const key = fc.string({ unit: char, minLength: 1, maxLength: 4 });
      // key -> tombstone flag and UTF-8 bytes as a latin1 string (compares like the bytes, but fast).
      const model = new Map<string, { deleted: boolean; bytes: string }>();
      fc.assert(
        fc.property(
          fc.array(fc.tuple(key, fc.boolean()), { maxLength: 4 }),
          fc.oneof(key, fc.constant("")),
          fc.nat(), fc.nat(4), fc.option(key), fc.integer({ min: 1, max: 6 }), fc.boolean(),
          (writes, randomPrefix, pick, cut, after, limit, includeDeleted) => {
            if (writes.length > 0) {
              s.commit({ kv: writes.map(([k, deleted]) => ({ key: k, reg: reg(deleted ? null : "1"), deleted })) });
              for (const [k, deleted] of writes) model.set(k, { deleted, bytes: latin1Bytes(k) });
            }
            // Half the time, a prefix cut from a stored key, so prefixes hit.
            const keys = [...model.keys()];
            const source = keys.length > 0 && pick % 2 === 0 ? (keys[pick % keys.length] as string) : undefined;
            const prefix = source === undefined ? randomPrefix : Array.from(source).slice(0, cut).join("");
            const cursor = after ?? undefined;
            const cursorBytes = cursor === undefined ? undefined : latin1Bytes(cursor);
            const expected = [...model.entries()]
              .filter(([k, m]) => k.startsWith(prefix) && (includeDeleted || !m.deleted))
              .filter(([, m]) => cursorBytes === undefined || m.bytes > cursorBytes)
              .sort(([, x], [, y]) => (x.bytes < y.bytes ? -1 : 1))
              .slice(0, limit)
              .map(([k]) => k);
            expect(keysOf(s.listKv({ prefix, after: cursor, limit, includeDeleted }))).toEqual(expected);
          },
        ),
      );
      expect(s.integrityCheck()).toBe("ok");
    });

    it("returns conflicts newest first, limited", () => {
      s.commit({ conflicts: [conflict("k1", 1000), conflict("k2", 3000)] });
      s.commit({ conflicts: [conflict("k3", 2000)] });
      // Newest means most recently recorded, whatever the HLCs say.
      expect(s.conflicts(10).map((c) => c.key)).toEqual(["k3", "k2", "k1"]);
      expect(s.conflicts(2)).toEqual([conflict("k3", 2000), conflict("k2", 3000)]);
      expect(s.conflicts(0)).toEqual([]);
      s = harness.reopen(s);
      expect(s.conflicts(1)).toEqual([conflict("k3", 2000)]);
    });

    it("keeps idempotency records with the write they answer, and prunes them by age", () => {
      const rec = { key: "req-1", requestHash: "sha256:abc", status: 200, body: "{\"ok\":true}", createdAtMs: 5000 };
      s.commit({ ops: [kvOp(A, 1)], kv: [{ key: "k", reg: reg("1"), deleted: false }], idempotency: [rec] });
      expect(s.getIdempotency("req-1")).toEqual(rec);
      expect(s.getIdempotency("req-2")).toBeUndefined();
      s.commit({ idempotency: [{ ...rec, key: "req-2", createdAtMs: 9000 }] });
      s = harness.reopen(s);
      expect(s.getIdempotency("req-1")).toEqual(rec);
      expect(s.pruneIdempotency(5000)).toBe(0);
      expect(s.pruneIdempotency(5001)).toBe(1);
      expect(s.getIdempotency("req-1")).toBeUndefined();
      expect(s.getIdempotency("req-2")?.createdAtMs).toBe(9000);
    });

    it("reclaims free space within the bound it is given, and keeps every row", () => {
      const body = "y".repeat(4096);
      s.commit({ ops: [kvOp(A, 1)], kv: [{ key: "k", reg: reg("1"), deleted: false }], idempotency: Array.from({ length: 300 }, (_, i) => ({ key: `r-${i}`, requestHash: "h", status: 200, body, createdAtMs: 10 })) });
      expect(s.pruneIdempotency(11)).toBe(300);
      for (let n = s.reclaimSpace(10); n > 0; n = s.reclaimSpace(10)) expect(n).toBeLessThanOrEqual(10);
      expect(s.reclaimSpace(10)).toBe(0);
      expect(() => s.reclaimSpace(0)).toThrow(/maxPages/);
      expect(() => s.reclaimSpace(1.5)).toThrow(/maxPages/);
      expect(s.getKv("k")).toEqual(reg("1"));
      expect(s.getOps(A, 1, 1, 10)).toEqual([kvOp(A, 1)]);
      expect(s.integrityCheck()).toBe("ok");
    });

    it("passes its integrity check and reports a size that grows with data", () => {
      expect(s.integrityCheck()).toBe("ok");
      const before = s.sizeBytes();
      expect(before).toBeGreaterThanOrEqual(0);
      const big = "x".repeat(100_000);
      s.commit({ ops: [kvOp(A, 1, "big", JSON.stringify(big))], kv: [{ key: "big", reg: reg(JSON.stringify(big)), deleted: false }] });
      expect(s.sizeBytes()).toBeGreaterThan(before + 100_000);
      expect(s.integrityCheck()).toBe("ok");
    });

    it("refuses every call after close (closing twice is fine)", () => {
      s.close();
      s.close();
      expect(() => s.getKv("k")).toThrow();
      expect(() => s.commit({ ops: [kvOp(A, 1)] })).toThrow();
      expect(() => s.getMeta("epoch")).toThrow();
      expect(() => s.listKv({ limit: 1 })).toThrow();
    });
  });
}
