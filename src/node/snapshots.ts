// Carries out snapshots both ways (the rules are core/snapshot.ts's and the
// replication machine's): streams this node's state to a peer when the
// machine says so, and stages and installs one a peer streams here.
//
// Sending: one consistent read (a read transaction on a second connection),
// in frames of at most SNAP_ROWS_MAX rows and about SNAP_FRAME_BYTES, one per
// event-loop turn and only while the link's send queue has room, so a large
// state costs bounded memory and never holds the loop. Receiving: rows are
// staged in the store as they come (not in memory), and the end installs them
// in one transaction, after the node's in-flight commits are done.

import type { Logger } from "pino";
import type { NodeId } from "../core/ids.js";
import { rowsBelong, snapshotComplete, takesSnapshot, type Receiving, type SnapshotHeader } from "../core/snapshot.js";
import { SNAP_FRAME_BYTES, SNAP_ROWS_MAX, type SnapBeginFrame, type SnapEndFrame, type SnapRowsFrame } from "../net/frames.js";
import type { Hub } from "../net/hub.js";
import type { InstallResult, Storage } from "../storage/port.js";

/** A link's send queue above this holds the next frame back (the hub refuses frames past 8 MiB). */
export const SNAPSHOT_QUEUE_HIGH_BYTES = 2 * 1024 * 1024;
/** How long a sender waits for a full send queue to drain before it looks again. */
const DRAIN_POLL_MS = 5;

export interface SnapshotsOptions {
  readonly self: NodeId;
  readonly storage: Storage;
  readonly hub: Hub;
  readonly logger: Logger;
  /** True while the replication machine still wants snapshot `id` streamed to `peer`. */
  readonly wanted: (peer: NodeId, id: number) => boolean;
  /** The stream of snapshot `id` to `peer` ended: all of it went out (ok), or not. */
  readonly sent: (peer: NodeId, id: number, ok: boolean, reason?: string) => void;
  /** Installs the staged snapshot (after in-flight commits) and refreshes what caches the state. */
  readonly install: (header: SnapshotHeader) => Promise<InstallResult>;
}

export type SnapshotFrame = SnapBeginFrame | SnapRowsFrame | SnapEndFrame;

/** Snapshots to and from this node. */
export class Snapshots {
  private receiving: Receiving | null = null;
  private installing = false;
  private stopped = false;

  constructor(private readonly o: SnapshotsOptions) {
    // Rows staged before a crash belong to a stream that is gone: the sender starts a new one.
    o.storage.clearSnapshotStage();
  }

  stop(): void {
    this.stopped = true;
  }

  /** True while a snapshot is being received or installed here. */
  busy(): boolean {
    return this.receiving !== null || this.installing;
  }

  // ---- sending -------------------------------------------------------------------

  /** Streams snapshot `id` of this node's state to `peer` (the machine asked for it). */
  send(peer: NodeId, id: number): void {
    void this.stream(peer, id).then(
      (r) => this.o.sent(peer, id, r.ok, r.reason),
      (err: unknown) => {
        this.o.logger.error({ err, peer, id }, "snapshot stream failed");
        this.o.sent(peer, id, false, (err as Error).message);
      },
    );
  }

  private async stream(peer: NodeId, id: number): Promise<{ ok: boolean; reason?: string }> {
    const reader = this.o.storage.openSnapshot();
    const startedMs = performance.now();
    let rows = 0;
    let bytes = 0;
    try {
      const h = reader.header;
      this.o.logger.info({ peer, id, vv: h.vv }, "streaming a snapshot");
      if (!this.o.hub.send(peer, { t: "snap-begin", id, vv: h.vv, sweptVv: h.sweptVv, hlc: h.hlc })) return { ok: false, reason: "the link refused the first frame" };
      for (;;) {
        await new Promise((resolve) => setImmediate(resolve));
        while (!this.stopped && this.o.wanted(peer, id) && this.o.hub.queuedBytes(peer) > SNAPSHOT_QUEUE_HIGH_BYTES) {
          await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
        }
        if (this.stopped) return { ok: false, reason: "the node is stopping" };
        if (!this.o.wanted(peer, id)) return { ok: false, reason: "no longer wanted (the link went down, or the peer caught up)" };
        const chunk = reader.next(SNAP_ROWS_MAX, SNAP_FRAME_BYTES);
        if (chunk.length === 0) break;
        if (!this.o.hub.send(peer, { t: "snap-rows", id, rows: chunk })) return { ok: false, reason: "the link's send queue is full or the link is down" };
        rows += chunk.length;
        for (const r of chunk) bytes += r.data.length;
      }
      if (!this.o.hub.send(peer, { t: "snap-end", id, rows })) return { ok: false, reason: "the link refused the last frame" };
      this.o.logger.info({ peer, id, rows, bytes, ms: Math.round(performance.now() - startedMs) }, "snapshot streamed");
      return { ok: true };
    } finally {
      reader.close();
    }
  }

  // ---- receiving -----------------------------------------------------------------

  /** A snapshot frame from `peer`. */
  onFrame(peer: NodeId, f: SnapshotFrame): void {
    if (this.stopped) return;
    switch (f.t) {
      case "snap-begin":
        return this.begin(peer, f);
      case "snap-rows":
        if (!rowsBelong(this.receiving, peer, f.id)) return;
        this.o.storage.stageSnapshotRows(f.rows);
        this.receiving = { ...(this.receiving as Receiving), rows: (this.receiving as Receiving).rows + f.rows.length, lastMs: performance.now() };
        return;
      case "snap-end":
        return this.end(peer, f);
      default: {
        const never: never = f;
        this.o.logger.warn({ peer, frame: never }, "unexpected snapshot frame");
      }
    }
  }

  private begin(peer: NodeId, f: SnapBeginFrame): void {
    if (this.installing || !takesSnapshot(this.receiving, peer, (p) => this.o.hub.isUp(p), performance.now())) {
      this.o.logger.info({ peer, id: f.id, receivingFrom: this.receiving?.from ?? null }, "a snapshot is already being received or installed here; ignoring another");
      return;
    }
    this.o.storage.clearSnapshotStage();
    this.receiving = { from: peer, id: f.id, header: { vv: f.vv, sweptVv: f.sweptVv, hlc: f.hlc }, rows: 0, lastMs: performance.now() };
    this.o.logger.info(
      { peer, id: f.id, snapshotVv: f.vv, localVv: this.o.storage.appliedVv() },
      "receiving a snapshot: this node needs ops its peer compacted away, so it takes the peer's state instead",
    );
  }

  private end(peer: NodeId, f: SnapEndFrame): void {
    const r = this.receiving;
    if (!rowsBelong(r, peer, f.id)) return;
    this.receiving = null;
    if (!snapshotComplete(r, peer, f.id, f.rows)) {
      this.o.logger.warn({ peer, id: f.id, expected: f.rows, staged: r?.rows }, "snapshot ended with rows missing; discarded (the peer sends another)");
      this.o.storage.clearSnapshotStage();
      return;
    }
    this.installing = true;
    const startedMs = performance.now();
    this.o.install((r as Receiving).header).then(
      (res) => {
        this.installing = false;
        this.o.logger.info(
          { peer, id: f.id, rows: res.rows, removedKv: res.removedKv, ms: Math.round(performance.now() - startedMs), vv: this.o.storage.appliedVv() },
          "snapshot installed: this node holds its peer's state and catches up from there",
        );
      },
      (err: unknown) => {
        this.installing = false;
        this.o.logger.error({ err, peer, id: f.id }, "snapshot install failed; nothing of it was applied");
        try {
          this.o.storage.clearSnapshotStage();
        } catch (e) {
          this.o.logger.error({ err: e }, "could not clear the snapshot stage");
        }
      },
    );
  }
}
