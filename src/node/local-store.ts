// The replica store of one node, as the rest of the node sees it: the data
// service the HTTP layer calls, applyRemote for replication, and the node's
// vector and clock. It wires the jobs that each live in their own file — the
// write path (write-path.ts), remote apply (remote-apply.ts), idempotent
// retries (idempotent-writes.ts) and reads (reads.ts) — around one apply
// driver that runs the core apply path for all of them (apply-driver.ts).
// Idempotency: a write with an Idempotency-Key carries the key in its op, and
// every replica that applies the op records the answer, so a retry that lands
// on another node (after a failover, say) replays instead of writing again.

import type { Hlc } from "../core/hlc.js";
import type { CausalToken } from "../core/causal-token.js";
import type { NodeId } from "../core/ids.js";
import type { Conflict, Namespace, Op } from "../core/op.js";
import type { VersionVector } from "../core/version-vector.js";
import { validateDocUpdate, validateDocUpdateFor } from "../core/crdt/ydoc.js";
import type { GroupCommitter } from "../storage/group-commit.js";
import type { InstallResult, Storage } from "../storage/port.js";
import { installRules, type SnapshotHeader } from "../core/snapshot.js";
import { ApplyDriver } from "./apply-driver.js";
import { nodeError, type NodeError } from "./errors.js";
import { IdempotentWrites, type AckGate } from "./idempotent-writes.js";
import { Reads } from "./reads.js";
import { applyRemoteOps } from "./remote-apply.js";
import type { DataService, KvRead, WriteAnswer, WriteMeta } from "./service.js";
import { WritePath, type WriteGate } from "./write-path.js";

export { parseToken, tokenOf } from "../core/apply/token.js";
export type { AckGate } from "./idempotent-writes.js";
export type { WriteGate } from "./write-path.js";

/** Docs up to this size are loaded to check an HTTP update against them (a load costs about 10x a merge). */
const DOC_CHECK_BYTES_MAX = 256 * 1024;

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
  /** Covers every kv tombstone this node dropped (compaction); none when absent. */
  readonly sweptVv?: () => VersionVector;
  /** A peer's op stamped more than this ahead of `now` does not move this node's HLC; no bound when absent. */
  readonly maxClockSkewMs?: number;
  /** Asked before a token read starts to wait, with how many wait now: null, or the overloaded answer. Unbounded when absent. */
  readonly admitTokenWait?: (waiting: number) => NodeError | null;
}

/** The node's replica: implements the data service over storage and the core. */
export class LocalStore implements DataService {
  private readonly driver: ApplyDriver;
  private readonly idempotent: IdempotentWrites;
  private readonly writes: WritePath;
  private readonly reads: Reads;
  private readonly storage: Storage;
  private readonly nodeId: NodeId;

  constructor(o: LocalStoreOptions) {
    this.storage = o.storage;
    this.nodeId = o.nodeId;
    const ackGate: AckGate = o.ackGate ?? (async () => true);
    const onCommitted = o.onCommitted ?? (() => undefined);
    const onConflicts = o.onConflicts ?? (() => undefined);
    this.driver = new ApplyDriver({
      nodeId: o.nodeId,
      storage: o.storage,
      committer: o.committer,
      idempotencyKeyHeld: (key) => this.idempotent.held(key),
      ...(o.maxClockSkewMs === undefined ? {} : { hlcCeilingWallMs: () => o.now() + (o.maxClockSkewMs as number) }),
      onCommitted: (ops, conflicts) => {
        if (conflicts.length > 0) onConflicts(conflicts);
        this.reads.committed(ops);
        onCommitted(ops);
        this.reads.wake();
      },
    });
    this.idempotent = new IdempotentWrites((key) => this.driver.idempotencyRecord(key), ackGate);
    const noneSwept: VersionVector = {};
    this.writes = new WritePath({
      sweptVv: o.sweptVv ?? (() => noneSwept),
      nodeId: o.nodeId,
      now: o.now,
      driver: this.driver,
      idempotent: this.idempotent,
      ackGate,
      writeGate: o.writeGate ?? (() => null),
      onWriteAcked: o.onWriteAcked ?? (() => undefined),
    });
    this.reads = new Reads({ storage: o.storage, admitWait: o.admitTokenWait ?? (() => null), vv: () => this.driver.vv, onRead: o.onRead ?? (() => undefined) });
  }

  /** The node vector: per origin, the highest contiguous seq applied. */
  versionVector(): VersionVector {
    return this.driver.vv;
  }

  /** The node's current HLC (for heartbeats and skew checks). */
  clock(): Hlc {
    return this.driver.hlc;
  }

  // ---- writes ------------------------------------------------------------

  kvPut(key: string, valueJson: string, meta: WriteMeta): Promise<WriteAnswer | NodeError> {
    return this.writes.write(meta, "kv", key, { valueJson });
  }

  kvDelete(key: string, meta: WriteMeta): Promise<WriteAnswer | NodeError> {
    return this.writes.write(meta, "kv", key, { valueJson: null });
  }

  counterAdd(key: string, delta: number, meta: WriteMeta): Promise<WriteAnswer | NodeError> {
    return this.writes.write(meta, "counters", key, { delta });
  }

  setUpdate(key: string, add: readonly string[], remove: readonly string[], meta: WriteMeta): Promise<WriteAnswer | NodeError> {
    return this.writes.write(meta, "sets", key, { add, remove });
  }

  docUpdate(key: string, update: Uint8Array, meta: WriteMeta): Promise<WriteAnswer | NodeError> {
    if (!validateDocUpdate(update)) return Promise.resolve(nodeError("bad_request", "body is not a valid Yjs update"));
    // Checked against the doc when loading it is cheap enough; live-doc clients are
    // checked against their room's mirror doc whatever its size (yjs-rooms.ts).
    const state = this.storage.getDoc(key);
    if (state !== undefined && state.length <= DOC_CHECK_BYTES_MAX && !validateDocUpdateFor(state, update)) {
      return Promise.resolve(nodeError("bad_request", "body is a Yjs update that does not apply to this doc (it names parts of the doc with other content)"));
    }
    return this.writes.write(meta, "docs", key, { update });
  }

  /** True when this node holds the answer for an Idempotency-Key (committed, committing or in flight). */
  knowsIdempotencyKey(key: string): boolean {
    return this.idempotent.knows(key);
  }

  /**
   * Installs the snapshot staged in the store (core/snapshot.ts's rules), once
   * the commits under way are done; readers waiting for a vector wake.
   */
  async installSnapshot(header: SnapshotHeader): Promise<InstallResult> {
    const result = await this.driver.install(() => this.storage.installSnapshot(header, installRules(this.nodeId, header)));
    this.reads.wake();
    return result;
  }

  /** Applies ops that came from peers; resolves once they are durable. Returns what was new. */
  applyRemote(ops: readonly Op[]): Promise<Op[]> {
    return applyRemoteOps(this.driver, ops);
  }

  // ---- reads -------------------------------------------------------------

  kvGet(key: string): KvRead | undefined {
    return this.reads.kvGet(key);
  }

  kvList(prefix: string, after: string | undefined, limit: number): { items: KvRead[]; next: string | null } {
    return this.reads.kvList(prefix, after, limit);
  }

  counterGet(key: string): number {
    return this.reads.counterGet(key);
  }

  setGet(key: string): string[] {
    return this.reads.setGet(key);
  }

  docGet(key: string, sv: Uint8Array | undefined): Uint8Array | NodeError {
    return this.reads.docGet(key, sv);
  }

  conflicts(limit: number): Conflict[] {
    return this.reads.conflicts(limit);
  }

  /** True when this node has applied the write named by `token`. */
  hasApplied(origin: string, seq: number): boolean {
    return this.reads.hasApplied(origin, seq);
  }

  awaitToken(token: CausalToken, waitMs: number): Promise<true | NodeError> {
    return this.reads.awaitToken(token, waitMs);
  }
}
