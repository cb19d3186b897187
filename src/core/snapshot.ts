// Snapshots, as pure rules: how a node that needs ops its peer compacted away
// takes the peer's materialized state instead, and what that state replaces.
//
// A snapshot is one node's state of every namespace, read in one consistent
// transaction, tied to the vector `vv` that node had applied then. Everything
// an op covered by `vv` did is in it, and nothing else. So on install:
//
// - counters, sets and docs are joins (their states only grow): the local
//   state and the snapshot's are merged, and a local op beyond `vv` stays in;
// - a kv register is not a join once tombstones are dropped: the sender may
//   have dropped a key's tombstone, and with it every version it superseded.
//   A local version whose dot `vv` covers is replaced by what the snapshot
//   says of the key (a key the snapshot lacks was deleted and swept there), so
//   a deleted and compacted key stays deleted; a local version `vv` does not
//   cover (a deposed leader's unreplicated write) is kept and merged.
//
// The sender's `sweptVv` joins the receiver's: a later write to an absent key
// must carry it as its context (compaction.ts), here as there.

import { entryOf } from "./apply/table.js";
import type { AnyState, RowOf, StateOf } from "./apply/types.js";
import { compareHlc, type Hlc } from "./hlc.js";
import type { NodeId } from "./ids.js";
import { mutated } from "./mutations.js";
import type { KvRegister, Namespace } from "./op.js";
import { mergeCounter } from "./crdt/pn-counter.js";
import { mergeKv } from "./crdt/lww.js";
import { mergeSet } from "./crdt/or-set.js";
import { mergeDoc } from "./crdt/ydoc.js";
import { mergeVv, vvGet, type VersionVector } from "./version-vector.js";

/** What a snapshot row holds: a key's state in one namespace, or an idempotency record ("idem"). */
export const SNAPSHOT_NAMESPACES = ["kv", "counters", "sets", "docs", "idem"] as const;
export type SnapshotNs = (typeof SNAPSHOT_NAMESPACES)[number];

/**
 * One row of a snapshot as it travels and is staged: the stored encoding of
 * the state (JSON text as UTF-8 for kv, counters, sets and idempotency
 * records; the Yjs update for docs), decoded only when installed.
 */
export interface SnapshotRow {
  readonly ns: SnapshotNs;
  readonly key: string;
  readonly data: Uint8Array;
}

/** What a snapshot says about itself before its rows. */
export interface SnapshotHeader {
  /** Every op this vector covers is in the rows, and no other. */
  readonly vv: VersionVector;
  /** The sender's sweptVv: covers every kv tombstone it dropped. */
  readonly sweptVv: VersionVector;
  /** The sender's clock when it read the snapshot: the receiver's clock moves past it. */
  readonly hlc: Hlc;
}

/** The kv register a snapshot leaves: the snapshot's versions, and the local ones `vv` does not cover. */
export function installKv(local: KvRegister | undefined, snap: KvRegister | undefined, vv: VersionVector): KvRegister | undefined {
  const kept = mutated("install-keeps-covered")
    ? (local?.siblings ?? [])
    : (local?.siblings ?? []).filter((v) => v.seq > vvGet(vv, v.origin));
  const mine: KvRegister | undefined = kept.length > 0 ? { siblings: kept } : undefined;
  if (mine === undefined) return snap;
  return snap === undefined ? mine : mergeKv(mine, snap);
}

/**
 * A key's state after installing a snapshot with vector `vv` over it: undefined
 * when the key is to be gone (a kv key deleted and swept at the sender).
 */
export function installState<N extends Namespace>(ns: N, local: StateOf<N> | undefined, snap: StateOf<N> | undefined, vv: VersionVector): StateOf<N> | undefined {
  if (ns === "kv") return installKv(local as KvRegister | undefined, snap as KvRegister | undefined, vv) as StateOf<N> | undefined;
  if (local === undefined) return snap;
  if (snap === undefined) return local;
  return mergeState(ns, local, snap);
}

function mergeState<N extends Namespace>(ns: N, a: StateOf<N>, b: StateOf<N>): StateOf<N> {
  const merged: AnyState = ns === "counters"
    ? mergeCounter(a as StateOf<"counters">, b as StateOf<"counters">)
    : ns === "sets"
      ? mergeSet(a as StateOf<"sets">, b as StateOf<"sets">)
      : ns === "docs"
        ? mergeDoc(a as StateOf<"docs">, b as StateOf<"docs">)
        : mergeKv(a as StateOf<"kv">, b as StateOf<"kv">);
  return merged as StateOf<N>;
}

/** The node metadata an install leaves. */
export interface InstalledMeta {
  readonly lastSeq: number;
  readonly lastHlc: Hlc;
  readonly sweptVv: VersionVector;
}

/**
 * The receiver's own seq never goes below what the snapshot holds of its
 * origin (a node that lost its data must not reuse its dots), its clock moves
 * past the sender's, and it takes the sender's swept context.
 */
export function installedMeta(self: NodeId, local: InstalledMeta, h: SnapshotHeader): InstalledMeta {
  return {
    lastSeq: Math.max(local.lastSeq, vvGet(h.vv, self)),
    lastHlc: compareHlc(h.hlc, local.lastHlc) > 0 ? h.hlc : local.lastHlc,
    sweptVv: mergeVv(local.sweptVv, h.sweptVv),
  };
}

/** What an install asks the core (the storage port's installSnapshot carries it out). */
export interface InstallRules {
  /** The row `key` of `ns` becomes, from its local state and the snapshot's; undefined: the row goes. */
  row<N extends Namespace>(ns: N, key: string, local: StateOf<N> | undefined, snap: StateOf<N> | undefined): RowOf<N> | undefined;
  /** The node's seq, clock and swept context after the install. */
  meta(local: InstalledMeta): InstalledMeta;
}

/** The rules of installing the snapshot `h` at node `self`. */
export function installRules(self: NodeId, h: SnapshotHeader): InstallRules {
  return {
    row<N extends Namespace>(ns: N, key: string, local: StateOf<N> | undefined, snap: StateOf<N> | undefined): RowOf<N> | undefined {
      const state = installState(ns, local, snap, h.vv);
      return state === undefined ? undefined : entryOf(ns).row(key, state);
    },
    meta: (local) => installedMeta(self, local, h),
  };
}

/** A snapshot being received: from whom, which, how much of it is staged, and when its last frame came (monotonic ms). */
export interface Receiving {
  readonly from: NodeId;
  readonly id: number;
  readonly header: SnapshotHeader;
  readonly rows: number;
  readonly lastMs: number;
}

/**
 * A snapshot stream that sent nothing for this long is given up by its
 * receiver: its sender dropped it (the receiver caught up from another, or
 * the sender's link to it flapped) without a word, and it must not keep out
 * the snapshots of other senders.
 */
export const SNAPSHOT_IDLE_MS = 10_000;

/**
 * Whether a node takes the start of a snapshot from `from` at `nowMs`: it
 * takes one at a time; a newer one from the same sender replaces its own
 * older one (the sender restarted it), and one from another sender waits
 * until the first one's link is down or it went idle (it will not finish).
 */
export function takesSnapshot(active: Receiving | null, from: NodeId, linkUp: (peer: NodeId) => boolean, nowMs: number): boolean {
  if (active === null) return true;
  if (active.from === from) return true;
  return !linkUp(active.from) || nowMs - active.lastMs >= SNAPSHOT_IDLE_MS;
}

/** Whether a row frame belongs to the snapshot under way. */
export function rowsBelong(active: Receiving | null, from: NodeId, id: number): boolean {
  return active !== null && active.from === from && active.id === id;
}

/** Whether the end of a snapshot completes the one under way: same sender, same id, every row staged. */
export function snapshotComplete(active: Receiving | null, from: NodeId, id: number, rows: number): boolean {
  return rowsBelong(active, from, id) && (active as Receiving).rows === rows;
}
