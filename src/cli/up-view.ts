// What `geokv up` tells a person about the running cluster, computed from the
// nodes' GET /status answers with no I/O: who leads each region, which pairs
// of regions have lost every link between them, and the one-line events that
// describe how one such view differs from the next. /status is the source of
// truth (it works at any log level and cannot be misparsed); the node's log
// only adds the reason of a role change when it has one.

import { z } from "zod";
import type { ClusterConfig } from "../node/config.js";

/** The parts of GET /status this view reads, checked once where they arrive. */
const statusSchema = z.object({
  node: z.string(),
  region: z.string(),
  role: z.enum(["leader", "follower", "candidate"]),
  epoch: z.number(),
  peers: z.array(z.object({ region: z.string(), state: z.enum(["up", "down"]) })),
});
export type StatusSample = z.infer<typeof statusSchema>;

/** A /status body, or null when it is not one (a node mid-start, a proxy page). */
export function parseStatusSample(body: unknown): StatusSample | null {
  const r = statusSchema.safeParse(body);
  return r.success ? r.data : null;
}

export interface RegionLeader {
  readonly node: string;
  readonly epoch: number;
}

/** The cluster as one round of /status answers shows it. */
export interface ClusterView {
  /** Per region (configuration order): its leader, or null while it has none. */
  readonly leaders: ReadonlyMap<string, RegionLeader | null>;
  /** Nodes that answered this round. */
  readonly answering: ReadonlySet<string>;
  /** Region pairs ("a|b", sorted) with no link up between them in at least one direction. */
  readonly cuts: ReadonlySet<string>;
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** Builds the view from one round of answers (null: the node did not answer). */
export function viewOf(cluster: ClusterConfig, samples: ReadonlyMap<string, StatusSample | null>): ClusterView {
  const answering = new Set<string>();
  const leaders = new Map<string, RegionLeader | null>();
  // reaches[a] holds every region b that some answering node of a has a live link to.
  const reaches = new Map<string, Set<string>>();
  for (const r of cluster.regions) {
    let leader: RegionLeader | null = null;
    const seen = new Set<string>();
    for (const n of r.nodes) {
      const s = samples.get(n.id);
      if (!s) continue;
      answering.add(n.id);
      // Two nodes can both claim leadership for a moment (the old one has not
      // heard of the new epoch yet): the higher epoch is the region's leader.
      if (s.role === "leader" && (leader === null || s.epoch > leader.epoch)) leader = { node: n.id, epoch: s.epoch };
      for (const p of s.peers) if (p.state === "up") seen.add(p.region);
    }
    leaders.set(r.region, leader);
    if (r.nodes.some((n) => answering.has(n.id))) reaches.set(r.region, seen);
  }
  const cuts = new Set<string>();
  const live = [...reaches.keys()];
  for (const a of live) {
    for (const b of live) {
      if (a < b && !(reaches.get(a)?.has(b) && reaches.get(b)?.has(a))) cuts.add(pairKey(a, b));
    }
  }
  return { leaders, answering, cuts };
}

/** True when every region that elects its own leader (failover "auto") has one. */
export function allLeadersElected(cluster: ClusterConfig, v: ClusterView): boolean {
  return cluster.regions.every((r) => r.failover !== "auto" || v.leaders.get(r.region) != null);
}

/** "3 leaders in 1.4 s: us-east us-east-1 (epoch 1), ..." */
export function leadersLine(cluster: ClusterConfig, v: ClusterView, sinceStartMs: number): string {
  const parts = cluster.regions.map((r) => {
    const l = v.leaders.get(r.region);
    if (l) return `${r.region} ${l.node} (epoch ${l.epoch})`;
    return `${r.region} none${r.failover === "manual" ? " (manual failover)" : ""}`;
  });
  const count = [...v.leaders.values()].filter((l) => l !== null).length;
  return `${count} leader${count === 1 ? "" : "s"} in ${(sinceStartMs / 1000).toFixed(1)} s: ${parts.join(", ")}`;
}

/** The latest role change a node logged, to give an event its reason. */
export interface RoleRecord {
  readonly role: string;
  readonly epoch: number;
  readonly reason: string;
}

function withReason(text: string, rec: RoleRecord | undefined, matches: (r: RoleRecord) => boolean): string {
  return rec && rec.reason !== "" && matches(rec) ? `${text}: ${rec.reason}` : text;
}

/** One line per leadership change between two views, region by region. */
export function roleEvents(cluster: ClusterConfig, before: ClusterView, after: ClusterView, roles: ReadonlyMap<string, RoleRecord>): string[] {
  const out: string[] = [];
  for (const { region } of cluster.regions) {
    const was = before.leaders.get(region) ?? null;
    const now = after.leaders.get(region) ?? null;
    if (was?.node === now?.node && was?.epoch === now?.epoch) continue;
    if (was && was.node !== now?.node) {
      if (after.answering.has(was.node)) {
        out.push(withReason(`${was.node} stepped down as leader of ${region}`, roles.get(was.node), (r) => r.role !== "leader"));
      } else if (now === null) {
        out.push(`${region} has no leader: ${was.node} stopped answering`);
      }
    }
    if (now) {
      out.push(withReason(`${now.node} is now leader of ${region} (epoch ${now.epoch})`, roles.get(now.node), (r) => r.role === "leader" && r.epoch === now.epoch));
    }
  }
  return out;
}

/** The link state as one line: "links healed", or which regions are cut off from which. */
export function describeCuts(cluster: ClusterConfig, cuts: ReadonlySet<string>): string {
  if (cuts.size === 0) return "links healed";
  const regions = cluster.regions.map((r) => r.region);
  const cutFrom = (a: string) => regions.filter((b) => b !== a && cuts.has(pairKey(a, b)));
  const parts: string[] = [];
  const told = new Set<string>();
  // A region cut from two or more others reads best as "x cut off from y, z";
  // the most cut-off region first, so a one-region partition is one phrase.
  for (const a of [...regions].sort((x, y) => cutFrom(y).length - cutFrom(x).length)) {
    const others = cutFrom(a).filter((b) => !told.has(pairKey(a, b)));
    if (others.length === 0) continue;
    parts.push(others.length > 1 || cutFrom(a).length === regions.length - 1 ? `${a} cut off from ${others.join(", ")}` : `${a} and ${others[0]} lost their links`);
    for (const b of others) told.add(pairKey(a, b));
  }
  return parts.join("; ");
}

/** The link event between two views, if the set of cut region pairs changed. */
export function linkEvent(cluster: ClusterConfig, before: ReadonlySet<string>, after: ReadonlySet<string>): string | null {
  const same = before.size === after.size && [...after].every((k) => before.has(k));
  return same ? null : describeCuts(cluster, after);
}
