// The data of the in-region election: configuration, wire messages, inputs,
// outputs and the machine's state. Kept apart from the logic so that the wire
// parser, the runtime and the simulator can import the shapes alone.

import type { AwakeClock, SilenceTimer } from "../failure-detector.js";
import type { MemberConfig } from "../cluster-view.js";
import type { NodeId } from "../ids.js";
import type { VersionVector } from "../version-vector.js";

/** One region's election settings, as this node sees them. */
export interface ElectionConfig {
  readonly self: MemberConfig;
  /** This region's members, this node included; other regions never vote here. */
  readonly members: readonly MemberConfig[];
  /** "manual": nothing is elected automatically; an operator promotes. */
  readonly failover: "auto" | "manual";
  /** A recovered higher-ranked node takes leadership back from a live lower-ranked one. */
  readonly preempt: boolean;
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
}

/** A persisted vote: this node accepted `node` as coordinator of `epoch`. */
export interface Vote {
  readonly epoch: number;
  readonly node: NodeId;
}

/** What must be on disk before any message of the same step is sent. */
export interface Durable {
  readonly epoch: number;
  readonly vote: Vote | null;
}

/** Why a coordinator or a heartbeat was turned down. */
export type RejectCode =
  /** The sender's epoch is below mine and I have no live leader: a leader that hears this renews its epoch. */
  | "stale_epoch"
  /** The sender's epoch is below mine and I follow (or am) a newer leader or candidate. */
  | "superseded"
  /** I already accepted another coordinator in this epoch. */
  | "voted_other"
  /** I hear a live leader (pre-vote): I do not join an election. */
  | "leader_alive";

/**
 * Election wire messages (JSON in WebSocket control frames). `epoch` is the
 * sender's epoch, except in coordinator (the proclaimed epoch) and accept (the
 * accepted epoch); a prevote carries the candidate's current epoch, never the
 * one it hopes for, so it moves nobody's epoch. `round` is an opaque number a leader or coordinator puts in
 * its message and the answer echoes, so it can tell how fresh a confirmation is
 * without trusting anyone's clock.
 */
export type ElectionMsg = { readonly from: NodeId; readonly epoch: number } & (
  /** Pre-vote: "would you accept a coordinator of a new epoch from me now?" Binds nobody; raises no epoch. */
  | { readonly type: "prevote"; readonly round: number }
  /** Pre-vote granted: the sender hears no live leader (the refusal is `alive`). */
  | { readonly type: "prevote_ok"; readonly round: number }
  | { readonly type: "election" }
  | { readonly type: "answer" }
  | { readonly type: "alive"; readonly leader: NodeId }
  | { readonly type: "coordinator"; readonly vv: VersionVector; readonly round: number }
  | { readonly type: "accept"; readonly vv: VersionVector; readonly round: number }
  | { readonly type: "reject"; readonly code: RejectCode; readonly reason: string }
  | { readonly type: "heartbeat"; readonly round: number }
  | { readonly type: "heartbeat_ack"; readonly vv: VersionVector; readonly round: number }
  | { readonly type: "stepdown" }
);

export type ElectionMsgType = ElectionMsg["type"];

/** A message body before the machine stamps `from` and `epoch`. */
export type ElectionBody = DistributiveOmit<ElectionMsg, "from" | "epoch">;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export type ElectionInput =
  /** Time passes; the runtime ticks at least every heartbeatMs (heartbeatMs / 2 recommended). */
  | { readonly type: "tick" }
  /** A parsed message from a member of this region. */
  | { readonly type: "message"; readonly msg: ElectionMsg }
  /** This node's version vector grew (ops applied, pulled or pushed). */
  | { readonly type: "local_vv"; readonly vv: VersionVector }
  /** Operator: the leader steps down so that another node is elected. */
  | { readonly type: "stepdown" }
  /** Operator (manual failover): make this node the leader if that is safe. */
  | { readonly type: "promote"; readonly bestReachableVv: VersionVector }
  /**
   * This node's wall clock became (or stopped being) too far from its peers'
   * (replication measures it): a skewed node steps down and does not stand,
   * so that a node with a good clock stamps the region's writes.
   */
  | { readonly type: "clock"; readonly skewed: boolean };

export type Role = "leader" | "follower" | "candidate";

export interface RoleEvent {
  readonly type: "role";
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly epoch: number;
  readonly reason: string;
}

export interface ElectionOutput {
  readonly state: ElectionState;
  /** Messages to send, after `persist` is durable. */
  readonly send: ReadonlyArray<{ readonly to: NodeId; readonly msg: ElectionMsg }>;
  /** The new durable epoch and vote (the whole record), or null when unchanged. */
  readonly persist: Durable | null;
  readonly events: readonly RoleEvent[];
  /** Set when a stepdown or promote input was refused; says why. */
  readonly refused?: string;
}

/**
 * Where this node is in the election. Role "candidate" covers electing,
 * awaiting, prevoting and pending; only "leader" takes writes.
 */
export type Phase = FollowerPhase | ElectingPhase | AwaitingPhase | PrevotingPhase | PendingPhase | LeaderPhase;

export interface FollowerPhase {
  readonly kind: "follower";
  /** The node accepted for the current epoch and heard from recently, or null. */
  readonly leader: NodeId | null;
  readonly timer: SilenceTimer;
  /** With preempt: awake time at which to take over from a lower-ranked leader. */
  readonly preemptAtMs: number | null;
}

/** Sent ELECTION to the higher-ranked members; waiting for an ANSWER. */
export interface ElectingPhase {
  readonly kind: "electing";
  readonly deadlineMs: number;
}

/** A higher-ranked member answered; waiting for its COORDINATOR. */
export interface AwaitingPhase {
  readonly kind: "awaiting";
  readonly deadlineMs: number;
}

/**
 * Bully found no better node alive: asking a majority whether it hears a
 * leader before raising the epoch (Raft's PreVote). Only a majority's grants
 * lead to a proclamation, so a node cut off from its region keeps its epoch.
 */
export interface PrevotingPhase {
  readonly kind: "prevoting";
  /** Awake time the pre-vote started: grants echo a round at or after it. */
  readonly sinceMs: number;
  /** Give up (and back off) at this awake time without a majority. */
  readonly deadlineMs: number;
  /** Members other than this node that granted. */
  readonly grants: ReadonlySet<NodeId>;
  readonly nextResendMs: number;
  /** Why the candidacy started: the proclamation's reason once a majority grants. */
  readonly why: string;
}

/** The confirmation of one acceptor: its version vector and the round it echoed. */
export interface Acceptance {
  readonly vv: VersionVector;
  readonly round: number;
}

/** Proclaimed epoch `state.epoch` (voted for itself); not yet taking writes ("leader pending"). */
export interface PendingPhase {
  readonly kind: "pending";
  readonly sinceMs: number;
  /** Acceptors other than this node (at most members - 1). */
  readonly accepts: ReadonlyMap<NodeId, Acceptance>;
  /** Members that can never accept this epoch (voted for another node or moved past it). */
  readonly refusedBy: ReadonlySet<NodeId>;
  readonly nextResendMs: number;
  /**
   * As in LeaderPhase: acceptances of rounds sent before this node's latest
   * stall while pending count as older by stallDebtMs. A coordinator that
   * sleeps through its candidacy wakes to acceptances that its awake clock
   * calls fresh, while its peers counted the sleep and may have elected
   * another leader meanwhile. Carried into LeaderPhase on taking office.
   */
  readonly stallFloorMs: number;
  readonly stallDebtMs: number;
}

/** Active leader of `state.epoch`: takes writes while a majority confirms it. */
export interface LeaderPhase {
  readonly kind: "leader";
  /** Per other member, the latest round it confirmed (heartbeat ack or accept). */
  readonly confirmed: ReadonlyMap<NodeId, number>;
  readonly nextHeartbeatMs: number;
  /**
   * Rounds below this awake time were sent before this node's latest stall
   * while leading, and count as older by stallDebtMs: the awake clock leaves a
   * stall out, but the peers counted it, and may have elected another leader
   * meanwhile. -Infinity and 0 until a stall.
   */
  readonly stallFloorMs: number;
  readonly stallDebtMs: number;
}

export interface ElectionState {
  readonly cfg: ElectionConfig;
  /** Member ids, best-ranked first. */
  readonly ranked: readonly NodeId[];
  /** Highest epoch adopted (durable). */
  readonly epoch: number;
  /** Latest vote (durable); vote.epoch <= epoch. */
  readonly vote: Vote | null;
  /** Highest epoch seen in any message (>= epoch): the next proclamation goes above it. */
  readonly seenEpoch: number;
  readonly localVv: VersionVector;
  readonly clock: AwakeClock;
  /** After an operator stepdown: no ANSWER and no election before this awake time. */
  readonly abstainUntilMs: number;
  /** The last clock input: while true this node neither leads nor stands (it still votes). */
  readonly clockSkewed: boolean;
  /** Pre-votes failed in a row (no majority granted): the next one waits longer. */
  readonly prevoteFailures: number;
  /**
   * Pre-votes this node refused because it still heard its leader: member ->
   * the round asked. Granted as soon as that leader stops counting as live,
   * so a candidate that suspected a moment earlier does not wait for a resend.
   */
  readonly deferredGrants: ReadonlyMap<NodeId, number>;
  readonly phase: Phase;
}
