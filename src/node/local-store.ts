// The replica store of one node: the write path (client intent -> op -> new
// key state -> group commit -> answer) and the read path, wiring the pure core
// to storage. It decides nothing itself: ops are built and merged by src/core;
// this file only sequences load, apply, persist, and acknowledge, and keeps
// the small in-memory overlay that makes writes in one group see each other.
// Idempotency: a write with an Idempotency-Key carries the key in its op, and
// every replica that applies the op records the answer, so a retry that lands
// on another node (after a failover, say) replays instead of writing again.

import { applyCounter, counterTotals, counterValue } from "../core/crdt/pn-counter.js";
import { applyDoc, docDiff, emptyDoc, validateDocUpdate, validateStateVector } from "../core/crdt/ydoc.js";
import { applyKv, readKv, versionOf } from "../core/crdt/lww.js";
import { applySet, setMembers } from "../core/crdt/or-set.js";
import { encodeHlc, isValidHlc, tick, type Hlc } from "../core/hlc.js";
import { copyLoses } from "../core/duplicate-writes.js";
import type { NodeId } from "../core/ids.js";
import { idemProblem, type Conflict, type CounterOp, type Dot, type CounterState, type DocState, type KvRegister, type Namespace, type Op, type OrSetState } from "../core/op.js";
import { makeCounterOp, makeDocOp, makeKvOp, makeSetOp } from "../core/write.js";
import { mergeVv, vvGet, type VersionVector } from "../core/version-vector.js";
import type { GroupCommitter } from "../storage/group-commit.js";
import { readNodeMeta, type Batch, type IdempotencyRecord, type Storage } from "../storage/port.js";
import { isNodeError, nodeError, type NodeError } from "./errors.js";
import type { AckLevel, DataService, KvRead, WriteAnswer, WriteMeta } from "./service.js";

/** Waits until a committed op is durable at the level the client asked for. */
export type AckGate = (dot: Dot, level: AckLevel) => Promise<true | NodeError>;

/** Decides whether this node may take a client write now (leadership, clock skew). */
export type WriteGate = () => NodeError | null;

export interface LocalStoreOptions {
  readonly nodeId: NodeId;
  readonly storage: Storage;
  readonly committer: GroupCommitter;
  readonly now: () => number;
  /** Defaults to "durable locally is enough" until replication plugs in. */
  readonly ackGate?: AckGate;
  readonly writeGate?: WriteGate;
  /** Called after ops are committed (local or remote): replication streams them on. */
  readonly onCommitted?: (ops: readonly Op[]) => void;
  readonly onConflicts?: (conflicts: readonly Conflict[]) => void;
  /** Called once per acknowledged client write (not for idempotent replays): the writes metric. */
  readonly onWriteAcked?: (ns: Namespace) => void;
  /** Called once per client read served: the reads metric. */
  readonly onRead?: (ns: Namespace) => void;
}

type AnyState = KvRegister | CounterState | OrSetState | DocState;

/** What a write builds from the key's current state: its op, or why it is refused. */
type BuildWrite = (state: AnyState | undefined, seq: number, hlc: Hlc) => Op | NodeError;

/** The token of a write: the dot of its op, "<origin>:<seq>". */
export function tokenOf(op: { origin: string; seq: number }): string {
  return `${op.origin}:${op.seq}`;
}

/**
 * The answer to the write `op`, given the key's state right after applying
 * it. The origin sends this to its client; every other replica records the
 * same shape for the op's Idempotency-Key (counter values and set members as
 * that replica has them), so a retry gets the same token wherever it lands.
 */
function answerOf(op: Op, after: AnyState): Record<string, unknown> {
  const key = op.key;
  const token = tokenOf(op);
  switch (op.ns) {
    case "kv":
      return op.valueJson === null ? { key, token } : { key, token, version: { hlc: encodeHlc(op.hlc), node: op.origin } };
    case "counters":
      return { key, value: counterValue(after as CounterState), token };
    case "sets":
      return { key, members: setMembers(after as OrSetState), token };
    case "docs":
      return { key, token };
    default:
      return assertNever(op);
  }
}

/** Parses a causal token; null when it is not one. */
export function parseToken(token: string): { origin: string; seq: number } | null {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63}):([1-9]\d{0,15})$/.exec(token);
  if (!m) return null;
  const seq = Number(m[2]);
  return Number.isSafeInteger(seq) ? { origin: m[1] as string, seq } : null;
}

/** The node's replica: implements the data service over storage and the core. */
export class LocalStore implements DataService {
  private readonly storage: Storage;
  private readonly committer: GroupCommitter;
  private readonly nodeId: NodeId;
  private readonly now: () => number;
  private readonly ackGate: AckGate;
  private readonly writeGate: WriteGate;
  private readonly onCommitted: (ops: readonly Op[]) => void;
  private readonly onConflicts: (conflicts: readonly Conflict[]) => void;
  private readonly onWriteAcked: (ns: Namespace) => void;
  private readonly onRead: (ns: Namespace) => void;

  private hlc: Hlc;
  private seq: number;
  /** Key states changed by batches not yet committed, so the next write builds on them. */
  private readonly overlay = new Map<string, AnyState>();
  /** Writes under way per Idempotency-Key, so a concurrent retry waits for the first answer. */
  private readonly inflight = new Map<string, Promise<WriteAnswer | NodeError>>();
  /** Idempotency records of remote ops submitted but not yet committed, so a retry sees them already. */
  private readonly pendingRemoteIdem = new Map<string, IdempotencyRecord>();
  /** Readers waiting for a token (read-your-writes), woken after each commit. */
  private readonly tokenWaiters = new Set<() => void>();
  private vv: VersionVector;
  /**
   * Per origin, the highest seq whose op is committed. `vv` runs ahead of it
   * while a group commit is pending; a token read must wait for this one, or
   * it would read the table from before the write its token names.
   */
  private readonly committedSeqs = new Map<string, number>();

  constructor(o: LocalStoreOptions) {
    this.storage = o.storage;
    this.committer = o.committer;
    this.nodeId = o.nodeId;
    this.now = o.now;
    this.ackGate = o.ackGate ?? (async () => true);
    this.writeGate = o.writeGate ?? (() => null);
    this.onCommitted = o.onCommitted ?? (() => undefined);
    this.onConflicts = o.onConflicts ?? (() => undefined);
    this.onWriteAcked = o.onWriteAcked ?? (() => undefined);
    this.onRead = o.onRead ?? (() => undefined);
    const meta = readNodeMeta(this.storage);
    this.hlc = meta.lastHlc;
    // The op log is the truth for our own seq: never reuse a logged dot.
    this.seq = Math.max(meta.lastSeq, vvGet(this.storage.opLogVv(), this.nodeId));
    this.vv = this.storage.appliedVv();
    for (const [origin, seq] of Object.entries(this.vv)) this.committedSeqs.set(origin, seq);
  }

  /** The node vector: per origin, the highest contiguous seq applied. */
  versionVector(): VersionVector {
    return this.vv;
  }

  /** The node's current HLC (for heartbeats and skew checks). */
  clock(): Hlc {
    return this.hlc;
  }

  // ---- writes ------------------------------------------------------------

  kvPut(key: string, valueJson: string, meta: WriteMeta): Promise<WriteAnswer | NodeError> {
    return this.write(meta, "kv", key, (state, seq, hlc) => makeKvOp(state as KvRegister | undefined, key, valueJson, this.nodeId, seq, hlc));
  }

  kvDelete(key: string, meta: WriteMeta): Promise<WriteAnswer | NodeError> {
    return this.write(meta, "kv", key, (state, seq, hlc) => makeKvOp(state as KvRegister | undefined, key, null, this.nodeId, seq, hlc));
  }

  counterAdd(key: string, delta: number, meta: WriteMeta): Promise<WriteAnswer | NodeError> {
    return this.write(meta, "counters", key, (state, seq, hlc) => {
      // Refused here, not thrown by makeCounterOp: a client's delta that would
      // push this origin's totals or the value out of the safe integer range is
      // bad input (400), not a node failure (500).
      const totals = counterTotals(state as CounterState | undefined, this.nodeId);
      const value = counterValue(state as CounterState | undefined) + delta;
      if (!Number.isSafeInteger(totals.p + Math.max(delta, 0)) || !Number.isSafeInteger(totals.n + Math.max(-delta, 0)) || !Number.isSafeInteger(value)) {
        return nodeError("bad_request", "this delta would take the counter's value or its running increment/decrement totals past ±(2^53-1)");
      }
      return makeCounterOp(state as CounterState | undefined, key, delta, this.nodeId, seq, hlc);
    });
  }

  setUpdate(key: string, add: readonly string[], remove: readonly string[], meta: WriteMeta): Promise<WriteAnswer | NodeError> {
    return this.write(meta, "sets", key, (state, seq, hlc) => makeSetOp(state as OrSetState | undefined, key, [...add], [...remove], this.nodeId, seq, hlc));
  }

  docUpdate(key: string, update: Uint8Array, meta: WriteMeta): Promise<WriteAnswer | NodeError> {
    if (!validateDocUpdate(update)) return Promise.resolve(nodeError("bad_request", "body is not a valid Yjs update"));
    return this.write(meta, "docs", key, (_state, seq, hlc) => makeDocOp(key, update, this.nodeId, seq, hlc));
  }

  private write(
    meta: WriteMeta,
    ns: Namespace,
    key: string,
    build: BuildWrite,
  ): Promise<WriteAnswer | NodeError> {
    const idem = meta.idempotencyKey;
    if (idem === undefined) return this.writeOnce(meta, ns, key, build);
    // The key travels in the op to every replica, so it must fit the codec's bounds.
    const tooBig = idemProblem({ key: idem, requestHash: meta.requestHash });
    if (tooBig !== null) return Promise.resolve(nodeError("bad_request", tooBig));
    const running = this.inflight.get(idem);
    if (running) return running.then((a) => this.replayFor(idem, meta, a));
    const stored = this.idempotencyRecord(idem);
    if (stored) return this.replayAcked(stored, meta);
    const p = this.writeOnce(meta, ns, key, build).finally(() => this.inflight.delete(idem));
    this.inflight.set(idem, p);
    return p;
  }

  /** The record for an Idempotency-Key: committed, or from a remote batch still committing. */
  private idempotencyRecord(idem: string): IdempotencyRecord | undefined {
    return this.pendingRemoteIdem.get(idem) ?? this.storage.getIdempotency(idem);
  }

  /** True when this node holds the answer for an Idempotency-Key (committed, committing or in flight). */
  knowsIdempotencyKey(key: string): boolean {
    return this.inflight.has(key) || this.idempotencyRecord(key) !== undefined;
  }

  /**
   * A retry of a recorded write: the first answer, but only once the write is
   * durable at the level this retry asks for. The record is stored with the
   * op, before the acknowledgement; if the first attempt timed out waiting for
   * its region, replaying success at once would acknowledge a write that no
   * majority confirmed.
   */
  private async replayAcked(rec: IdempotencyRecord, meta: WriteMeta): Promise<WriteAnswer | NodeError> {
    const answer = this.replay(rec, meta);
    if (isNodeError(answer)) return answer;
    const dot = parseToken(answer.token);
    if (dot === null) return answer;
    const acked = await this.ackGate({ origin: dot.origin as NodeId, seq: dot.seq }, meta.ack);
    return acked === true ? answer : acked;
  }

  /** A concurrent duplicate of an in-flight write: same answer, or a mismatch. */
  private replayFor(idem: string, meta: WriteMeta, first: WriteAnswer | NodeError): WriteAnswer | NodeError {
    const stored = this.idempotencyRecord(idem);
    if (stored) return this.replay(stored, meta);
    // The first attempt failed before it was recorded; the retry may try again.
    return isNodeError(first) ? first : nodeError("internal", "idempotent write finished without a record");
  }

  private replay(rec: IdempotencyRecord, meta: WriteMeta): WriteAnswer | NodeError {
    if (rec.requestHash !== meta.requestHash) {
      return nodeError("idempotency_mismatch", "this Idempotency-Key was already used for a different request");
    }
    const body = JSON.parse(rec.body) as Record<string, unknown>;
    return { body, token: String(body.token), replayed: true };
  }

  private async writeOnce(
    meta: WriteMeta,
    ns: Namespace,
    key: string,
    build: BuildWrite,
  ): Promise<WriteAnswer | NodeError> {
    const refused = this.writeGate();
    if (refused) return refused;
    // Everything from here to submit() is synchronous, so concurrent writes to
    // one key are serialized through the overlay.
    const hlc = tick(this.hlc, this.now());
    if (!isValidHlc(hlc)) return nodeError("clock_skew", "this node's clock is outside the range the HLC can encode");
    const seq = this.seq + 1;
    const built = build(this.loadState(ns, key), seq, hlc);
    if (isNodeError(built)) return built;
    // The key rides in the op, so every replica that applies it can answer a retry.
    const op: Op = meta.idempotencyKey === undefined ? built : { ...built, idem: { key: meta.idempotencyKey, requestHash: meta.requestHash } };
    const applied = this.applyToState(this.loadState(ns, key), op);
    this.hlc = hlc;
    this.seq = seq;
    this.vv = mergeVv(this.vv, { [this.nodeId]: seq });
    const answerBody = answerOf(op, applied.state);
    const idem: IdempotencyRecord[] = meta.idempotencyKey === undefined ? [] : [
      { key: meta.idempotencyKey, requestHash: meta.requestHash, status: 200, body: JSON.stringify(answerBody), createdAtMs: this.now() },
    ];
    const batch = this.stateBatch(ns, key, applied.state, {
      ops: [op],
      conflicts: applied.conflicts,
      idempotency: idem,
      appliedVv: { [this.nodeId]: seq },
      meta: { lastSeq: seq, lastHlc: hlc },
    });
    const overlayKey = `${ns}\0${key}`;
    this.overlay.set(overlayKey, applied.state);
    try {
      // A failed commit rejects: nothing was acknowledged, and the request
      // fails with a 500 that the client may retry (with its Idempotency-Key).
      await this.committer.submit(batch);
    } finally {
      if (this.overlay.get(overlayKey) === applied.state) this.overlay.delete(overlayKey);
    }
    this.committed([op], applied.conflicts);
    const acked = await this.ackGate(op, meta.ack);
    if (acked !== true) return acked;
    this.onWriteAcked(ns);
    return { body: answerBody, token: tokenOf(op), replayed: false };
  }

  /** Applies ops that came from peers; resolves once they are durable. Returns what was new. */
  async applyRemote(ops: readonly Op[]): Promise<Op[]> {
    const fresh: Op[] = [];
    const conflicts: Conflict[] = [];
    const idempotency = new Map<string, IdempotencyRecord>();
    const states = new Map<string, { ns: Namespace; key: string; state: AnyState }>();
    let vv = this.vv;
    let hlc = this.hlc;
    for (const op of ops) {
      // Only the next seq of each origin is taken: ops past a gap are dropped
      // (the sender sees it in our ack and resends from the gap), so the node
      // vector is always exact and nothing is applied twice or out of order.
      if (op.seq !== vvGet(vv, op.origin) + 1) continue;
      const k = `${op.ns}\0${op.key}`;
      const cur = states.get(k)?.state ?? this.loadState(op.ns, op.key);
      const r = this.applyToState(cur, op);
      states.set(k, { ns: op.ns, key: op.key, state: r.state });
      conflicts.push(...r.conflicts);
      fresh.push(op);
      const rec = this.remoteIdempotencyRecord(op, r.state, idempotency);
      if (rec) idempotency.set(rec.key, rec);
      vv = mergeVv(vv, { [op.origin]: op.seq });
      if (op.hlc.wallMs > hlc.wallMs || (op.hlc.wallMs === hlc.wallMs && op.hlc.logical > hlc.logical)) hlc = op.hlc;
      const undo = this.duplicateToUndo(op);
      if (undo) {
        // Undo our own copy of a counter write this remote op also made, in
        // the same batch, so a crash cannot separate the two.
        const seq = this.seq + 1;
        hlc = tick(hlc, this.now());
        const comp = makeCounterOp(states.get(k)?.state as CounterState | undefined, op.key, -undo.delta, this.nodeId, seq, hlc);
        const rc = this.applyToState(states.get(k)?.state, comp);
        states.set(k, { ns: comp.ns, key: comp.key, state: rc.state });
        fresh.push(comp);
        this.seq = seq;
        vv = mergeVv(vv, { [this.nodeId]: seq });
      }
    }
    if (fresh.length === 0) return fresh;
    let batch: Batch = { ops: fresh, conflicts, idempotency: [...idempotency.values()], appliedVv: vv, meta: { lastHlc: hlc, lastSeq: this.seq } };
    for (const s of states.values()) {
      this.overlay.set(`${s.ns}\0${s.key}`, s.state);
      batch = this.stateBatch(s.ns, s.key, s.state, batch);
    }
    for (const rec of idempotency.values()) this.pendingRemoteIdem.set(rec.key, rec);
    this.vv = vv;
    this.hlc = hlc;
    try {
      await this.committer.submit(batch);
    } finally {
      for (const s of states.values()) {
        const k = `${s.ns}\0${s.key}`;
        if (this.overlay.get(k) === s.state) this.overlay.delete(k);
      }
      for (const rec of idempotency.values()) if (this.pendingRemoteIdem.get(rec.key) === rec) this.pendingRemoteIdem.delete(rec.key);
    }
    this.committed(fresh, conflicts);
    return fresh;
  }

  /**
   * One client write executed twice: a leader took it and died before any
   * follower had it, the client's retry (same Idempotency-Key) was taken by
   * the next leader, and the first copy came back with the old leader (merged,
   * as deposed leaders' writes are). For kv, sets and docs the second copy
   * changes nothing a reader sees; a counter would count the delta twice. So
   * exactly one node undoes one copy: of the two, the later (hlc, origin, seq)
   * loses, and the loser's origin, when it sees the winner arrive, issues a
   * compensating delta. Returns our losing op when this node must do that.
   */
  private duplicateToUndo(remote: Op): CounterOp | null {
    if (remote.ns !== "counters" || remote.idem === undefined || remote.origin === this.nodeId) return null;
    const rec = this.idempotencyRecord(remote.idem.key);
    if (rec === undefined || rec.requestHash !== remote.idem.requestHash) return null;
    const dot = parseToken(String((JSON.parse(rec.body) as { token?: unknown }).token ?? ""));
    if (dot === null || dot.origin !== this.nodeId) return null;
    const mine = this.storage.getOps(this.nodeId, dot.seq, dot.seq, 1)[0];
    if (mine === undefined || mine.ns !== "counters" || mine.idem?.key !== remote.idem.key) return null;
    return copyLoses(mine, remote) ? mine : null;
  }

  /**
   * The idempotency record a replica keeps for a remote op that carries an
   * Idempotency-Key, or undefined when it carries none or the key already has
   * a record (stored, committing, taken by a local write under way, or earlier
   * in this batch): the first answer for a key is the one every retry gets.
   */
  private remoteIdempotencyRecord(op: Op, after: AnyState, batch: ReadonlyMap<string, IdempotencyRecord>): IdempotencyRecord | undefined {
    if (op.idem === undefined) return undefined;
    const key = op.idem.key;
    if (batch.has(key) || this.inflight.has(key) || this.idempotencyRecord(key) !== undefined) return undefined;
    return {
      key,
      requestHash: op.idem.requestHash,
      status: 200,
      body: JSON.stringify(answerOf(op, after)),
      // The origin's clock when it took the write: every replica then prunes
      // the record at about the same time, however late the op reached it.
      createdAtMs: op.hlc.wallMs,
    };
  }

  private committed(ops: readonly Op[], conflicts: readonly Conflict[]): void {
    for (const op of ops) if (op.seq > (this.committedSeqs.get(op.origin) ?? 0)) this.committedSeqs.set(op.origin, op.seq);
    if (conflicts.length > 0) this.onConflicts(conflicts);
    this.onCommitted(ops);
    for (const wake of [...this.tokenWaiters]) wake();
  }

  private loadState(ns: Namespace, key: string): AnyState | undefined {
    const o = this.overlay.get(`${ns}\0${key}`);
    if (o !== undefined) return o;
    switch (ns) {
      case "kv":
        return this.storage.getKv(key);
      case "counters":
        return this.storage.getCounter(key);
      case "sets":
        return this.storage.getSet(key);
      case "docs":
        return this.storage.getDoc(key);
      default:
        return assertNever(ns);
    }
  }

  private applyToState(state: AnyState | undefined, op: Op): { state: AnyState; conflicts: Conflict[] } {
    switch (op.ns) {
      case "kv": {
        const r = applyKv(state as KvRegister | undefined, op);
        return { state: r.reg, conflicts: r.conflicts };
      }
      case "counters":
        return { state: applyCounter(state as CounterState | undefined, op), conflicts: [] };
      case "sets":
        return { state: applySet(state as OrSetState | undefined, op), conflicts: [] };
      case "docs":
        return { state: applyDoc(state as DocState | undefined, op.update), conflicts: [] };
      default:
        return assertNever(op);
    }
  }

  private stateBatch(ns: Namespace, key: string, state: AnyState, base: Batch): Batch {
    switch (ns) {
      case "kv": {
        const reg = state as KvRegister;
        return { ...base, kv: [...(base.kv ?? []), { key, reg, deleted: readKv(reg)?.valueJson === null }] };
      }
      case "counters":
        return { ...base, counters: [...(base.counters ?? []), { key, state: state as CounterState }] };
      case "sets":
        return { ...base, sets: [...(base.sets ?? []), { key, state: state as OrSetState }] };
      case "docs":
        return { ...base, docs: [...(base.docs ?? []), { key, state: state as DocState }] };
      default:
        return assertNever(ns);
    }
  }

  // ---- reads -------------------------------------------------------------

  kvGet(key: string): KvRead | undefined {
    this.onRead("kv");
    const w = readKv(this.storage.getKv(key));
    if (!w || w.valueJson === null) return undefined;
    return { key, valueJson: w.valueJson, version: versionOf(w) };
  }

  kvList(prefix: string, after: string | undefined, limit: number): { items: KvRead[]; next: string | null } {
    this.onRead("kv");
    const rows = this.storage.listKv({ prefix, ...(after === undefined ? {} : { after }), limit: limit + 1 });
    const items: KvRead[] = [];
    for (const row of rows.slice(0, limit)) {
      const w = readKv(row.reg);
      if (w && w.valueJson !== null) items.push({ key: row.key, valueJson: w.valueJson, version: versionOf(w) });
    }
    const next = rows.length > limit ? (items[items.length - 1]?.key ?? null) : null;
    return { items, next };
  }

  counterGet(key: string): number {
    this.onRead("counters");
    return counterValue(this.storage.getCounter(key));
  }

  setGet(key: string): string[] {
    this.onRead("sets");
    return setMembers(this.storage.getSet(key));
  }

  docGet(key: string, sv: Uint8Array | undefined): Uint8Array | NodeError {
    if (sv !== undefined && !validateStateVector(sv)) return nodeError("bad_request", "sv is not a valid Yjs state vector");
    this.onRead("docs");
    const state = this.storage.getDoc(key) ?? emptyDoc();
    return docDiff(state, sv);
  }

  conflicts(limit: number): Conflict[] {
    return this.storage.conflicts(limit);
  }

  /** True when this node has applied the write named by `token` and committed it (so reads show it). */
  hasApplied(origin: string, seq: number): boolean {
    return (this.committedSeqs.get(origin) ?? 0) >= seq || this.storage.hasOp(origin as NodeId, seq);
  }

  async awaitToken(token: string, deadlineMs: number): Promise<true | NodeError> {
    const t = parseToken(token);
    if (!t) return nodeError("bad_request", "X-Geokv-Token is not a token this API issued");
    if (this.hasApplied(t.origin, t.seq)) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.tokenWaiters.delete(check);
        resolve(nodeError("stale_replica", "this replica has not yet applied the write the token names; retry or ask another node", 1));
      }, Math.max(0, deadlineMs - this.now()));
      const check = () => {
        if (!this.hasApplied(t.origin, t.seq)) return;
        clearTimeout(timer);
        this.tokenWaiters.delete(check);
        resolve(true);
      };
      this.tokenWaiters.add(check);
    });
  }
}

function assertNever(x: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(x)}`);
}
