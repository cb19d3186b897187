// What the dashboard (GET / on every node) shows: the whole cluster as this
// node sees it, gathered in one snapshot — every region and node with role,
// epoch, leader, link state and replication lag; this node's injected
// faults; writes per region per second; its last role changes with their
// reasons; and the newest conflict (the page reads the list itself through
// GET /conflicts, which the client token guards). It reads what the runtime
// already knows and keeps two small bounded histories of its own (role
// changes, write rate); it decides nothing.

import type { NodeId, RegionId } from "../core/ids.js";
import type { Conflict, Op } from "../core/op.js";
import { vvGet, type VersionVector } from "../core/version-vector.js";
import type { FaultsView } from "../net/hub.js";
import type { Storage } from "../storage/port.js";
import type { ClusterConfig } from "./config.js";
import { RingBuffer } from "./ring-buffer.js";
import type { StatusView } from "./service.js";
import { WriteRate, type WriteRateSeries } from "./write-rate.js";

/** Role changes kept for the dashboard. */
export const ROLE_CHANGES_MAX = 50;

type Role = "leader" | "follower" | "candidate";

/** One role event of this node's election, with its reason. */
export interface RoleChange {
  /** Wall-clock milliseconds when this node saw it. */
  readonly atMs: number;
  readonly role: Role;
  readonly leader: string | null;
  readonly epoch: number;
  readonly reason: string;
}

/** One node as this node sees it. */
export interface DashboardNode {
  readonly id: string;
  readonly url: string;
  readonly priority: number;
  /** "self" for this node; else whether the peer link is up. */
  readonly link: "self" | "up" | "down";
  /** The role, epoch and leader the node last claimed (its own for this node). */
  readonly role: Role;
  readonly epoch: number;
  readonly leader: string | null;
  /** Ops this node has that the peer lacks (null for this node). */
  readonly lagOps: number | null;
  /** How long the oldest op the peer lacks has waited, in ms (0 when caught up; null for this node or when that op is compacted). */
  readonly lagMs: number | null;
  readonly lastContactMs: number | null;
}

/** One region as this node sees it. */
export interface DashboardRegion {
  readonly region: string;
  readonly failover: "auto" | "manual";
  /** Its leader and epoch as this node knows them (from a leader that won them). */
  readonly leader: string | null;
  readonly epoch: number;
  readonly nodes: readonly DashboardNode[];
}

/** The whole snapshot the page renders. */
export interface DashboardView {
  readonly atMs: number;
  readonly node: string;
  readonly region: string;
  readonly regions: readonly DashboardRegion[];
  /** This node's injected faults (POST /admin/faults). */
  readonly faults: FaultsView;
  readonly writeRate: WriteRateSeries;
  /** This node's role changes, newest first. */
  readonly roleChanges: readonly RoleChange[];
  /** The newest recorded conflict: the page refetches the list when it changes. */
  readonly newestConflict: Conflict | null;
}

/** What the feed reads from the runtime. */
export interface DashboardSources {
  readonly cluster: ClusterConfig;
  readonly status: () => StatusView;
  /** Peer views from the replicator: claimed role, epoch and leader, link state, version vector. */
  readonly peerViews: () => readonly { readonly node: string; readonly up: boolean; readonly vv: VersionVector; readonly role: Role; readonly epoch: number; readonly leader: string }[];
  readonly leaderOf: (region: string) => string | null;
  readonly knownEpoch: (region: string) => number;
  readonly faults: () => FaultsView;
  readonly storage: Pick<Storage, "appliedVv" | "getOps" | "conflicts">;
  /** Wall clock (Date.now). */
  readonly now: () => number;
}

/** The dashboard's data on one node. */
export interface DashboardFeed {
  view(): DashboardView;
  /** Calls `listener` when something worth an immediate update happened (a role change, a fault); returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}

/** The feed plus the inputs the runtime gives it. */
export interface DashboardRecorder extends DashboardFeed {
  /** Every op this node committed (local writes and replicated ones). */
  committed(ops: readonly Op[]): void;
  /** A role event of this node's election. */
  roleChanged(e: { readonly role: Role; readonly leader: string | null; readonly epoch: number; readonly reason: string }): void;
  /** This node's faults changed. */
  faultsChanged(): void;
}

/** Builds the feed; the runtime wires its recorder inputs. */
export function createDashboardFeed(s: DashboardSources): DashboardRecorder {
  const regionOf = (node: NodeId) => s.cluster.nodes.get(node)?.region;
  const rate = new WriteRate(s.cluster.regions.map((r) => r.region as RegionId), regionOf);
  const roles = new RingBuffer<RoleChange>(ROLE_CHANGES_MAX);
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const l of [...listeners]) l();
  };

  /** The wall-clock age of the oldest op the peer lacks; null when none can be read (compacted). */
  const lagMs = (ours: VersionVector, theirs: VersionVector, nowMs: number): number | null => {
    let oldest = Infinity;
    for (const origin in ours) {
      const have = vvGet(theirs, origin);
      if ((ours[origin] as number) <= have) continue;
      const op = s.storage.getOps(origin as NodeId, have + 1, have + 1, 1)[0];
      if (op === undefined) return null;
      oldest = Math.min(oldest, op.hlc.wallMs);
    }
    return oldest === Infinity ? 0 : Math.max(0, nowMs - oldest);
  };

  return {
    view() {
      const nowMs = s.now();
      const status = s.status();
      const ours = s.storage.appliedVv();
      const views = new Map(s.peerViews().map((p) => [p.node, p]));
      const rows = new Map(status.peers.map((p) => [p.node, p]));
      const regions = s.cluster.regions.map((r): DashboardRegion => {
        const own = r.region === status.region;
        const nodes = r.nodes.map((n): DashboardNode => {
          const base = { id: n.id, url: n.url, priority: n.priority };
          if (n.id === status.node) {
            return { ...base, link: "self", role: status.role, epoch: status.epoch, leader: status.leader, lagOps: null, lagMs: null, lastContactMs: null };
          }
          const v = views.get(n.id);
          const row = rows.get(n.id);
          const lagOps = row?.lagOps ?? 0;
          return {
            ...base,
            link: v?.up === true ? "up" : "down",
            role: v?.role ?? "follower",
            epoch: v?.epoch ?? 0,
            leader: v === undefined || v.leader === "" ? null : v.leader,
            lagOps,
            lagMs: lagOps === 0 || v === undefined ? 0 : lagMs(ours, v.vv, nowMs),
            lastContactMs: row?.lastContactMs ?? null,
          };
        });
        return {
          region: r.region,
          failover: r.failover,
          leader: own ? status.leader : s.leaderOf(r.region),
          epoch: own ? status.epoch : s.knownEpoch(r.region),
          nodes,
        };
      });
      return {
        atMs: nowMs,
        node: status.node,
        region: status.region,
        regions,
        faults: s.faults(),
        writeRate: rate.series(nowMs),
        roleChanges: roles.newestFirst(),
        newestConflict: s.storage.conflicts(1)[0] ?? null,
      };
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    committed(ops) {
      rate.add(ops, s.now());
    },
    roleChanged(e) {
      roles.push({ atMs: s.now(), role: e.role, leader: e.leader, epoch: e.epoch, reason: e.reason });
      changed();
    },
    faultsChanged: changed,
  };
}
