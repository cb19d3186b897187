// The HTTP API's shared vocabulary: the types and constants a client and the
// server must agree on (error codes, ack levels, the /status body). It is the
// one module the SDK shares with the server (DESIGN.md, Architecture), so it
// holds no logic and imports nothing: any layer may import it, and the SDK
// never needs a node internal to speak the API.

/** Every error code of the HTTP contract (DESIGN.md, HTTP API). */
export type ErrorCode =
  | "bad_request"
  | "invalid_key"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "idempotency_mismatch"
  | "value_too_large"
  | "no_leader"
  | "stale_replica"
  | "clock_skew"
  | "overloaded"
  | "refused"
  | "internal";

/** A key per code, so the compiler says when a code is missing from ERROR_CODES. */
const ERROR_CODE_SET: Readonly<Record<ErrorCode, true>> = {
  bad_request: true,
  invalid_key: true,
  unauthorized: true,
  forbidden: true,
  not_found: true,
  idempotency_mismatch: true,
  value_too_large: true,
  no_leader: true,
  stale_replica: true,
  clock_skew: true,
  overloaded: true,
  refused: true,
  internal: true,
};
/** Every error code, as a list (the OpenAPI document, the SDK's recognition of an error body). */
export const ERROR_CODES = Object.keys(ERROR_CODE_SET) as readonly ErrorCode[];

/** How durable a write must be before it is acknowledged (`?ack=`, DESIGN.md). */
export type AckLevel = "local" | "region" | "all";
export const ACK_LEVELS: readonly AckLevel[] = ["local", "region", "all"];

/** One peer as /status shows it. */
export interface PeerStatus {
  readonly node: string;
  readonly region: string;
  readonly state: "up" | "down";
  readonly lagOps: number;
  readonly lastContactMs: number | null;
}

/** The body of GET /status (DESIGN.md). */
export interface StatusView {
  readonly node: string;
  readonly region: string;
  readonly role: "leader" | "follower" | "candidate";
  readonly leader: string | null;
  readonly epoch: number;
  readonly fencingToken: string | null;
  readonly vv: Readonly<Record<string, number>>;
  readonly peers: readonly PeerStatus[];
  /** The election phase: follower, electing, awaiting_coordinator, leader_pending, leader. */
  readonly phase?: string;
  /** Why peers refused this node, when they did (e.g. wrong cluster secret). */
  readonly refusedBy?: readonly { node: string; reason: string }[];
  /** The op log and the database file: what compaction keeps bounded. */
  readonly storage?: StorageStatus;
  /** This node's wall clock against its peers' (see maxClockSkewMs). */
  readonly clock?: ClockStatus;
}

/** /status's clock: skewed refuses client writes and leadership; offsetMs is this clock minus the peers' (median), null before any sample. */
export interface ClockStatus {
  readonly skewed: boolean;
  readonly offsetMs: number | null;
}

/** /status's storage figures. */
export interface StorageStatus {
  /** Rows in the op log now. */
  readonly opLogOps: number;
  /** Their key, body and payload bytes. */
  readonly opLogBytes: number;
  /** The database file plus its WAL. */
  readonly dbBytes: number;
  /** Per origin, the seq up to which ops were compacted out of the log. */
  readonly compactedVv: Readonly<Record<string, number>>;
  /** The stability frontier: every member holds every op at or below it. */
  readonly stableVv: Readonly<Record<string, number>>;
}

/** Marks a request one node passed to another, so it is never passed on again (writes and stepdown alike). */
export const FORWARDED_HEADER = "x-geokv-forwarded";
