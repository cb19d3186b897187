// The other regions, as the simulated region's nodes are seen from outside:
// every running node pings them, and they keep the epoch they believe current
// for this region with the real core rule (src/core/fence.ts), so the fence
// they would hold against this region's batches. The election sim models one
// region only; this observer stands for every other region's leader, which is
// enough to check DESIGN.md "No epoch without a majority": an epoch that no
// majority accepted must never become the fence, or it would refuse the batches
// of the region's real leader everywhere else.

import { advanceKnownEpoch, epochLearnedFromPing } from "../../src/core/fence.js";
import type { Role } from "../../src/core/election.js";
import { InvariantViolation } from "./invariants.js";

export class OutsideObserver {
  /** The region's epoch as the other regions know it (their fence). */
  private known = 0;
  /** The highest epoch any node held as an active leader: won by a majority. */
  private highestWon = 0;
  /** When and what the fence last moved to, for the failure message. */
  private lastMove: { readonly at: number; readonly from: string } | null = null;

  get knownEpoch(): number {
    return this.known;
  }

  get highestWonEpoch(): number {
    return this.highestWon;
  }

  /** A node of the region that is an active leader of `epoch` right now. */
  recordWon(epoch: number): void {
    if (epoch > this.highestWon) this.highestWon = epoch;
  }

  /** A ping from `from` at `now` saying it is `role` at `epoch`. */
  ping(now: number, from: string, role: Role, epoch: number): void {
    const next = advanceKnownEpoch(this.known, epochLearnedFromPing(role, epoch));
    if (next !== this.known) this.lastMove = { at: now, from: `${from} (${role} at epoch ${epoch})` };
    this.known = next;
    this.check();
  }

  /** The fence outside never runs ahead of what a majority won. */
  check(): void {
    if (this.known <= this.highestWon) return;
    const how = this.lastMove === null ? "" : `, learned at ${this.lastMove.at} ms from ${this.lastMove.from}`;
    throw new InvariantViolation(`the other regions fence this one at epoch ${this.known}, but no leader ever won above epoch ${this.highestWon}${how}`);
  }
}
