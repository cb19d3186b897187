// The safety record of a simulated run: every durable vote, every leader that
// took office, every write a majority acknowledged. The cluster calls it after
// each step; a broken invariant throws at once, with the run's trace attached
// by the caller. What is checked (DESIGN.md "Tests and benchmarks"):
// - at most one active leader per epoch, and only with a majority of durable votes;
// - a node never votes twice in one epoch, and its epoch never goes back, also across restarts;
// - the machine reports every change of epoch or vote for persisting;
// - a new leader holds every write a majority acknowledged under an earlier epoch.

import { majority } from "../../src/core/cluster-view.js";
import { durableOf, epochOf, isActiveLeader, type Durable, type ElectionOutput, type ElectionState } from "../../src/core/election.js";
import type { NodeId } from "../../src/core/ids.js";
import { vvGet, type VersionVector } from "../../src/core/version-vector.js";

export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation";
}

export interface Activation {
  readonly epoch: number;
  readonly leader: NodeId;
  readonly at: number;
  readonly vv: VersionVector;
}

export class SafetyRecord {
  /** Highest epoch each node ever reported, kept across its restarts. */
  private readonly maxEpoch = new Map<NodeId, number>();
  /** Durable votes ever written: node -> epoch -> candidate. */
  private readonly votes = new Map<NodeId, Map<number, NodeId>>();
  private readonly leaderOfEpoch = new Map<number, NodeId>();
  readonly activations: Activation[] = [];
  /** epoch -> origin -> highest seq a majority acknowledged under that epoch. */
  private readonly acked = new Map<number, Map<string, number>>();
  /** `${leader}@${epoch}` -> member -> vv it acknowledged. */
  private readonly ackVvs = new Map<string, Map<NodeId, VersionVector>>();

  constructor(private readonly regionSize: number) {}

  /** After node `id` took a step (or started) at `now`, with `durable` now on its disk. */
  afterStep(now: number, id: NodeId, wasActive: boolean, state: ElectionState, out: ElectionOutput | null, durable: Durable, vv: VersionVector): void {
    const epoch = epochOf(state);
    const prev = this.maxEpoch.get(id) ?? 0;
    if (epoch < prev) this.fail(`${id}: epoch went back from ${prev} to ${epoch}`);
    this.maxEpoch.set(id, epoch);

    const d = durableOf(state);
    if (d.epoch !== durable.epoch || d.vote?.epoch !== durable.vote?.epoch || d.vote?.node !== durable.vote?.node) {
      this.fail(`${id}: state ${JSON.stringify(d)} differs from disk ${JSON.stringify(durable)} (a change was not reported in persist)`);
    }
    if (out?.persist?.vote) this.recordVote(id, out.persist.vote.epoch, out.persist.vote.node);

    if (!wasActive && isActiveLeader(state)) this.recordActivation(now, id, epoch, vv);
  }

  /** The active leader `leader` of `epoch` got an ack carrying `ackVv` from `from`; `leaderVv` is its own. */
  onAck(leader: NodeId, epoch: number, from: NodeId, ackVv: VersionVector, leaderVv: VersionVector): void {
    const key = `${leader}@${epoch}`;
    let acks = this.ackVvs.get(key);
    if (acks === undefined) this.ackVvs.set(key, (acks = new Map()));
    acks.set(from, ackVv);
    // A write is acknowledged once a majority (the leader included) holds it.
    const vvs = [leaderVv, ...acks.values()];
    const need = majority(this.regionSize);
    if (vvs.length < need) return;
    let perEpoch = this.acked.get(epoch);
    if (perEpoch === undefined) this.acked.set(epoch, (perEpoch = new Map()));
    const origins = new Set<string>();
    for (const v of vvs) for (const k of Object.keys(v)) origins.add(k);
    for (const o of origins) {
      const seqs = vvs.map((v) => vvGet(v, o)).sort((a, b) => b - a);
      const seq = seqs[need - 1] as number;
      if (seq > (perEpoch.get(o) ?? 0)) perEpoch.set(o, seq);
    }
  }

  /** End of run: every leader held, when it took office, all writes acknowledged under earlier epochs. */
  checkAcknowledgedWritesKept(): void {
    for (const a of this.activations) this.checkHoldsAcknowledged(a);
  }

  /** Number of distinct (epoch, leader) pairs that took office. */
  get leaderships(): number {
    return this.leaderOfEpoch.size;
  }

  private recordVote(id: NodeId, epoch: number, node: NodeId): void {
    let mine = this.votes.get(id);
    if (mine === undefined) this.votes.set(id, (mine = new Map()));
    const earlier = mine.get(epoch);
    if (earlier !== undefined && earlier !== node) this.fail(`${id} voted twice in epoch ${epoch}: ${earlier}, then ${node}`);
    mine.set(epoch, node);
  }

  private recordActivation(now: number, id: NodeId, epoch: number, vv: VersionVector): void {
    const other = this.leaderOfEpoch.get(epoch);
    if (other !== undefined && other !== id) this.fail(`two leaders in epoch ${epoch}: ${other} and ${id}`);
    let votes = 0;
    for (const mine of this.votes.values()) if (mine.get(epoch) === id) votes++;
    if (votes < majority(this.regionSize)) this.fail(`${id} took office in epoch ${epoch} with ${votes} durable votes of ${this.regionSize}`);
    this.leaderOfEpoch.set(epoch, id);
    const a = { epoch, leader: id, at: now, vv };
    this.activations.push(a);
    // What is acknowledged so far can be checked now (the end of the run checks the rest).
    this.checkHoldsAcknowledged(a);
  }

  private checkHoldsAcknowledged(a: Activation): void {
    for (const [epoch, origins] of this.acked) {
      if (epoch >= a.epoch) continue;
      for (const [origin, seq] of origins) {
        if (vvGet(a.vv, origin) < seq) {
          this.fail(`${a.leader} took office in epoch ${a.epoch} at ${a.at} ms without write ${origin}:${seq}, acknowledged by a majority in epoch ${epoch}`);
        }
      }
    }
  }

  private fail(message: string): never {
    throw new InvariantViolation(message);
  }
}
