// The Storage port in memory, for the deterministic simulator: no files, no
// fsync, thousands of nodes per second. It keeps what SQLite keeps in the same
// encoding (JSON text, op rows, byte-ordered keys), so a value round-trips
// here exactly as it would on disk, and the contract suite holds both
// implementations to the same behaviour. The data lives in a MemoryDisk that
// outlives the store, so the simulator can "crash" a node (drop the store) and
// restart it on the same disk.

import type { NodeId } from "../core/ids.js";
import type { Conflict, CounterState, DocState, KvRegister, Op, OrSetState, Version } from "../core/op.js";
import { decodeHlc, encodeHlc } from "../core/hlc.js";
import type { VersionVector } from "../core/version-vector.js";
import { assertBatch, assertIntIn, assertLimit, assertVv, encodeMetaValue } from "./checks.js";
import { assertWellFormedKey, compareUtf8, listRange } from "./key-order.js";
import { opFromRow, opToRow } from "./op-row.js";
import type { OpRow } from "./op-row.js";
import type { Batch, CommitResult, IdempotencyRecord, KvRow, ListKvOptions, MetaValue, Storage } from "./port.js";

interface StoredKv {
  readonly state: string;
  readonly deleted: boolean;
}

interface StoredConflict {
  readonly key: string;
  readonly winner: string;
  readonly loser: string;
  readonly at: string;
}

/** One origin's part of the op log: rows by seq, and the seqs in ascending order. */
interface OriginLog {
  readonly rows: Map<number, OpRow>;
  readonly seqs: number[];
}

/** What survives a simulated crash: the committed contents of one node's store. */
export interface MemoryDisk {
  readonly meta: Map<string, string>;
  readonly kv: Map<string, StoredKv>;
  /** Every kv key, in UTF-8 byte order. */
  readonly kvKeys: string[];
  readonly counters: Map<string, string>;
  readonly sets: Map<string, string>;
  readonly docs: Map<string, Uint8Array>;
  readonly ops: Map<string, OriginLog>;
  readonly opFloor: Map<string, number>;
  readonly nodeVv: Map<string, number>;
  /** Oldest first. */
  readonly conflicts: StoredConflict[];
  readonly idempotency: Map<string, IdempotencyRecord>;
}

/** An empty disk. */
export function createMemoryDisk(): MemoryDisk {
  return {
    meta: new Map(), kv: new Map(), kvKeys: [], counters: new Map(), sets: new Map(), docs: new Map(),
    ops: new Map(), opFloor: new Map(), nodeVv: new Map(), conflicts: [], idempotency: new Map(),
  };
}

/** The Storage port plus the disk it writes to. */
export interface MemoryStorage extends Storage {
  readonly disk: MemoryDisk;
}

/** Index of the first element of sorted `xs` not less than `x` under `cmp`. */
function lowerBound<T>(xs: readonly T[], x: T, cmp: (a: T, b: T) => number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(xs[mid] as T, x) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const compareNumbers = (a: number, b: number): number => a - b;

function vvFromMap(m: ReadonlyMap<string, number>): VersionVector {
  const out: Record<string, number> = {};
  for (const [origin, seq] of m) if (seq > 0) out[origin] = seq;
  return out;
}

/** A batch turned into exactly what will be stored; building it is the only step that may throw. */
interface PreparedBatch {
  readonly ops: readonly OpRow[];
  readonly kv: readonly [string, StoredKv][];
  readonly counters: readonly [string, string][];
  readonly sets: readonly [string, string][];
  readonly docs: readonly [string, Uint8Array][];
  readonly conflicts: readonly StoredConflict[];
  readonly idempotency: readonly IdempotencyRecord[];
  readonly appliedVv: readonly [string, number][];
  readonly meta: readonly [string, string][];
}

function prepare(batch: Batch): PreparedBatch {
  assertBatch(batch);
  const meta: [string, string][] = [];
  for (const [k, v] of Object.entries(batch.meta ?? {})) if (v !== undefined) meta.push([k, encodeMetaValue(k, v)]);
  return {
    ops: (batch.ops ?? []).map(opToRow),
    kv: (batch.kv ?? []).map((r) => [r.key, { state: JSON.stringify(r.reg), deleted: r.deleted }]),
    counters: (batch.counters ?? []).map((r) => [r.key, JSON.stringify(r.state)]),
    sets: (batch.sets ?? []).map((r) => [r.key, JSON.stringify(r.state)]),
    docs: (batch.docs ?? []).map((r) => [r.key, new Uint8Array(r.state)]),
    conflicts: (batch.conflicts ?? []).map((c) => ({
      key: c.key, winner: JSON.stringify(c.winner), loser: JSON.stringify(c.loser), at: encodeHlc(c.at),
    })),
    idempotency: (batch.idempotency ?? []).map((r) => ({ ...r })),
    appliedVv: Object.entries(batch.appliedVv ?? {}),
    meta,
  };
}

class MemoryStore implements MemoryStorage {
  private closed = false;

  constructor(readonly disk: MemoryDisk) {}

  private open(): MemoryDisk {
    if (this.closed) throw new Error("storage is closed");
    return this.disk;
  }

  getMeta<K extends string>(key: K): MetaValue<K> | undefined {
    const v = this.open().meta.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as MetaValue<K>);
  }

  setMeta<K extends string>(key: K, value: MetaValue<K>): void {
    const text = encodeMetaValue(key, value);
    this.open().meta.set(key, text);
  }

  getKv(key: string): KvRegister | undefined {
    const v = this.open().kv.get(key);
    return v === undefined ? undefined : (JSON.parse(v.state) as KvRegister);
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
      out.push({ key, reg: JSON.parse(stored.state) as KvRegister, deleted: stored.deleted });
    }
    return out;
  }

  commit(batch: Batch): CommitResult {
    const disk = this.open();
    const p = prepare(batch);
    // Nothing below throws, so a batch is applied whole or (above) not at all.
    let opsInserted = 0;
    for (const row of p.ops) if (this.insertOp(disk, row)) opsInserted++;
    for (const [key, stored] of p.kv) {
      if (!disk.kv.has(key)) disk.kvKeys.splice(lowerBound(disk.kvKeys, key, compareUtf8), 0, key);
      disk.kv.set(key, stored);
    }
    for (const [key, state] of p.counters) disk.counters.set(key, state);
    for (const [key, state] of p.sets) disk.sets.set(key, state);
    for (const [key, state] of p.docs) disk.docs.set(key, state);
    disk.conflicts.push(...p.conflicts);
    for (const r of p.idempotency) disk.idempotency.set(r.key, r);
    for (const [origin, seq] of p.appliedVv) disk.nodeVv.set(origin, Math.max(seq, disk.nodeVv.get(origin) ?? 0));
    for (const [k, v] of p.meta) disk.meta.set(k, v);
    return { opsInserted };
  }

  private insertOp(disk: MemoryDisk, row: OpRow): boolean {
    if (row.seq <= (disk.opFloor.get(row.origin) ?? 0)) return false;
    let log = disk.ops.get(row.origin);
    if (log === undefined) {
      log = { rows: new Map(), seqs: [] };
      disk.ops.set(row.origin, log);
    }
    if (log.rows.has(row.seq)) return false;
    log.rows.set(row.seq, row);
    // Ops mostly arrive in seq order: append, else insert in place.
    const last = log.seqs[log.seqs.length - 1];
    if (last === undefined || last < row.seq) log.seqs.push(row.seq);
    else log.seqs.splice(lowerBound(log.seqs, row.seq, compareNumbers), 0, row.seq);
    return true;
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
    const disk = this.open();
    assertVv("stable", stable);
    let deleted = 0;
    for (const [origin, seq] of Object.entries(stable)) {
      if (seq <= 0) continue;
      const log = disk.ops.get(origin);
      if (log !== undefined) {
        const cut = lowerBound(log.seqs, seq + 1, compareNumbers);
        for (const s of log.seqs.splice(0, cut)) log.rows.delete(s);
        deleted += cut;
        if (log.seqs.length === 0) disk.ops.delete(origin);
      }
      disk.opFloor.set(origin, Math.max(seq, disk.opFloor.get(origin) ?? 0));
    }
    return deleted;
  }

  appliedVv(): VersionVector {
    return vvFromMap(this.open().nodeVv);
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
    const disk = this.open();
    assertIntIn("beforeMs", beforeMs, 0, Number.MAX_SAFE_INTEGER);
    let deleted = 0;
    for (const [k, r] of disk.idempotency) {
      if (r.createdAtMs < beforeMs) {
        disk.idempotency.delete(k);
        deleted++;
      }
    }
    return deleted;
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
    this.closed = true;
  }
}

/** A store on `disk` (a fresh empty disk by default); pass a previous store's disk to simulate a restart. */
export function createMemoryStorage(disk: MemoryDisk = createMemoryDisk()): MemoryStorage {
  return new MemoryStore(disk);
}
