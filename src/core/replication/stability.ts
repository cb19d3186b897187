// What compaction reads from the replication machine's state: the stability
// frontier and the tombstone horizon as this node knows them (the rules are
// compaction.ts's; this is where the members' reports come from).

import { stabilityFrontier, tombstoneHorizonNow, type TombstoneHorizon } from "../compaction.js";
import type { VersionVector } from "../version-vector.js";
import type { PeerState, ReplState } from "./types.js";

/** The members that hold compaction back: all but those silent longer than memberForgetMs. */
function remembered(s: ReplState): PeerState[] {
  return [...s.peers.values()].filter((p) => !p.forgotten);
}

/**
 * The stability frontier as this node knows it: the minimum of its own
 * committed vector and every other member's latest reported one (a member
 * not heard from since start counts as holding nothing, one forgotten after
 * memberForgetMs of silence does not count), never below
 * `persisted` (compaction.ts).
 */
export function stableVvOf(s: ReplState, persisted: VersionVector): VersionVector {
  return stabilityFrontier(s.committedVv, remembered(s).map((p) => p.view.vv), persisted);
}

/** The tombstone horizon this node could take now (compaction.ts): null until every member was heard since start. */
export function tombstoneHorizonOf(s: ReplState): TombstoneHorizon | null {
  const reports = remembered(s).map((p) => ({ node: p.view.node as string, vv: p.view.vv, heard: p.heardMs !== null }));
  return tombstoneHorizonNow(s.cfg.self.node, s.committedVv, reports);
}
