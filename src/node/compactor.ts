// Runs op-log compaction (src/core/compaction.ts) against the store, in the
// background and on demand. It decides nothing: each step it asks the core
// for the stability frontier and for the vector to compact to, removes those
// ops, tells the replicator the new floor, and yields to the event loop
// before the next step, so a large backlog never holds the loop. After a
// pass that removed anything it returns the freed pages to the file system,
// a bounded number per turn. It also prunes idempotency records past their
// TTL, at most every IDEMPOTENCY_PRUNE_EVERY_MS or when asked.

import type { Logger } from "pino";
import { foldStableKv, planCompactionStep, planTombstoneSweep, tombstoneDroppable, type TombstoneHorizon } from "../core/compaction.js";
import { mergeVv, vvEquals, type VersionVector } from "../core/version-vector.js";
import type { KvFold, Storage } from "../storage/port.js";

/** How often a background pass runs. */
export const COMPACT_EVERY_MS = 1000;
/** Ops removed per step (one event-loop turn): a few milliseconds of SQLite work. */
export const COMPACT_STEP_OPS = 2000;
/** Free database pages returned to the file system per turn (1 MiB of 4 KiB pages). */
export const RECLAIM_PAGES_PER_TURN = 256;
/** kv tombstones read per step of a sweep, and kv rows read per step of a fold. */
export const SWEEP_STEP_ROWS = 500;
/** kv rows a pass reads for folding at most: a million keys are folded over minutes, a few ms a second. */
export const FOLD_ROWS_PER_PASS = 5000;
/** Idempotency records past their TTL are pruned at most this often in the background. */
export const IDEMPOTENCY_PRUNE_EVERY_MS = 10 * 60 * 1000;

/** What one pass did, as POST /admin/compact answers it. */
export interface CompactionReport {
  readonly compactedOps: number;
  readonly droppedTombstones: number;
  /** kv rows whose causally stable versions were folded to their dots. */
  readonly foldedKv: number;
  readonly prunedIdempotency: number;
  readonly reclaimedPages: number;
  readonly opLogOps: number;
  readonly compactedVv: VersionVector;
  readonly stableVv: VersionVector;
}

export interface CompactorOptions {
  readonly storage: Storage;
  /** Op-log rows kept before stable ones go (--op-log-retain-ops). */
  readonly retainOps: number;
  /** The stability frontier from the replication machine, given the persisted one. */
  readonly stableVv: (persisted: VersionVector) => VersionVector;
  /** Tells the replication machine the op log's new floor. */
  readonly compacted: (floor: VersionVector) => void;
  /** The tombstone horizon the replication machine could take now. */
  readonly tombstoneHorizon: () => TombstoneHorizon | null;
  readonly idempotencyTtlMs: number;
  readonly now: () => number;
  readonly logger: Logger;
}

/** Yields to the event loop: timers, I/O and heartbeats run between steps. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Compactor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CompactionReport> | undefined;
  /** A forced pass waiting for the running one to end. */
  private forced: Promise<CompactionReport> | undefined;
  private stopped = false;
  private prunedAtMs: number;
  private swept: VersionVector;
  /** Where the fold scan goes on ("": from the first key), and the swept vector it folds under. */
  private foldAfter = "";
  private foldUnder: VersionVector = {};
  /** The swept vector of the last fold scan that reached the end: nothing is left to fold until it grows. */
  private foldedAll: VersionVector = {};

  constructor(private readonly o: CompactorOptions) {
    this.prunedAtMs = o.now();
    this.swept = o.storage.getMeta("sweptVv") ?? {};
  }

  /** Covers every kv tombstone dropped here: a write to an absent kv key carries it (write.ts). */
  sweptVv(): VersionVector {
    return this.swept;
  }

  /** A snapshot install joined the sender's swept context into the store's: take it. */
  installed(): void {
    this.swept = mergeVv(this.swept, this.o.storage.getMeta("sweptVv") ?? {});
  }

  start(): void {
    this.timer = setInterval(() => {
      this.pass(false).catch((err: unknown) => this.o.logger.error({ err }, "op-log compaction failed"));
    }, COMPACT_EVERY_MS);
    this.timer.unref();
  }

  /** Stops the background passes; a pass under way ends at its next step. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    return this.running?.then(() => undefined, () => undefined) ?? Promise.resolve();
  }

  /** The frontier as persisted: it only grows. */
  persistedStable(): VersionVector {
    return this.o.storage.getMeta("stableVv") ?? {};
  }

  /** The frontier now (not persisted by this call). */
  stableVv(): VersionVector {
    return this.o.stableVv(this.persistedStable());
  }

  /** Runs one pass now (POST /admin/compact), or joins the one under way; `force` also prunes idempotency records. */
  runNow(): Promise<CompactionReport> {
    return this.pass(true);
  }

  private pass(force: boolean): Promise<CompactionReport> {
    if (this.running === undefined) return this.begin(force);
    if (!force) return this.running;
    // Asked for "now" while a pass runs: one forced pass right after it, which
    // every caller meanwhile shares. It starts in the same microtask chain as
    // the end of the running pass, so no background pass can slip in first
    // (under steady writes, waiting for "no pass running" could wait forever).
    this.forced ??= this.running.then(
      () => this.begin(true),
      () => this.begin(true),
    );
    return this.forced;
  }

  private begin(force: boolean): Promise<CompactionReport> {
    if (force) this.forced = undefined;
    const run = this.run(force).finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async run(force: boolean): Promise<CompactionReport> {
    const s = this.o.storage;
    let compactedOps = 0;
    let stable = this.stableVv();
    // A pass removes at most the excess it found: under steady writes every
    // step finds a little more, and a pass that chased it would never end
    // (nor would a POST /admin/compact waiting for it). The next pass takes the rest.
    let budget = Math.max(0, s.opLogStats().ops - this.o.retainOps);
    for (;;) {
      if (this.stopped || budget <= 0) break;
      const target = planCompactionStep({
        logOps: s.opLogStats().ops,
        retainOps: this.o.retainOps,
        stable,
        floor: s.opLogFloor(),
        // Every applied op is logged in the same commit, so the applied vector is contiguous in the log.
        logVv: s.appliedVv(),
        maxOps: Math.min(COMPACT_STEP_OPS, budget),
      });
      if (target === null) break;
      // Persisted only when used: a pass with nothing to compact writes nothing (no fsync a second on an idle node).
      this.persistStable(stable);
      const removed = s.compactOps(target);
      compactedOps += removed;
      budget -= Math.max(1, removed);
      this.o.compacted(s.opLogFloor());
      await nextTurn();
      stable = this.stableVv();
    }
    const droppedTombstones = this.stopped ? 0 : await this.sweepTombstones();
    const foldedKv = this.stopped ? 0 : await this.foldStable();
    // Stopping: the store is about to close, so nothing more is read from it.
    if (this.stopped) return { compactedOps, droppedTombstones, foldedKv, prunedIdempotency: 0, reclaimedPages: 0, opLogOps: 0, compactedVv: {}, stableVv: stable };
    let prunedIdempotency = 0;
    const nowMs = this.o.now();
    if ((force || nowMs - this.prunedAtMs >= IDEMPOTENCY_PRUNE_EVERY_MS)) {
      this.prunedAtMs = nowMs;
      prunedIdempotency = s.pruneIdempotency(Math.max(0, nowMs - this.o.idempotencyTtlMs));
    }
    const worked = compactedOps > 0 || droppedTombstones > 0 || prunedIdempotency > 0 || force;
    const reclaimedPages = worked ? await this.reclaim() : 0;
    // The WAL keeps its largest size until truncated (journal_size_limit is far above it): after a pass
    // that freed space, give that back too. A snapshot being streamed holds it; the next pass tries again.
    if (worked && !this.stopped) s.truncateWal();
    if (this.stopped) return { compactedOps, droppedTombstones, foldedKv, prunedIdempotency, reclaimedPages, opLogOps: 0, compactedVv: {}, stableVv: stable };
    if (compactedOps > 0 || droppedTombstones > 0 || prunedIdempotency > 0) {
      this.o.logger.info({ compactedOps, droppedTombstones, foldedKv, prunedIdempotency, reclaimedPages, floor: s.opLogFloor(), stableVv: stable, opLogOps: s.opLogStats().ops }, "compacted the op log");
    }
    return { compactedOps, droppedTombstones, foldedKv, prunedIdempotency, reclaimedPages, opLogOps: s.opLogStats().ops, compactedVv: s.opLogFloor(), stableVv: stable };
  }

  /**
   * One round of the tombstone rules (compaction.ts): once the frontier has
   * passed the kept horizon, drops the tombstones under it, SWEEP_STEP_ROWS
   * read per turn, after making the swept vector durable; then keeps the
   * horizon of now for the next round.
   */
  private async sweepTombstones(): Promise<number> {
    const s = this.o.storage;
    const floor = s.opLogFloor();
    // Tombstones go only with compacted ops: before the first compaction there is nothing to sweep (and no horizon to write each second).
    if (Object.keys(floor).length === 0) return 0;
    const kept = s.getMeta("tombstoneHorizon") ?? null;
    const plan = planTombstoneSweep(kept, this.o.tombstoneHorizon(), floor);
    let dropped = 0;
    if (plan.sweep !== null) {
      // Durable before the first drop: a write to a key swept here must carry it.
      const swept = mergeVv(this.swept, plan.sweep);
      if (!vvEquals(swept, this.swept)) s.setMeta("sweptVv", swept);
      this.swept = swept;
      for (let after = ""; !this.stopped; ) {
        const rows = s.listTombstones(after, SWEEP_STEP_ROWS);
        const last = rows[rows.length - 1];
        if (last === undefined) break;
        after = last.key;
        const covered = plan.sweep;
        dropped += s.dropTombstones(rows.filter((r) => tombstoneDroppable(r.reg, covered)));
        await nextTurn();
      }
    }
    if (!this.stopped && JSON.stringify(plan.next) !== JSON.stringify(kept)) s.setMeta("tombstoneHorizon", plan.next);
    return dropped;
  }

  /**
   * Folds causally stable kv versions to their dots (compaction.ts), reading
   * at most FOLD_ROWS_PER_PASS rows a pass, SWEEP_STEP_ROWS a turn, from where
   * the last pass stopped. A scan folds under the swept vector it started
   * with; once one reaches the end, the next begins only when the swept vector
   * has grown, so an idle node reads nothing.
   */
  private async foldStable(): Promise<number> {
    const s = this.o.storage;
    if (this.foldAfter === "") {
      if (Object.keys(this.swept).length === 0 || vvEquals(this.swept, this.foldedAll)) return 0;
      this.foldUnder = this.swept;
    }
    let folded = 0;
    for (let read = 0; read < FOLD_ROWS_PER_PASS && !this.stopped; ) {
      const rows = s.listKv({ after: this.foldAfter, limit: SWEEP_STEP_ROWS, includeDeleted: true });
      const last = rows[rows.length - 1];
      if (last === undefined) {
        this.foldedAll = this.foldUnder;
        this.foldAfter = "";
        break;
      }
      read += rows.length;
      this.foldAfter = last.key;
      const changes: KvFold[] = [];
      for (const r of rows) {
        const to = foldStableKv(r.reg, this.foldUnder);
        if (to !== null) changes.push({ key: r.key, from: r.reg, to });
      }
      folded += s.foldKv(changes);
      await nextTurn();
    }
    return folded;
  }

  /** Persists the frontier when it grew: what is persisted only grows. */
  private persistStable(stable: VersionVector): void {
    const before = this.persistedStable();
    const grown = mergeVv(before, stable);
    if (!vvEquals(grown, before)) this.o.storage.setMeta("stableVv", grown);
  }

  /** Returns free pages to the file system, RECLAIM_PAGES_PER_TURN per turn, until none is left or the compactor stops. */
  private async reclaim(): Promise<number> {
    let total = 0;
    while (!this.stopped) {
      const pages = this.o.storage.reclaimSpace(RECLAIM_PAGES_PER_TURN);
      total += pages;
      if (pages < RECLAIM_PAGES_PER_TURN) break;
      await nextTurn();
    }
    return total;
  }
}
