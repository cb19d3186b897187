// The partition heal's baseline: how fast ONE node applies, through geokv's
// own apply path (ApplyDriver -> group commit -> SQLite at synchronous=FULL),
// the op copies it lacked at heal time when it reads them from an op log with
// nothing else running. At the heal nine nodes do that work at once, over the
// network and on the same cores; this says what one of them can do alone.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeId } from "../src/core/ids.js";
import type { Op } from "../src/core/op.js";
import type { Storage } from "../src/storage/port.js";
import { onCleanup, type Build } from "./support.js";

/** Ops per page read and applied: one ops frame's worth (FRAME_OPS_MAX in src/net/frames.ts). */
export const PAGE_OPS = 512;
/** Pages applied but not yet committed at once: a bounded window, as the replicator keeps per peer. */
export const PAGES_IN_FLIGHT_MAX = 4;

type Vv = Readonly<Record<string, number>>;

/** The ops of `origin` with fromSeq <= seq <= toSeq from `log`, in seq order, at most `pageOps` per page. */
export function* opPages(log: Pick<Storage, "getOps">, origin: NodeId, fromSeq: number, toSeq: number, pageOps: number): Generator<Op[]> {
  // Bounded: every page advances `from` by at least one op, and an empty page ends it.
  for (let from = fromSeq; from <= toSeq; ) {
    const ops = log.getOps(origin, from, toSeq, pageOps);
    if (ops.length === 0) return;
    yield ops;
    from = (ops[ops.length - 1] as Op).seq + 1;
  }
}

/** What the baseline measured. */
export interface LogApply {
  /** The ops applied in the timed part: those the node lacked at heal time. */
  readonly ops: number;
  readonly seconds: number;
  readonly opsPerSec: number;
  /** The ops applied first, untimed: what the node had at heal time. */
  readonly prefillOps: number;
}

function assertVv(what: string, got: Vv, want: Vv): void {
  for (const k of new Set([...Object.keys(got), ...Object.keys(want)])) {
    if ((got[k] ?? 0) !== (want[k] ?? 0)) throw new Error(`log-apply baseline: ${what}: vv[${k}] is ${got[k] ?? 0}, expected ${want[k] ?? 0}`);
  }
}

/**
 * Into a fresh database for `node`: applies, untimed, every op `node` had at
 * heal time (`had`), then, timed, the ops up to `union` it lacked, all read
 * from the stopped node's own database `sourceDb` (which holds everything
 * after convergence). Throws unless the fresh database ends at `union`.
 */
export async function measureLogApply(build: Build, sourceDb: string, node: string, had: Vv, union: Vv): Promise<LogApply> {
  const { openSqliteStorage } = await build.importModule<typeof import("../src/storage/sqlite.js")>("storage/sqlite.js");
  const { createGroupCommitter } = await build.importModule<typeof import("../src/storage/group-commit.js")>("storage/group-commit.js");
  const { ApplyDriver } = await build.importModule<typeof import("../src/node/apply-driver.js")>("node/apply-driver.js");
  const { asNodeId } = await build.importModule<typeof import("../src/core/ids.js")>("core/ids.js");
  const dir = mkdtempSync(join(tmpdir(), "geokv-bench-apply-"));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  const unregister = onCleanup(removeDir);
  const source = openSqliteStorage({ path: sourceDb });
  const target = openSqliteStorage({ path: join(dir, "geokv.db") });
  const committer = createGroupCommitter(target);
  const driver = new ApplyDriver({ nodeId: asNodeId(node), storage: target, committer, idempotencyKeyHeld: () => false, onCommitted: () => undefined });

  /** Applies, origin by origin (the gap rule is per origin), the ops above `from` up to `to`; resolves with their count once committed. */
  const applyRange = async (from: Vv, to: Vv): Promise<number> => {
    const pending: Promise<void>[] = [];
    let n = 0;
    for (const [origin, top] of Object.entries(to)) {
      for (const page of opPages(source, asNodeId(origin), (from[origin] ?? 0) + 1, top, PAGE_OPS)) {
        if (pending.length >= PAGES_IN_FLIGHT_MAX) await pending.shift();
        const committed = driver.apply(page).committed;
        // Awaited in order below; this keeps a failure of a later page from being an unhandled rejection meanwhile.
        committed.catch(() => undefined);
        pending.push(committed);
        n += page.length;
      }
    }
    await Promise.all(pending);
    return n;
  };

  try {
    const prefillOps = await applyRange({}, had);
    assertVv("after applying what the node had at heal time", target.appliedVv(), had);
    const t0 = performance.now();
    const ops = await applyRange(had, union);
    const seconds = (performance.now() - t0) / 1000;
    assertVv("after applying what the node lacked at heal time", target.appliedVv(), union);
    if (ops === 0) throw new Error("log-apply baseline: the node lacked no ops at heal time");
    return { ops, seconds, opsPerSec: ops / seconds, prefillOps };
  } finally {
    await committer.close();
    target.close();
    source.close();
    removeDir();
    unregister();
  }
}
