// The Storage port in memory, for the deterministic simulator: no files, no
// fsync, thousands of nodes per second. It keeps what SQLite keeps in the same
// encoding (JSON text, op rows, byte-ordered keys), so a value round-trips
// here exactly as it would on disk, and the contract suite holds both
// implementations to the same behaviour. The data lives in a MemoryDisk that
// outlives the store, so the simulator can "crash" a node (drop the store) and
// restart it on the same disk; every change to it is a DiskWrite value
// (memory-disk.ts), so a crashable store can journal them (memory-crash.ts).
// This file holds the reads; every write goes through one method, write().

import { decodeKvState, encodeKvState, kvStateTexts } from "../core/codec/kv-state.js";
import type { NodeId } from "../core/ids.js";
import type { Conflict, CounterState, DocState, KvRegister, Op, OrSetState, Version } from "../core/op.js";
import { decodeHlc } from "../core/hlc.js";
import type { VersionVector } from "../core/version-vector.js";
import { assertLimit, assertVv } from "./checks.js";
import { utf8ByteLength } from "../core/key.js";
import { assertWellFormedKey, compareUtf8, listRange } from "./key-order.js";
import {
  applyWrite, commitWrite, compactOpsWrite, compareNumbers, createMemoryDisk, lowerBound, pruneIdempotencyWrite, setMetaWrite,
} from "./memory-disk.js";
import type { DiskWrite, MemoryDisk, PreparedInstall, StoredConflict, StoredKv } from "./memory-disk.js";
import { stageKey as stageKeyOf } from "./memory-disk.js";
import { encodeMetaValue } from "./checks.js";
import { HLC_ZERO } from "../core/hlc.js";
import type { Hlc } from "../core/hlc.js";
import type { RowOf, StateOf } from "../core/apply/types.js";
import type { Namespace } from "../core/op.js";
import type { SnapshotHeader, SnapshotRow } from "../core/snapshot.js";
import { idemRowData, runInstall, textRowData, type InstallIo } from "./snapshot-install.js";
import { opFromRow } from "./op-row.js";
import type { OpRow } from "./op-row.js";
import type { Batch, CommitResult, IdempotencyRecord, InstallResult, InstallRules, KvFold, KvRow, ListKvOptions, MetaValue, OpLogStats, SnapshotReader, Storage } from "./port.js";

export type { MemoryDisk } from "./memory-disk.js";
export { cloneMemoryDisk, createMemoryDisk } from "./memory-disk.js";

/** The Storage port plus the disk it writes to. */
export interface MemoryStorage extends Storage {
  readonly disk: MemoryDisk;
}

/** Hears a store's writes, each once it is applied, and its first close, before it takes effect. */
export interface MemoryWriteObserver {
  written(w: DiskWrite): void;
  closing(): void;
}

function vvFromMap(m: ReadonlyMap<string, number>): VersionVector {
  const out: Record<string, number> = {};
  for (const [origin, seq] of m) if (seq > 0) out[origin] = seq;
  return out;
}

class MemoryStore implements MemoryStorage {
  private closed = false;

  constructor(readonly disk: MemoryDisk, private readonly observer: MemoryWriteObserver | undefined) {}

  private open(): MemoryDisk {
    if (this.closed) throw new Error("storage is closed");
    return this.disk;
  }

  /** Every change to the disk passes here, so the observer sees each one. */
  private write(w: DiskWrite): number {
    const n = applyWrite(this.disk, w);
    this.observer?.written(w);
    return n;
  }

  getMeta<K extends string>(key: K): MetaValue<K> | undefined {
    const v = this.open().meta.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as MetaValue<K>);
  }

  setMeta<K extends string>(key: K, value: MetaValue<K>): void {
    this.open();
    this.write(setMetaWrite(key, value));
  }

  getKv(key: string): KvRegister | undefined {
    const v = this.open().kv.get(key);
    return v === undefined ? undefined : decodeKvState(v.state);
  }

  getCounter(key: string): CounterState | undefined {
    const v = this.open().counters.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as CounterState);
  }

  getSet(key: string): OrSetState | undefined {
    const v = this.open().sets.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as OrSetState);
  }

  getDoc(key: string): DocState | undefined {
    const v = this.open().docs.get(key);
    return v === undefined ? undefined : new Uint8Array(v);
  }

  listKv(opts: ListKvOptions): KvRow[] {
    const disk = this.open();
    assertLimit(opts.limit);
    if (opts.prefix !== undefined) assertWellFormedKey(opts.prefix, "prefix");
    if (opts.after !== undefined) assertWellFormedKey(opts.after, "after");
    const range = listRange(opts.prefix, opts.after);
    const out: KvRow[] = [];
    let i = lowerBound(disk.kvKeys, range.lower, compareUtf8);
    if (!range.lowerInclusive && disk.kvKeys[i] === range.lower) i++;
    for (; i < disk.kvKeys.length && out.length < opts.limit; i++) {
      const key = disk.kvKeys[i] as string;
      if (range.upper !== null && compareUtf8(key, range.upper) >= 0) break;
      const stored = disk.kv.get(key) as StoredKv;
      if (stored.deleted && opts.includeDeleted !== true) continue;
      out.push({ key, reg: decodeKvState(stored.state), deleted: stored.deleted });
    }
    return out;
  }

  commit(batch: Batch): CommitResult {
    this.open();
    return { opsInserted: this.write(commitWrite(batch)) };
  }

  hasOp(origin: NodeId, seq: number): boolean {
    const disk = this.open();
    return seq <= (disk.opFloor.get(origin) ?? 0) || disk.ops.get(origin)?.rows.has(seq) === true;
  }

  getOps(origin: NodeId, fromSeq: number, toSeq: number, limit: number): Op[] {
    const log = this.open().ops.get(origin);
    assertLimit(limit);
    const out: Op[] = [];
    if (log === undefined) return out;
    for (let i = lowerBound(log.seqs, fromSeq, compareNumbers); i < log.seqs.length && out.length < limit; i++) {
      const seq = log.seqs[i] as number;
      if (seq > toSeq) break;
      out.push(opFromRow(log.rows.get(seq) as OpRow));
    }
    return out;
  }

  opLogFloor(): VersionVector {
    return vvFromMap(this.open().opFloor);
  }

  opLogVv(): VersionVector {
    const disk = this.open();
    const out: Record<string, number> = { ...vvFromMap(disk.opFloor) };
    for (const [origin, log] of disk.ops) {
      let top = disk.opFloor.get(origin) ?? 0;
      for (let i = lowerBound(log.seqs, top + 1, compareNumbers); log.seqs[i] === top + 1; i++) top++;
      if (top > 0) out[origin] = top;
    }
    return out;
  }

  compactOps(stable: VersionVector): number {
    this.open();
    return this.write(compactOpsWrite(stable));
  }

  opLogStats(): OpLogStats {
    // The simulator's logs are small: counted on demand, as SQLite counts its rows at open.
    let ops = 0;
    let bytes = 0;
    for (const log of this.open().ops.values()) {
      for (const r of log.rows.values()) {
        ops++;
        bytes += utf8ByteLength(r.key) + utf8ByteLength(r.body) + (r.payload?.length ?? 0);
      }
    }
    return { ops, bytes };
  }

  listTombstones(after: string, limit: number): KvRow[] {
    const disk = this.open();
    assertLimit(limit);
    if (after !== "") assertWellFormedKey(after, "after");
    const out: KvRow[] = [];
    let i = lowerBound(disk.kvKeys, after, compareUtf8);
    if (disk.kvKeys[i] === after) i++;
    for (; i < disk.kvKeys.length && out.length < limit; i++) {
      const key = disk.kvKeys[i] as string;
      const stored = disk.kv.get(key) as StoredKv;
      if (stored.deleted) out.push({ key, reg: decodeKvState(stored.state), deleted: true });
    }
    return out;
  }

  dropTombstones(rows: readonly KvRow[]): number {
    this.open();
    if (rows.length === 0) return 0;
    return this.write({ type: "dropTombstones", rows: rows.map((r) => [r.key, kvStateTexts(r.reg)] as [string, [string, string]]) });
  }

  foldKv(rows: readonly KvFold[]): number {
    this.open();
    if (rows.length === 0) return 0;
    return this.write({ type: "foldKv", rows: rows.map((r) => [r.key, kvStateTexts(r.from), encodeKvState(r.to)] as [string, [string, string], string]) });
  }

  appliedVv(): VersionVector {
    return vvFromMap(this.open().nodeVv);
  }

  openSnapshot(): SnapshotReader {
    const disk = this.open();
    // The simulator's states are small: the snapshot is a copy taken now, paged out later.
    const rows: SnapshotRow[] = [];
    for (const key of disk.kvKeys) rows.push({ ns: "kv", key, data: textRowData((disk.kv.get(key) as StoredKv).state) });
    const sorted = <T>(m: Map<string, T>): [string, T][] => [...m.entries()].sort((a, b) => compareUtf8(a[0], b[0]));
    for (const [key, text] of sorted(disk.counters)) rows.push({ ns: "counters", key, data: textRowData(text) });
    for (const [key, text] of sorted(disk.sets)) rows.push({ ns: "sets", key, data: textRowData(text) });
    for (const [key, state] of sorted(disk.docs)) rows.push({ ns: "docs", key, data: new Uint8Array(state) });
    for (const [key, r] of sorted(disk.idempotency)) rows.push({ ns: "idem", key, data: idemRowData(r) });
    const header: SnapshotHeader = {
      vv: vvFromMap(disk.nodeVv),
      sweptVv: this.getMeta("sweptVv") ?? {},
      hlc: this.getMeta("lastHlc") ?? HLC_ZERO,
    };
    let at = 0;
    let closed = false;
    return {
      header,
      next(maxRows, maxBytes) {
        if (closed) throw new Error("snapshot reader is closed");
        const out: SnapshotRow[] = [];
        let taken = 0;
        while (at < rows.length && out.length < maxRows && taken < maxBytes) {
          const r = rows[at++] as SnapshotRow;
          out.push(r);
          taken += r.data.length + r.key.length;
        }
        return out;
      },
      close() {
        closed = true;
      },
    };
  }

  clearSnapshotStage(): void {
    this.open();
    this.write({ type: "clearSnapshotStage" });
  }

  stageSnapshotRows(rows: readonly SnapshotRow[]): void {
    this.open();
    if (rows.length > 0) this.write({ type: "stageSnapshot", rows: rows.map((r) => ({ ns: r.ns, key: r.key, data: new Uint8Array(r.data) })) });
  }

  stagedSnapshotRows(): number {
    return this.open().snapshotStage.size;
  }

  installSnapshot(header: SnapshotHeader, rules: InstallRules): InstallResult {
    const disk = this.open();
    // As SQLite refuses it: the vector becomes the node vector and the floor.
    assertVv("snapshot vv", header.vv);
    const staged = [...disk.snapshotStage.values()].sort((a, b) => (a.ns === b.ns ? compareUtf8(a.key, b.key) : a.ns < b.ns ? -1 : 1));
    const out = { kv: [] as [string, StoredKv | null][], counters: [] as [string, string][], sets: [] as [string, string][], docs: [] as [string, Uint8Array][], idempotency: [] as IdempotencyRecord[] };
    let meta: [string, string][] = [];
    let vv: [string, number][] = [];
    const io: InstallIo = {
      stagedPage(after, limit) {
        let i = 0;
        if (after !== null) {
          while (i < staged.length) {
            const r = staged[i] as SnapshotRow;
            if (r.ns > after.ns || (r.ns === after.ns && compareUtf8(r.key, after.key) > 0)) break;
            i++;
          }
        }
        return staged.slice(i, i + limit);
      },
      unstagedKvPage(after, limit) {
        const page: KvRow[] = [];
        let i = lowerBound(disk.kvKeys, after, compareUtf8);
        if (disk.kvKeys[i] === after) i++;
        for (; i < disk.kvKeys.length && page.length < limit; i++) {
          const key = disk.kvKeys[i] as string;
          if (disk.snapshotStage.has(stageKeyOf("kv", key))) continue;
          page.push({ key, reg: decodeKvState((disk.kv.get(key) as StoredKv).state), deleted: false });
        }
        return page;
      },
      local: <N extends Namespace>(ns: N, key: string): StateOf<N> | undefined => {
        const v = ns === "kv" ? this.getKv(key) : ns === "counters" ? this.getCounter(key) : ns === "sets" ? this.getSet(key) : this.getDoc(key);
        return v as StateOf<N> | undefined;
      },
      putRow<N extends Namespace>(ns: N, row: RowOf<N>) {
        if (ns === "kv") {
          const r = row as RowOf<"kv">;
          out.kv.push([r.key, { state: encodeKvState(r.reg), deleted: r.deleted }]);
        } else if (ns === "docs") {
          const r = row as RowOf<"docs">;
          out.docs.push([r.key, new Uint8Array(r.state)]);
        } else {
          const r = row as RowOf<"counters"> | RowOf<"sets">;
          (ns === "counters" ? out.counters : out.sets).push([r.key, JSON.stringify(r.state)]);
        }
      },
      deleteKv(key) {
        out.kv.push([key, null]);
      },
      addIdempotency(r) {
        out.idempotency.push({ ...r });
      },
      localMeta: () => ({ lastSeq: this.getMeta("lastSeq") ?? 0, lastHlc: (this.getMeta("lastHlc") as Hlc | undefined) ?? HLC_ZERO, sweptVv: this.getMeta("sweptVv") ?? {} }),
      finish(headerVv, m) {
        vv = Object.entries(headerVv);
        meta = [
          ["lastSeq", encodeMetaValue("lastSeq", m.lastSeq)],
          ["lastHlc", encodeMetaValue("lastHlc", m.lastHlc)],
          ["sweptVv", encodeMetaValue("sweptVv", m.sweptVv)],
        ];
      },
    };
    const result = runInstall(io, header, rules);
    const install: PreparedInstall = { ...out, vv, meta };
    this.write({ type: "installSnapshot", install });
    return result;
  }

  conflicts(limit: number): Conflict[] {
    const all = this.open().conflicts;
    assertLimit(limit);
    const out: Conflict[] = [];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
      const c = all[i] as StoredConflict;
      const at = decodeHlc(c.at);
      if (at === null) throw new Error(`conflicts: bad hlc ${JSON.stringify(c.at)}`);
      out.push({ key: c.key, winner: JSON.parse(c.winner) as Version, loser: JSON.parse(c.loser) as Version, at });
    }
    return out;
  }

  getIdempotency(key: string): IdempotencyRecord | undefined {
    const r = this.open().idempotency.get(key);
    return r === undefined ? undefined : { ...r };
  }

  pruneIdempotency(beforeMs: number): number {
    return this.write(pruneIdempotencyWrite(this.open(), beforeMs));
  }

  reclaimSpace(maxPages: number): number {
    this.open();
    if (!(Number.isSafeInteger(maxPages) && maxPages > 0)) throw new Error(`reclaimSpace: maxPages must be a positive integer, got ${maxPages}`);
    return 0; // memory has no free pages: what is deleted is gone at once
  }

  truncateWal(): boolean {
    this.open();
    return true;
  }

  integrityCheck(): string {
    const disk = this.open();
    const problems: string[] = [];
    if (disk.kvKeys.length !== disk.kv.size) problems.push(`kv index has ${disk.kvKeys.length} keys, kv has ${disk.kv.size}`);
    for (let i = 0; i < disk.kvKeys.length; i++) {
      const key = disk.kvKeys[i] as string;
      if (!disk.kv.has(key)) problems.push(`kv index names a missing key ${JSON.stringify(key)}`);
      if (i > 0 && compareUtf8(disk.kvKeys[i - 1] as string, key) >= 0) problems.push(`kv index out of order at ${i}`);
    }
    for (const [origin, log] of disk.ops) {
      if (log.seqs.length !== log.rows.size) problems.push(`op log ${origin}: ${log.seqs.length} seqs, ${log.rows.size} rows`);
      for (let i = 1; i < log.seqs.length; i++) {
        if ((log.seqs[i - 1] as number) >= (log.seqs[i] as number)) problems.push(`op log ${origin}: out of order at ${i}`);
      }
    }
    return problems.length === 0 ? "ok" : problems.join("\n");
  }

  sizeBytes(): number {
    const disk = this.open();
    // UTF-16 length approximates the UTF-8 size closely enough for a gauge.
    let n = 0;
    for (const [k, v] of disk.meta) n += k.length + v.length;
    for (const [k, v] of disk.kv) n += k.length + v.state.length + 1;
    for (const m of [disk.counters, disk.sets]) for (const [k, v] of m) n += k.length + v.length;
    for (const [k, v] of disk.docs) n += k.length + v.byteLength;
    for (const log of disk.ops.values()) {
      for (const r of log.rows.values()) {
        n += r.origin.length + 8 + r.hlc.length + r.key.length + r.body.length + (r.payload?.byteLength ?? 0);
        n += (r.idemKey?.length ?? 0) + (r.idemHash?.length ?? 0);
      }
    }
    for (const c of disk.conflicts) n += c.key.length + c.winner.length + c.loser.length + c.at.length;
    for (const r of disk.idempotency.values()) n += r.key.length + r.requestHash.length + r.body.length + 16;
    return n;
  }

  close(): void {
    if (this.closed) return;
    this.observer?.closing();
    this.closed = true;
  }
}

/**
 * A store on `disk` (a fresh empty disk by default); pass a previous store's disk to simulate a restart.
 * `observer` hears every write and the close (memory-crash.ts journals them).
 */
export function createMemoryStorage(disk: MemoryDisk = createMemoryDisk(), observer?: MemoryWriteObserver): MemoryStorage {
  return new MemoryStore(disk, observer);
}
