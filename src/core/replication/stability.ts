// What compaction reads from the replication machine's state: the stability
// frontier and the tombstone horizon as this node knows them (the rules are
// compaction.ts's; this is where the members' reports come from).

import { stabilityFrontier, tombstoneHorizonNow, type TombstoneHorizon } from "../compaction.js";
import type { VersionVector } from "../version-vector.js";
import type { ReplState } from "./types.js";

/**
 * The stability frontier as this node knows it: the minimum of its own
 * committed vector and every other member's latest reported one (a member
 * not heard from since start counts as holding nothing), never below
 * `persisted` (compaction.ts).
 */
export function stableVvOf(s: ReplState, persisted: VersionVector): VersionVector {
  return stabilityFrontier(s.committedVv, [...s.peers.values()].map((p) => p.view.vv), persisted);
}

/** The tombstone horizon this node could take now (compaction.ts): null until every member was heard since start. */
export function tombstoneHorizonOf(s: ReplState): TombstoneHorizon | null {
  const reports = [...s.peers.values()].map((p) => ({ node: p.view.node as string, vv: p.view.vv, heard: p.heardMs !== null }));
  return tombstoneHorizonNow(s.cfg.self.node, s.committedVv, reports);
}
