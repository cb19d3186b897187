// The snapshot part of the storage contract (run by contract.ts for every
// store): a snapshot is one consistent read of the whole state, paged within
// its bounds; a received one is staged, then installed in one step with the
// core's rules (src/core/snapshot.ts): what its vector covers is replaced,
// what it does not is kept, and an install that fails changes nothing.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { HLC_ZERO } from "../../src/core/hlc.js";
import type { NodeId } from "../../src/core/ids.js";
import type { KvRegister, KvVersion, Op } from "../../src/core/op.js";
import { installRules, type SnapshotHeader, type SnapshotRow } from "../../src/core/snapshot.js";
import type { VersionVector } from "../../src/core/version-vector.js";
import type { IdempotencyRecord, Storage } from "../../src/storage/port.js";
import { idemRowData, textRowData } from "../../src/storage/snapshot-install.js";
import { encodeKvState } from "../../src/core/codec/kv-state.js";
import type { StorageHarness } from "./contract.js";
import { A, B, C, counterOp, hlc, kvOp } from "./fixtures.js";

/** A kv version (origin, seq) that saw `ctx` besides its own dot. */
function ver(origin: NodeId, seq: number, valueJson: string | null, ctx: VersionVector = {}): KvVersion {
  return { valueJson, hlc: hlc(1_700_000_000_000 + seq), origin, seq, vv: { ...ctx, [origin]: seq } };
}
const regOf = (...siblings: KvVersion[]): KvRegister => ({ siblings });

/** A Yjs update in which client `clientID` inserted `text`. */
function docEdit(clientID: number, text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = clientID;
  doc.getText("t").insert(0, text);
  const u = Y.encodeStateAsUpdate(doc);
  doc.destroy();
  return u;
}
function docText(state: Uint8Array | undefined): string {
  const doc = new Y.Doc();
  if (state !== undefined) Y.applyUpdate(doc, state);
  const text = doc.getText("t").toString();
  doc.destroy();
  return text;
}

const idemRec = (key: string, requestHash: string, createdAtMs = 1000): IdempotencyRecord => ({ key, requestHash, status: 200, body: `{"k":"${key}"}`, createdAtMs });
const kvRow = (key: string, r: KvRegister): SnapshotRow => ({ ns: "kv", key, data: textRowData(JSON.stringify(r)) });
const textRow = (ns: "counters" | "sets", key: string, state: unknown): SnapshotRow => ({ ns, key, data: textRowData(JSON.stringify(state)) });

/** Reads a whole snapshot in pages of (maxRows, maxBytes), checking each page's bounds. */
function readAll(s: Storage, maxRows: number, maxBytes: number): { header: SnapshotHeader; rows: SnapshotRow[] } {
  const reader = s.openSnapshot();
  try {
    const rows: SnapshotRow[] = [];
    for (let pages = 0; ; pages++) {
      expect(pages, "a snapshot ends").toBeLessThan(100_000);
      const page = reader.next(maxRows, maxBytes);
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(maxRows);
      // No more rows once maxBytes are taken: every row but the last fits under the budget.
      const before = page.slice(0, -1).reduce((n, r) => n + r.data.length + r.key.length, 0);
      expect(before).toBeLessThan(maxBytes);
      rows.push(...page);
    }
    expect(reader.next(maxRows, maxBytes)).toEqual([]);
    return { header: reader.header, rows };
  } finally {
    reader.close();
  }
}

const rowId = (r: SnapshotRow): string => `${r.ns} ${r.key}`;
const utf8 = new TextDecoder();

/** Everything the install may touch, as plain data to compare. */
function contents(s: Storage, keys: { kv: readonly string[]; counters: readonly string[]; sets: readonly string[]; docs: readonly string[]; idem: readonly string[] }): unknown {
  return {
    kv: s.listKv({ limit: 1000, includeDeleted: true }),
    kvPoint: keys.kv.map((k) => s.getKv(k)),
    counters: keys.counters.map((k) => s.getCounter(k)),
    sets: keys.sets.map((k) => s.getSet(k)),
    docs: keys.docs.map((k) => s.getDoc(k)),
    idem: keys.idem.map((k) => s.getIdempotency(k)),
    appliedVv: s.appliedVv(),
    opLogVv: s.opLogVv(),
    opLogFloor: s.opLogFloor(),
    opLogStats: s.opLogStats(),
    ops: [A, B, C].map((o) => s.getOps(o, 1, 100, 100)),
    meta: ["lastSeq", "lastHlc", "sweptVv"].map((k) => s.getMeta(k)),
    staged: s.stagedSnapshotRows(),
  };
}

/** Runs the snapshot cases of the storage contract against the stores `harness` makes. */
export function runSnapshotContract(name: string, harness: StorageHarness): void {
  describe(`storage contract: ${name}: snapshots`, () => {
    let s: Storage;
    beforeEach(() => {
      s = harness.create();
    });
    afterEach(() => {
      s.close();
    });

    describe("openSnapshot", () => {
      /** Many rows of every kind, more than one query page of each table, some large. */
      function fill(): Map<string, SnapshotRow> {
        const expected = new Map<string, SnapshotRow>();
        const kv = Array.from({ length: 600 }, (_, i) => ({ key: `k${String(i).padStart(4, "0")}${i % 7 === 0 ? "é😀" : ""}`, reg: regOf(ver(A, i + 1, i % 5 === 0 ? null : `"v${i}"`)), deleted: i % 5 === 0 }));
        const counters = Array.from({ length: 300 }, (_, i) => ({ key: `c${i}`, state: { p: { [A]: i }, n: {} } }));
        const sets = [{ key: "s", state: { entries: { x: [`${A}:1:0`] }, removed: [] } }];
        const docs = Array.from({ length: 40 }, (_, i) => ({ key: `d${i}`, state: i % 10 === 0 ? new Uint8Array(5000).fill(i) : new Uint8Array([i, 0, 255]) }));
        const idempotency = Array.from({ length: 20 }, (_, i) => idemRec(`i${i}`, `h${i}`, 100 + i));
        s.commit({ kv, counters, sets, docs, idempotency, appliedVv: { [A]: 600, [B]: 3 }, meta: { sweptVv: { [B]: 2 }, lastHlc: hlc(1_700_000_000_999, 4) } });
        for (const r of kv) expected.set(`kv ${r.key}`, { ns: "kv", key: r.key, data: textRowData(encodeKvState(r.reg)) });
        for (const r of counters) expected.set(`counters ${r.key}`, { ns: "counters", key: r.key, data: textRowData(JSON.stringify(r.state)) });
        for (const r of sets) expected.set(`sets ${r.key}`, { ns: "sets", key: r.key, data: textRowData(JSON.stringify(r.state)) });
        for (const r of docs) expected.set(`docs ${r.key}`, { ns: "docs", key: r.key, data: r.state });
        for (const r of idempotency) expected.set(`idem ${r.key}`, { ns: "idem", key: r.key, data: idemRowData(r) });
        return expected;
      }

      it("has a header of the node vector, the swept context and the clock; defaults on an empty store", () => {
        expect(readAll(s, 10, 1000)).toEqual({ header: { vv: {}, sweptVv: {}, hlc: HLC_ZERO }, rows: [] });
        fill();
        expect(readAll(s, 10, 1_000_000).header).toEqual({ vv: { [A]: 600, [B]: 3 }, sweptVv: { [B]: 2 }, hlc: hlc(1_700_000_000_999, 4) });
      });

      for (const [maxRows, maxBytes] of [[1, 1], [1000, 1_000_000_000], [3, 40], [1000, 20_000], [257, 1_000_000_000], [1000, 1], [17, 6000]] as const) {
        it(`gives every row exactly once, in pages of at most ${maxRows} rows and about ${maxBytes} bytes`, () => {
          const expected = fill();
          const { rows } = readAll(s, maxRows, maxBytes);
          const ids = rows.map(rowId);
          expect(new Set(ids).size, "no row twice").toBe(ids.length);
          // One comparison of everything (a toEqual per row is slow): id and data of each row.
          const flat = (list: Iterable<SnapshotRow>): string[] => [...list].map((r) => `${rowId(r)} ${Buffer.from(r.data).toString("hex")}`).sort();
          expect(flat(rows)).toEqual(flat(expected.values()));
          // Namespace by namespace, as the port says.
          const order = rows.map((r) => r.ns).filter((ns, i, all) => i === 0 || all[i - 1] !== ns);
          expect(order).toEqual(["kv", "counters", "sets", "docs", "idem"]);
        });
      }

      it("is one consistent read: what is committed after it opened is not in it", () => {
        fill();
        const reader = s.openSnapshot();
        try {
          const first = reader.next(10, 1_000_000);
          // Changes everywhere: a key read already, one not read yet, new keys, the vector and the meta.
          s.commit({
            ops: [kvOp(A, 601, "k0000é😀"), kvOp(A, 602, "k0599"), kvOp(A, 603, "zzz")],
            kv: [
              { key: "k0000é😀", reg: regOf(ver(A, 601, '"late"')), deleted: false },
              { key: "k0599", reg: regOf(ver(A, 602, '"late"')), deleted: false },
              { key: "zzz", reg: regOf(ver(A, 603, '"late"')), deleted: false },
            ],
            counters: [{ key: "c299", state: { p: { [A]: 1_000 }, n: {} } }, { key: "c999", state: { p: { [A]: 1 }, n: {} } }],
            docs: [{ key: "d39", state: new Uint8Array([9, 9, 9]) }],
            idempotency: [idemRec("i99", "late")],
            appliedVv: { [A]: 603, [C]: 1 },
            meta: { sweptVv: { [C]: 1 }, lastHlc: hlc(1_800_000_000_000) },
          });
          s.dropTombstones([{ key: "k0005", reg: regOf(ver(A, 6, null)), deleted: true }]);
          const rows = [...first];
          for (let page = reader.next(100, 1_000_000); page.length > 0; page = reader.next(100, 1_000_000)) rows.push(...page);
          expect(reader.header).toEqual({ vv: { [A]: 600, [B]: 3 }, sweptVv: { [B]: 2 }, hlc: hlc(1_700_000_000_999, 4) });
          const byId = new Map(rows.map((r) => [rowId(r), r]));
          expect(rows.length).toBe(byId.size);
          expect(byId.size).toBe(600 + 300 + 1 + 40 + 20);
          expect(utf8.decode(byId.get("kv k0599")?.data)).toBe(encodeKvState(regOf(ver(A, 600, '"v599"'))));
          expect(byId.has("kv k0005")).toBe(true);
          expect(byId.has("kv zzz")).toBe(false);
          expect(utf8.decode(byId.get("counters c299")?.data)).toBe(JSON.stringify({ p: { [A]: 299 }, n: {} }));
          expect(byId.has("counters c999")).toBe(false);
          expect(byId.get("docs d39")?.data).toEqual(new Uint8Array([39, 0, 255]));
          expect(byId.has("idem i99")).toBe(false);
        } finally {
          reader.close();
        }
        // A snapshot opened now sees the new state.
        expect(readAll(s, 1000, 1_000_000_000).header.vv).toEqual({ [A]: 603, [B]: 3, [C]: 1 });
      });

      it("refuses next() after close; closing twice is fine", () => {
        fill();
        const reader = s.openSnapshot();
        reader.close();
        reader.close();
        expect(() => reader.next(1, 1)).toThrow(/closed/);
      });
    });

    describe("staging", () => {
      it("stages rows, keeps the later of a row staged twice, counts them, and clears them", () => {
        expect(s.stagedSnapshotRows()).toBe(0);
        s.stageSnapshotRows([kvRow("a", regOf(ver(A, 1, "1"))), textRow("counters", "a", { p: {}, n: {} })]);
        s.stageSnapshotRows([]);
        s.stageSnapshotRows([kvRow("a", regOf(ver(A, 2, "2"))), { ns: "idem", key: "a", data: idemRowData(idemRec("a", "h")) }]);
        expect(s.stagedSnapshotRows()).toBe(3);
        s.clearSnapshotStage();
        expect(s.stagedSnapshotRows()).toBe(0);
        s.clearSnapshotStage();
        expect(s.stagedSnapshotRows()).toBe(0);
      });

      it("installs nothing while rows are only staged", () => {
        s.stageSnapshotRows([kvRow("a", regOf(ver(A, 1, "1")))]);
        expect(s.getKv("a")).toBeUndefined();
        expect(s.listKv({ limit: 10, includeDeleted: true })).toEqual([]);
      });
    });

    describe("installSnapshot", () => {
      // The receiver is B; the snapshot covers A:1-3, B:2 and C:3.
      const header: SnapshotHeader = { vv: { [A]: 3, [B]: 2, [C]: 3 }, sweptVv: { [A]: 2 }, hlc: hlc(1_800_000_000_000) };
      const localDoc = docEdit(1, "local ");
      const snapDoc = docEdit(2, "snap ");
      const KEYS = { kv: ["covered", "gone", "mine", "new", "new-dead", "mixed", "dead"], counters: ["c", "c-local"], sets: ["s"], docs: ["d", "d2"], idem: ["i1", "i2"] };
      const logged: Op[] = [kvOp(A, 1, "covered"), kvOp(A, 2, "gone"), kvOp(A, 3, "mixed"), kvOp(A, 4, "x"), kvOp(C, 4, "mixed"), counterOp(C, 5, "c")];

      /** The receiver's state before the install: ops past the snapshot's vector and ops it covers. */
      function local(): void {
        s.commit({
          ops: logged,
          kv: [
            { key: "covered", reg: regOf(ver(A, 1, '"old"')), deleted: false },
            { key: "gone", reg: regOf(ver(A, 2, '"deleted there"')), deleted: false },
            { key: "mine", reg: regOf(ver(C, 5, '"unreplicated"')), deleted: false },
            { key: "mixed", reg: regOf(ver(A, 3, '"covered"'), ver(C, 4, '"beyond"')), deleted: false },
            { key: "dead", reg: regOf(ver(B, 1, null)), deleted: true },
          ],
          counters: [{ key: "c", state: { p: { [A]: 5, [C]: 1 }, n: {} } }, { key: "c-local", state: { p: { [C]: 7 }, n: {} } }],
          sets: [{ key: "s", state: { entries: { x: [`${C}:4:0`] }, removed: [] } }],
          docs: [{ key: "d", state: localDoc }],
          idempotency: [idemRec("i1", "local-hash")],
          appliedVv: { [A]: 4, [B]: 1, [C]: 5 },
          meta: { lastSeq: 1, lastHlc: hlc(1_700_000_000_000), sweptVv: { [C]: 1 } },
        });
        // A warm kv cache must not outlive the install.
        for (const k of KEYS.kv) s.getKv(k);
      }
      /** The snapshot's rows, in an order unlike the stores' own. */
      const snapshotRows = (): SnapshotRow[] => [
        { ns: "idem", key: "i2", data: idemRowData(idemRec("i2", "snap-hash", 2000)) },
        { ns: "idem", key: "i1", data: idemRowData(idemRec("i1", "snap-hash", 2000)) },
        { ns: "docs", key: "d2", data: snapDoc },
        { ns: "docs", key: "d", data: snapDoc },
        textRow("sets", "s", { entries: { y: [`${A}:2:0`] }, removed: [] }),
        textRow("counters", "c", { p: { [A]: 3, [B]: 2 }, n: { [A]: 1 } }),
        kvRow("new", regOf(ver(B, 2, '"from the snapshot"'))),
        kvRow("new-dead", regOf(ver(A, 3, null, { [A]: 2 }))),
        kvRow("mixed", regOf(ver(B, 1, '"snap"'))),
        kvRow("covered", regOf(ver(A, 3, '"new"', { [A]: 2 }))),
      ];

      it("merges the staged rows with the rules: covered local versions replaced or gone, the rest kept and merged", () => {
        local();
        s.stageSnapshotRows(snapshotRows());
        const result = s.installSnapshot(header, installRules(B, header));
        expect(result.rows).toBe(10);
        expect(result.removedKv).toBe(2);
        expect([...result.docKeys].sort()).toEqual(["d", "d2"]);
        const check = (st: Storage): void => {
          expect(st.getKv("covered")).toEqual(regOf(ver(A, 3, '"new"', { [A]: 2 })));
          expect(st.getKv("gone"), "covered and absent in the snapshot: deleted and swept there").toBeUndefined();
          expect(st.getKv("dead"), "a covered local tombstone goes too").toBeUndefined();
          expect(st.getKv("mine"), "beyond the vector: kept").toEqual(regOf(ver(C, 5, '"unreplicated"')));
          expect(st.getKv("mixed")?.siblings.map((v) => `${v.origin}:${v.seq}`).sort()).toEqual([`${B}:1`, `${C}:4`]);
          expect(st.getKv("new")).toEqual(regOf(ver(B, 2, '"from the snapshot"')));
          expect(st.listKv({ limit: 10, includeDeleted: true }).map((r) => r.key)).toEqual(["covered", "mine", "mixed", "new", "new-dead"]);
          expect(st.listKv({ limit: 10 }).map((r) => r.key), "a staged tombstone stays a tombstone").toEqual(["covered", "mine", "mixed", "new"]);
          expect(st.listTombstones("", 10).map((r) => r.key)).toEqual(["new-dead"]);
          expect(st.getCounter("c")).toEqual({ p: { [A]: 5, [B]: 2, [C]: 1 }, n: { [A]: 1 } });
          expect(st.getCounter("c-local")).toEqual({ p: { [C]: 7 }, n: {} });
          expect(Object.keys(st.getSet("s")?.entries ?? {}).sort()).toEqual(["x", "y"]);
          expect(docText(st.getDoc("d"))).toContain("local");
          expect(docText(st.getDoc("d"))).toContain("snap");
          expect(docText(st.getDoc("d2"))).toBe("snap ");
          expect(st.getIdempotency("i1")?.requestHash, "a kept record stays").toBe("local-hash");
          expect(st.getIdempotency("i2")).toEqual(idemRec("i2", "snap-hash", 2000));
          expect(st.appliedVv()).toEqual({ [A]: 4, [B]: 2, [C]: 5 });
          expect(st.opLogFloor()).toEqual(header.vv);
          expect(st.hasOp(B, 2)).toBe(true);
          expect(st.opLogVv()).toEqual({ [A]: 4, [B]: 2, [C]: 5 });
          expect(st.getOps(A, 1, 100, 100)).toEqual([logged[3]]);
          expect(st.getOps(C, 1, 100, 100)).toEqual([logged[4], logged[5]]);
          expect(st.getMeta("lastSeq"), "never below what the snapshot holds of this node").toBe(2);
          expect(st.getMeta("lastHlc")).toEqual(header.hlc);
          expect(st.getMeta("sweptVv")).toEqual({ [A]: 2, [C]: 1 });
          expect(st.stagedSnapshotRows()).toBe(0);
          expect(st.integrityCheck()).toBe("ok");
        };
        check(s);
        // The op log's counters match a store that holds only the ops left.
        const fresh = harness.create();
        try {
          fresh.commit({ ops: logged.slice(3) });
          expect(s.opLogStats()).toEqual(fresh.opLogStats());
        } finally {
          fresh.close();
        }
        const before = contents(s, KEYS);
        s = harness.reopen(s);
        check(s);
        expect(contents(s, KEYS)).toEqual(before);
      });

      it("keeps local ops past the vector and the seq of this node's own writes", () => {
        s.commit({ ops: [kvOp(B, 1, "own"), kvOp(B, 2, "own"), kvOp(B, 3, "own")], kv: [{ key: "own", reg: regOf(ver(B, 3, '"mine"')), deleted: false }], appliedVv: { [B]: 3 }, meta: { lastSeq: 3 } });
        s.stageSnapshotRows([kvRow("own", regOf(ver(B, 2, '"old"')))]);
        const h: SnapshotHeader = { vv: { [B]: 2 }, sweptVv: {}, hlc: HLC_ZERO };
        s.installSnapshot(h, installRules(B, h));
        expect(s.getKv("own")).toEqual(regOf(ver(B, 3, '"mine"')));
        expect(s.getMeta("lastSeq")).toBe(3);
        expect(s.getMeta("lastHlc")).toEqual(HLC_ZERO);
        expect(s.appliedVv()).toEqual({ [B]: 3 });
        expect(s.getOps(B, 1, 10, 10)).toEqual([kvOp(B, 3, "own")]);
        expect(s.opLogStats().ops).toBe(1);
      });

      for (const where of ["first", "last"] as const) {
        it(`changes nothing when a staged row does not decode (${where} in order), and keeps the stage`, () => {
          local();
          const bad: SnapshotRow = where === "first" ? { ns: "counters", key: "a-bad", data: textRowData("{not json") } : { ns: "sets", key: "zz-bad", data: textRowData("[1]") };
          s.stageSnapshotRows([...snapshotRows(), bad]);
          const before = contents(s, KEYS);
          expect(() => s.installSnapshot(header, installRules(B, header))).toThrow(/does not decode/);
          expect(contents(s, KEYS)).toEqual(before);
          expect(s.integrityCheck()).toBe("ok");
          // The store works on: the stage can be cleared and a good snapshot installed.
          s.clearSnapshotStage();
          s.stageSnapshotRows(snapshotRows());
          expect(s.installSnapshot(header, installRules(B, header)).rows).toBe(10);
          expect(s.getKv("gone")).toBeUndefined();
        });
      }

      it("changes nothing when a staged doc row is not a Yjs update, also for a doc this node lacks", () => {
        local();
        s.stageSnapshotRows([...snapshotRows(), { ns: "docs", key: "d3", data: new Uint8Array([0xff, 0xff, 0xff, 0x01]) }]);
        const before = contents(s, KEYS);
        expect(() => s.installSnapshot(header, installRules(B, header))).toThrow(/does not decode/);
        expect(contents(s, KEYS)).toEqual(before);
        expect(s.getDoc("d3")).toBeUndefined();
      });

      it("refuses a header vector that is not one, changing nothing", () => {
        local();
        s.stageSnapshotRows(snapshotRows());
        const before = contents(s, KEYS);
        for (const vv of [{ [A]: 1.5 }, { [A]: -1 }, { [A]: Number.NaN }]) {
          const bad: SnapshotHeader = { ...header, vv };
          expect(() => s.installSnapshot(bad, installRules(B, bad))).toThrow(RangeError);
          expect(contents(s, KEYS)).toEqual(before);
        }
      });

      it("changes nothing when a staged kv row is JSON but not a register", () => {
        local();
        s.stageSnapshotRows([...snapshotRows(), { ns: "kv", key: "zz", data: textRowData('{"value":1}') }]);
        const before = contents(s, KEYS);
        expect(() => s.installSnapshot(header, installRules(B, header))).toThrow(/does not decode/);
        expect(contents(s, KEYS)).toEqual(before);
      });
    });
  });
}
