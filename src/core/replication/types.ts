// The data of the replication machine: its configuration, what each peer is
// known to hold and to be, the inputs the runtime feeds it and the outputs it
// must carry out. Kept apart from the logic so the driver, the tests and the
// simulator can import the shapes alone.

import type { MemberConfig, PeerView } from "../cluster-view.js";
import type { AwakeClock } from "../failure-detector.js";
import type { NodeId } from "../ids.js";
import type { CatchUpRange } from "../replication-plan.js";
import type { VersionVector } from "../version-vector.js";
import type { SendState } from "./decisions.js";

export type AckLevel = "local" | "region" | "all";
export type PeerRole = "leader" | "follower" | "candidate";

export interface ReplConfig {
  readonly self: MemberConfig;
  /** Every node of the cluster, this one included. */
  readonly members: readonly MemberConfig[];
  readonly heartbeatMs: number;
  /** A peer not heard from for this long is down (the election's timeout, so both agree). */
  readonly electionTimeoutMs: number;
  readonly maxClockSkewMs: number;
  /** How long an `ack=region|all` wait lasts before it fails. */
  readonly ackWaitMs: number;
  /** Unacked ops per peer: what a slow peer costs in memory. */
  readonly sendWindowOps: number;
  /** Ops per frame. */
  readonly frameOpsMax: number;
  /** Ops planned per step over all peers: the bound on one event-loop turn's sending work. */
  readonly stepOpsMax: number;
  /**
   * A member silent this long (never heard: since this node started) stops
   * holding the stability frontier back; it bootstraps from a snapshot when
   * it returns, if it needs ops compacted meanwhile.
   */
  readonly memberForgetMs: number;
}

/** The leadership of this node's region, as the election last said. */
export interface Leadership {
  readonly active: boolean;
  readonly role: PeerRole;
  readonly leader: NodeId | null;
  readonly epoch: number;
}

export interface PeerState {
  readonly view: PeerView;
  readonly linkUp: boolean;
  /** Awake time this peer was last heard from: a frame, the peer itself speaking (null: never on this link). */
  readonly heardMs: number | null;
  /**
   * Awake time the link last showed that its connection lives without a frame
   * (a ws pong, a drained send queue), or null. It keeps the link open, but
   * does not make the peer up: a peer whose kernel still takes our bytes may
   * be stalled itself.
   */
  readonly aliveMs: number | null;
  readonly send: SendState;
  /** Estimated (peer wall clock - ours), from quick ping round trips. */
  readonly offsetMs: number | null;
  /** Highest batch from this peer that is durable here and not yet acknowledged. */
  readonly ackDue: number | null;
  /** Per origin of a third region: the seq this peer last reported and when it moved (awake ms). */
  readonly progress: ReadonlyMap<string, { readonly seq: number; readonly atMs: number }>;
  /** Awake time since which some batch to this peer is unacknowledged (null: none in flight). */
  readonly inflightSinceMs: number | null;
  /** Awake time an ops frame to this peer last failed to go out (its queue was full), or null. */
  readonly unsentAtMs: number | null;
  /** Awake time this node last answered a ping of this peer with a pong (null: not on this link yet). */
  readonly pongedMs: number | null;
  /** Refusals of this peer's batches since the last logged one (the log is rate-limited). */
  readonly refusals: { readonly loggedMs: number; readonly suppressed: number };
  /** The peer needs ops this node compacted away: no ops are sent to it, a snapshot is (said once per episode). */
  readonly needsCompacted: boolean;
  /** A snapshot of this node streaming to the peer: its id, and when its last row went out (null: still streaming). */
  readonly snapshot: { readonly id: number; readonly sentMs: number | null } | null;
  /** Silent longer than memberForgetMs: its reports no longer hold the stability frontier back. */
  readonly forgotten: boolean;
  /** Was forgotten and has been heard again, but not yet seen holding this node's floor: why it may need a snapshot. */
  readonly cameBack: boolean;
}

/** A client write waiting for `ack=region|all`. */
export interface AckWait {
  readonly origin: NodeId;
  readonly seq: number;
  readonly level: "region" | "all";
  readonly deadlineMs: number;
}

export interface ReplState {
  readonly cfg: ReplConfig;
  readonly peers: ReadonlyMap<NodeId, PeerState>;
  /** What this node has committed (durable, contiguous). */
  readonly committedVv: VersionVector;
  /** Per origin, the seq up to which this node's op log was compacted: older ops cannot be sent. */
  readonly floor: VersionVector;
  /** Per other region, the highest epoch learned from its active leaders. */
  readonly regionEpochs: ReadonlyMap<string, number>;
  readonly leadership: Leadership | null;
  readonly waits: ReadonlyMap<number, AckWait>;
  readonly clock: AwakeClock;
  /** Wall clock of the last input (ms): pings carry it, pongs echo it. */
  readonly wallMs: number;
  /** wallMs minus the monotonic ms of the last input: when it moves, the wall clock was stepped. */
  readonly wallMinusMonoMs: number;
  /**
   * The wall clock was stepped since the peers last measured it: the offsets
   * measured before were voided, and the clock counts as skewed until a
   * majority of the up peers has measured it again.
   */
  readonly clockStepped: boolean;
  /**
   * The clock verdict on measured offsets (clockSkewed, with its hysteresis),
   * as of the end of the last step; held while a step of the wall clock is
   * unmeasured, so the election does not act on a few fresh samples.
   */
  readonly clockSkewed: boolean;
  /** Awake time this machine started: a member never heard from is silent since then. */
  readonly startedMs: number;
  /** The id the next snapshot this node sends gets. */
  readonly nextSnapshotId: number;
}

/** Frames other than ops, the same both ways. */
export type ControlFrame =
  | { readonly t: "ack"; readonly batch: number; readonly vv: VersionVector }
  | { readonly t: "refuse"; readonly batch: number; readonly knownEpoch: number; readonly vv: VersionVector }
  | { readonly t: "ping"; readonly wallMs: number; readonly role: PeerRole; readonly leader: string; readonly epoch: number; readonly vv: VersionVector }
  | { readonly t: "pong"; readonly echoWallMs: number; readonly wallMs: number; readonly vv: VersionVector };

/** What the peer protocol carries, as the machine sees it (ops frames by their extent only). */
export type InFrame = { readonly t: "ops"; readonly batch: number; readonly fence: string; readonly highest: VersionVector } | ControlFrame;

export type ReplInput =
  /** Time passes; at least every heartbeatMs. */
  | { readonly type: "tick" }
  | { readonly type: "link_up"; readonly peer: NodeId; readonly vv: VersionVector; readonly epoch: number }
  | { readonly type: "link_down"; readonly peer: NodeId; readonly reason: string }
  | { readonly type: "frame"; readonly peer: NodeId; readonly frame: InFrame }
  /** The link to `peer` showed its connection lives (a ws pong arrived, or its send queue drained). */
  | { readonly type: "alive"; readonly peer: NodeId }
  /** Ops were committed here (local writes or remote batches): the durable vector now. */
  | { readonly type: "committed"; readonly vv: VersionVector }
  /** The op log was compacted: per origin, the seq up to which ops are gone from it. */
  | { readonly type: "compacted"; readonly floor: VersionVector }
  /** A batch from `peer` that the machine said to apply is durable. */
  | { readonly type: "applied"; readonly peer: NodeId; readonly batch: number }
  /** Ops frames to `peer` could not go out (queue full, link gone): what is in flight to it is unknown, resync. */
  | { readonly type: "unsent"; readonly peer: NodeId }
  /** Send what is due: batched acks, and more ops where windows allow. */
  | { readonly type: "flush" }
  /** The snapshot `id` to `peer` went out whole (ok), or could not (the link went, the read failed). */
  | { readonly type: "snapshot_sent"; readonly peer: NodeId; readonly id: number; readonly ok: boolean; readonly reason?: string }
  | { readonly type: "leadership"; readonly leadership: Leadership }
  /** A client write waits until `origin:seq` is durable at `level`. */
  | { readonly type: "await"; readonly id: number; readonly origin: NodeId; readonly seq: number; readonly level: "region" | "all" };

/**
 * Frames the machine sends; ops go out as ranges the runtime fills from its
 * tail or log, and a snapshot as a stream the runtime reads from its store
 * (then input `snapshot_sent`).
 */
export type OutFrame =
  | { readonly t: "ops"; readonly batch: number; readonly fence: string; readonly range: CatchUpRange }
  | { readonly t: "snapshot"; readonly id: number }
  | ControlFrame;

export interface ReplEvent {
  readonly level: "debug" | "info" | "warn";
  readonly msg: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

export interface ReplOutput {
  readonly state: ReplState;
  readonly send: ReadonlyArray<{ readonly to: NodeId; readonly frame: OutFrame }>;
  /** For an ops frame input: apply its ops (then input `applied`), or drop it (refused as stale, or malformed); else null. */
  readonly batch: "apply" | "stale" | "malformed" | null;
  /** Ack waits that ended: satisfied, or failed with a reason. */
  readonly resolved: ReadonlyArray<{ readonly id: number; readonly ok: true } | { readonly id: number; readonly ok: false; readonly reason: string }>;
  /** Links to close, presumed dead (the runtime closes them and reports `link_down`; the hub redials). */
  readonly close: ReadonlyArray<{ readonly peer: NodeId; readonly reason: string }>;
  /** More ops could be sent than one step may plan: feed `flush` on the next turn. */
  readonly more: boolean;
  readonly events: readonly ReplEvent[];
}
