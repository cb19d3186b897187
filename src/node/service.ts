// The node as the HTTP layer sees it: data operations that answer values or
// NodeErrors. The runtime implements it; src/http only parses requests and
// renders answers, so the same service can be driven from tests directly.

import type { Conflict, Version } from "../core/op.js";
import type { NodeError } from "./errors.js";

/** How durable a write must be before it is acknowledged (DESIGN.md). */
export type AckLevel = "local" | "region" | "all";
export const ACK_LEVELS: readonly AckLevel[] = ["local", "region", "all"];

/** What a write carries besides its data. */
export interface WriteMeta {
  readonly ack: AckLevel;
  /** Client-chosen key that makes retries safe; absent when not sent. */
  readonly idempotencyKey?: string;
  /** A digest of the request (method, path, body): same key + other request is refused. Empty without idempotencyKey (nothing compares it then). */
  readonly requestHash: string;
}

/** The answer to a write: the JSON body to send and the causal token. */
export interface WriteAnswer {
  readonly body: Readonly<Record<string, unknown>>;
  readonly token: string;
  /** True when this answer was replayed from an idempotency record. */
  readonly replayed: boolean;
}

/** A kv value as read: its JSON text and version. */
export interface KvRead {
  readonly key: string;
  readonly valueJson: string;
  readonly version: Version;
}

/** Everything the data API needs from a node. */
export interface DataService {
  kvPut(key: string, valueJson: string, meta: WriteMeta): Promise<WriteAnswer | NodeError>;
  kvDelete(key: string, meta: WriteMeta): Promise<WriteAnswer | NodeError>;
  counterAdd(key: string, delta: number, meta: WriteMeta): Promise<WriteAnswer | NodeError>;
  setUpdate(key: string, add: readonly string[], remove: readonly string[], meta: WriteMeta): Promise<WriteAnswer | NodeError>;
  docUpdate(key: string, update: Uint8Array, meta: WriteMeta): Promise<WriteAnswer | NodeError>;

  kvGet(key: string): KvRead | undefined;
  kvList(prefix: string, after: string | undefined, limit: number): { items: KvRead[]; next: string | null };
  counterGet(key: string): number;
  setGet(key: string): string[];
  /** The update that brings a doc at state vector `sv` up to date (whole state without sv). */
  docGet(key: string, sv: Uint8Array | undefined): Uint8Array | NodeError;
  conflicts(limit: number): Conflict[];

  /** True when this node holds the answer for an Idempotency-Key (so a retry is answered here). */
  knowsIdempotencyKey?(key: string): boolean;

  /** Resolves once this node has applied the write named by `token`, or with an error at the deadline. */
  awaitToken(token: string, deadlineMs: number): Promise<true | NodeError>;
}

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
}

/** The cluster side of a node, as the HTTP layer sees it. */
export interface ClusterService {
  status(): StatusView;
  /** Ready to serve: the region has a leader and this node is not too far behind it. */
  ready(): { ready: true } | { ready: false; reason: string };
}

/** Where a client write goes: taken here, forwarded to the leader, or nowhere yet. */
export type WriteRoute =
  | { readonly kind: "local" }
  | { readonly kind: "forward"; readonly node: string; readonly url: string }
  | { readonly kind: "none"; readonly reason: string };

/** Decides the route of client writes on this node (the region's leadership). */
export interface WriteRouter {
  route(): WriteRoute;
  /** Resolves when the route may have changed (a leader appeared), or after `ms`. */
  changed(ms: number): Promise<void>;
}

/** Fault injection for demos and tests (POST /admin/faults). */
export interface FaultService {
  block(targets: readonly string[], direction: "both" | "in" | "out"): { blocked: string[] };
  clear(): { blocked: string[] };
}

/** Operator actions on a region's leadership (DESIGN.md cluster API). */
export interface LeadershipService {
  /** Leader: step down (null) or refuse (reason). Not leader: forward to the leader. */
  stepdown(): Promise<{ ok: true; leader: string | null } | { ok: false; status: 409 | 503; reason: string; forwardTo?: string }>;
  /** Manual failover: proclaim this node, or refuse with the reason. */
  promote(): { ok: true } | { ok: false; reason: string };
  /** Whether a fencing token is current, and the current one for its region. */
  validateFence(token: string): { valid: boolean; current: string } | null;
}
