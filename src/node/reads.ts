// The read path of a node's replica: what GET requests see, through each
// namespace's read in the core table, and read-your-writes (a request with a
// causal token waits until this node has applied the write it names).

import { docDiff, validateStateVector } from "../core/crdt/ydoc.js";
import { loadState, readState } from "../core/apply/table.js";
import type { CausalToken } from "../core/causal-token.js";
import type { NodeId } from "../core/ids.js";
import type { Conflict, Namespace } from "../core/op.js";
import type { VersionVector } from "../core/version-vector.js";
import type { Storage } from "../storage/port.js";
import { nodeError, type NodeError } from "./errors.js";
import type { KvRead } from "./service.js";

/** What reads need. */
export interface ReadsOptions {
  readonly storage: Storage;
  /** The node vector as it stands now. */
  readonly vv: () => VersionVector;
  /** Called once per client read served: the reads metric. */
  readonly onRead: (ns: Namespace) => void;
  /** Asked before a token read starts to wait, with how many wait now: null, or the answer to give instead (overloaded). */
  readonly admitWait: (waiting: number) => NodeError | null;
}

/** Reads of committed state, and waits for causal tokens. */
export class Reads {
  /** Readers waiting for a token (read-your-writes), woken after each commit. */
  private readonly tokenWaiters = new Set<() => void>();

  /**
   * Per origin, the highest seq whose op is committed. The node vector runs
   * ahead of it while a group commit is pending; a token read must wait for
   * this one, or it would read the table from before the write its token names.
   */
  private readonly committedSeqs = new Map<string, number>();

  constructor(private readonly o: ReadsOptions) {
    for (const [origin, seq] of Object.entries(o.storage.appliedVv())) this.committedSeqs.set(origin, seq);
  }

  /** Ops just committed (local or remote): token reads that name them may go ahead. */
  committed(ops: readonly { readonly origin: string; readonly seq: number }[]): void {
    for (const op of ops) if (op.seq > (this.committedSeqs.get(op.origin) ?? 0)) this.committedSeqs.set(op.origin, op.seq);
  }

  kvGet(key: string): KvRead | undefined {
    this.o.onRead("kv");
    const r = readState("kv", loadState(this.o.storage, "kv", key));
    return r === undefined ? undefined : { key, ...r };
  }

  kvList(prefix: string, after: string | undefined, limit: number): { items: KvRead[]; next: string | null } {
    this.o.onRead("kv");
    const rows = this.o.storage.listKv({ prefix, ...(after === undefined ? {} : { after }), limit: limit + 1 });
    const items: KvRead[] = [];
    for (const row of rows.slice(0, limit)) {
      const r = readState("kv", row.reg);
      if (r !== undefined) items.push({ key: row.key, ...r });
    }
    const next = rows.length > limit ? (items[items.length - 1]?.key ?? null) : null;
    return { items, next };
  }

  counterGet(key: string): number {
    this.o.onRead("counters");
    return readState("counters", loadState(this.o.storage, "counters", key));
  }

  setGet(key: string): string[] {
    this.o.onRead("sets");
    return readState("sets", loadState(this.o.storage, "sets", key));
  }

  docGet(key: string, sv: Uint8Array | undefined): Uint8Array | NodeError {
    if (sv !== undefined && !validateStateVector(sv)) return nodeError("bad_request", "sv is not a valid Yjs state vector");
    this.o.onRead("docs");
    return docDiff(readState("docs", loadState(this.o.storage, "docs", key)), sv);
  }

  conflicts(limit: number): Conflict[] {
    return this.o.storage.conflicts(limit);
  }

  /** True when this node has applied the write named by `token`. */
  hasApplied(origin: string, seq: number): boolean {
    return (this.committedSeqs.get(origin) ?? 0) >= seq || this.o.storage.hasOp(origin as NodeId, seq);
  }

  /**
   * Resolves once this node has applied the write named by `token`, or with
   * stale_replica after `waitMs`. A duration, not a wall-clock deadline: a
   * clock stepped back or forward must not lengthen or cut the wait.
   */
  async awaitToken(t: CausalToken, waitMs: number): Promise<true | NodeError> {
    if (this.hasApplied(t.origin, t.seq)) return true;
    const shed = this.o.admitWait(this.tokenWaiters.size);
    if (shed !== null) return shed;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.tokenWaiters.delete(check);
        resolve(nodeError("stale_replica", "this replica has not yet applied the write the token names; retry or ask another node", 1));
      }, Math.max(0, waitMs));
      const check = () => {
        if (!this.hasApplied(t.origin, t.seq)) return;
        clearTimeout(timer);
        this.tokenWaiters.delete(check);
        resolve(true);
      };
      this.tokenWaiters.add(check);
    });
  }

  /** Lets waiting readers look again: called after every commit. */
  wake(): void {
    for (const wake of [...this.tokenWaiters]) wake();
  }
}
