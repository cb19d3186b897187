// What one node knows about the others at a moment: who is reachable, what
// each has applied, which role each claims. The runtime builds it from link
// events and heartbeats; the pure decisions (who leads, whom to stream to,
// whether a write is acknowledged) are functions of it, so the simulator can
// feed them any view it likes.

import type { NodeId, RegionId } from "./ids.js";
import type { VersionVector } from "./version-vector.js";

/** A node of the cluster as configured. */
export interface MemberConfig {
  readonly node: NodeId;
  readonly region: RegionId;
  readonly priority: number;
}

/** What this node last heard from a peer. */
export interface PeerView {
  readonly node: NodeId;
  readonly region: RegionId;
  /** The link is up and the peer was heard from within the failure detector's timeout. */
  readonly up: boolean;
  /** The peer's node vector as last reported (ack, ping, pong, handshake). */
  readonly vv: VersionVector;
  /** The role and epoch the peer last claimed. */
  readonly role: "leader" | "follower" | "candidate";
  readonly epoch: number;
  /** Who the peer believes leads its region ("" for nobody). */
  readonly leader: string;
}

/** One node's view of the cluster. */
export interface ClusterView {
  readonly self: MemberConfig;
  /** Every node of the cluster, this one included. */
  readonly members: readonly MemberConfig[];
  readonly peers: ReadonlyMap<string, PeerView>;
}

/** Bully rank order: higher priority first, then higher id (DESIGN.md: ranked by (priority, id)). */
export function compareRank(a: MemberConfig, b: MemberConfig): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  return a.node < b.node ? 1 : a.node > b.node ? -1 : 0;
}

/** Per members list, per region: its members best-ranked first (members lists never change once built). */
const membersByRegion = new WeakMap<readonly MemberConfig[], Map<string, readonly MemberConfig[]>>();

/** The members of `region`, best-ranked first. */
export function regionMembers(view: ClusterView, region: RegionId | string): readonly MemberConfig[] {
  let byRegion = membersByRegion.get(view.members);
  if (byRegion === undefined) {
    byRegion = new Map();
    membersByRegion.set(view.members, byRegion);
  }
  let out = byRegion.get(region);
  if (out === undefined) {
    out = view.members.filter((m) => m.region === region).sort(compareRank);
    byRegion.set(region, out);
  }
  return out;
}

/** A majority of `n` voters. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}
