// Snapshots in the simulated node, carried out as src/node/snapshots.ts
// carries them out, on the same core rules (core/snapshot.ts) and the same
// machine calls (snapshotWanted, input snapshot_sent): the sender streams
// snap-begin, snap-rows (a bounded frame per step, only while the machine
// still wants it), snap-end, then tells the machine; the receiver takes one
// snapshot at a time (takesSnapshot), stages rows through the storage port
// as they come, and at the end installs them once no commit of its own is in
// flight (ApplyDriver.install's quiesce), refreshes its vector, seq and clock
// and tells its machine committed + compacted.
//
// What the simulator adds: the sender reads its snapshot at a moment when
// everything it committed is durable (a real node reads SQLite's committed
// state, which is durable; the simulator's live store also holds commits not
// yet synced), and the install holds the node's loop for a time that grows
// with its rows (the real install is one synchronous transaction): a crash
// in that window leaves none of it (memory-crash.ts journals it as one write).

import { rowsBelong, snapshotComplete, takesSnapshot, installRules, type Receiving, type SnapshotHeader, type SnapshotRow } from "../../../src/core/snapshot.js";
import type { NodeId } from "../../../src/core/ids.js";
import { snapshotWanted } from "../../../src/core/replication/machine.js";
import { vvGet, type VersionVector } from "../../../src/core/version-vector.js";
import type { SnapBeginFrame, SnapEndFrame, SnapRowsFrame } from "../../../src/net/frames.js";
import type { KvRow } from "../../../src/storage/port.js";
import type { SimNode } from "./node.js";

/** The simulator's frame budgets (the node's are SNAP_ROWS_MAX and SNAP_FRAME_BYTES): small, so a snapshot takes many frames. */
export const SIM_SNAP_ROWS_MAX = 3;
export const SIM_SNAP_FRAME_BYTES = 2048;
/** Between two frames of a stream (the node's turn of the event loop, and its drain wait). */
export const SIM_SNAP_STEP_MS = 2;
/** How often a waiting install looks again for the commits in flight to be done. */
const QUIESCE_POLL_MS = 0.5;

/** How long an install's transaction holds the node's loop. */
export function installHoldMs(rows: number): number {
  return 2 + rows * 0.5;
}

export type SnapshotFrame = SnapBeginFrame | SnapRowsFrame | SnapEndFrame;

/** Where a crash may hit a snapshot at its receiver. */
export type SnapshotCrashPhase = "staging" | "installing" | "installed";

/** What an install did, for the counts of a run and the checks. */
export interface InstallRecord {
  readonly node: NodeId;
  readonly from: NodeId;
  readonly header: SnapshotHeader;
  /** The receiver's vector before: empty for a node that lost its disk. */
  readonly before: VersionVector;
  /** Own ops the receiver held beyond the snapshot's vector, kept (a deposed leader's writes). */
  readonly keptOwn: number;
  /** The receiver had crashed inside an earlier install. */
  readonly afterInstallCrash: boolean;
}

export class SimSnapshots {
  private receiving: Receiving | null = null;
  private installing = false;
  /** The rows staged so far, as the checks need them (the store holds them for the install). */
  private staged: SnapshotRow[] = [];

  constructor(private readonly n: SimNode) {
    // Rows staged before a crash belong to a stream that is gone: the sender starts a new one.
    n.storage.clearSnapshotStage();
  }

  /** True while a snapshot is being received or installed here. */
  busy(): boolean {
    return this.receiving !== null || this.installing;
  }

  // ---- sending -------------------------------------------------------------------

  /** Streams snapshot `id` of this node's state to `peer` (the machine asked for it). */
  send(peer: NodeId, id: number): void {
    this.n.whenDurable(() => this.stream(peer, id));
  }

  private stream(peer: NodeId, id: number): void {
    const n = this.n;
    const host = n.host;
    if (!snapshotWanted(n.repl, peer, id)) return this.sent(peer, id, false, "no longer wanted before it began");
    const reader = n.storage.openSnapshot();
    const h = reader.header;
    const line = `${n.id} streams snapshot ${id} to ${peer} at ${JSON.stringify(h.vv)}`;
    host.note(() => line);
    if (!host.send(n, peer, { t: "snap-begin", id, vv: h.vv, sweptVv: h.sweptVv, hlc: h.hlc })) {
      reader.close();
      return this.sent(peer, id, false, "the link refused the first frame");
    }
    host.snapshotStreaming(n, peer);
    let rows = 0;
    const next = (): void => {
      if (!snapshotWanted(n.repl, peer, id)) {
        reader.close();
        return this.sent(peer, id, false, "no longer wanted (the link went down, or the peer caught up)");
      }
      const chunk = reader.next(SIM_SNAP_ROWS_MAX, SIM_SNAP_FRAME_BYTES);
      if (chunk.length === 0) {
        reader.close();
        const ok = host.send(n, peer, { t: "snap-end", id, rows });
        return this.sent(peer, id, ok, ok ? undefined : "the link refused the last frame");
      }
      if (!host.send(n, peer, { t: "snap-rows", id, rows: chunk })) {
        reader.close();
        return this.sent(peer, id, false, "the link is down");
      }
      rows += chunk.length;
      host.later(n, SIM_SNAP_STEP_MS, "io", next);
    };
    host.later(n, SIM_SNAP_STEP_MS, "io", next);
  }

  /** The stream's end, told as the node's promise callback tells it: after the current step. */
  private sent(peer: NodeId, id: number, ok: boolean, reason: string | undefined): void {
    const n = this.n;
    if (ok) n.snapshotsStreamed++;
    n.host.later(n, 0.01, "io", () => n.replInput({ type: "snapshot_sent", peer, id, ok, ...(reason === undefined ? {} : { reason }) }));
  }

  // ---- receiving -----------------------------------------------------------------

  onFrame(peer: NodeId, f: SnapshotFrame): void {
    switch (f.t) {
      case "snap-begin":
        return this.begin(peer, f);
      case "snap-rows":
        if (!rowsBelong(this.receiving, peer, f.id)) return;
        this.n.storage.stageSnapshotRows(f.rows);
        this.staged.push(...f.rows);
        this.receiving = { ...(this.receiving as Receiving), rows: (this.receiving as Receiving).rows + f.rows.length, lastMs: this.n.mono() };
        this.n.host.maybeCrashInSnapshot(this.n, "staging");
        return;
      case "snap-end":
        return this.end(peer, f);
    }
  }

  private begin(peer: NodeId, f: SnapBeginFrame): void {
    const n = this.n;
    if (this.installing || !takesSnapshot(this.receiving, peer, (p) => n.host.linkUp(n, p), n.mono())) return;
    n.storage.clearSnapshotStage();
    this.staged = [];
    this.receiving = { from: peer, id: f.id, header: { vv: f.vv, sweptVv: f.sweptVv, hlc: f.hlc }, rows: 0, lastMs: n.mono() };
    const line = `${n.id} receives snapshot ${f.id} from ${peer} at ${JSON.stringify(f.vv)} (it holds ${JSON.stringify(n.vv)})`;
    n.host.note(() => line);
  }

  private end(peer: NodeId, f: SnapEndFrame): void {
    const r = this.receiving;
    if (!rowsBelong(r, peer, f.id)) return;
    this.receiving = null;
    if (!snapshotComplete(r, peer, f.id, f.rows)) {
      this.n.host.note(() => `${this.n.id} discards snapshot ${f.id} from ${peer}: ${f.rows} rows sent, ${r?.rows ?? 0} staged`);
      this.n.storage.clearSnapshotStage();
      this.staged = [];
      return;
    }
    this.installing = true;
    this.install(peer, (r as Receiving).header, this.staged);
    this.staged = [];
  }

  /** ApplyDriver.install: once every commit under way is durable, with nothing in between; then the machine hears of it. */
  private install(from: NodeId, header: SnapshotHeader, rows: readonly SnapshotRow[]): void {
    const n = this.n;
    if (!n.quiet()) {
      n.host.later(n, QUIESCE_POLL_MS, "io", () => this.install(from, header, rows));
      return;
    }
    const before = n.vv;
    const localKv: KvRow[] = n.storage.listKv({ limit: 10_000, includeDeleted: true });
    const result = n.storage.installSnapshot(header, installRules(n.id, header));
    n.refreshAfterInstall();
    n.host.monitor.installed(n, header, rows, localKv);
    const afterInstallCrash = n.crashedInInstall;
    // The transaction holds the loop; it is durable when it returns.
    n.host.block(n, installHoldMs(result.rows), () => {
      n.disk.sync();
      if (n.host.maybeCrashInSnapshot(n, "installed")) return;
      this.installing = false;
      n.crashedInInstall = false;
      const keptOwn = Math.max(0, vvGet(before, n.id) - vvGet(header.vv, n.id));
      n.installRecords.push({ node: n.id, from, header, before, keptOwn, afterInstallCrash });
      const line = `${n.id} installed a snapshot from ${from}: ${result.rows} rows, ${result.removedKv} kv rows removed, vv ${JSON.stringify(n.vv)}${keptOwn > 0 ? `, ${keptOwn} own ops beyond it kept` : ""}`;
      n.host.note(() => line);
      if (keptOwn > 0) n.host.monitor.keptBeyondSnapshot(n, vvGet(header.vv, n.id) + 1, vvGet(before, n.id));
      // Replicator.installed() feeds committed, then compacted; between the two the machine plans ops
      // below the new floor that the install removed from the log (seed 93 of the snapshot schedules).
      // The floor goes first here, so the machine never plans them.
      n.replInput({ type: "compacted", floor: n.storage.opLogFloor() });
      n.replInput({ type: "committed", vv: n.storage.appliedVv() });
      n.electionInput({ type: "local_vv", vv: n.vv });
    });
    n.host.maybeCrashInSnapshot(n, "installing");
  }
}
