// The node as the HTTP layer sees it: data operations that answer values or
// NodeErrors. The runtime implements it; src/http only parses requests and
// renders answers, so the same service can be driven from tests directly.

import type { CausalToken } from "../core/causal-token.js";
import type { FencingToken } from "../core/fence.js";
import type { Conflict, Version } from "../core/op.js";
import type { AckLevel, StatusView } from "../api/types.js";
import type { NodeError } from "./errors.js";

// The API's own types live in src/api (shared with the SDK); re-exported so
// the node's modules keep one place to import the service's vocabulary from.
import type { CompactionReport } from "./compactor.js";
export type { CompactionReport } from "./compactor.js";
export { ACK_LEVELS, type AckLevel, type PeerStatus, type StatusView } from "../api/types.js";

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

  /** Resolves once this node has applied the write named by `token`, or with stale_replica after `waitMs`. */
  awaitToken(token: CausalToken, waitMs: number): Promise<true | NodeError>;
}

/** The cluster side of a node, as the HTTP layer sees it. */
export interface ClusterService {
  status(): StatusView;
  /** Ready to serve: the region has a leader and this node is not too far behind it. */
  ready(): { ready: true } | { ready: false; reason: string };
  /** Runs one compaction pass now (POST /admin/compact); absent on nodes without a store of their own. */
  compact?(): Promise<CompactionReport>;
}

/** Where a client write goes: taken here, forwarded to the leader, or nowhere yet. */
export type WriteRoute =
  | { readonly kind: "local" }
  | { readonly kind: "forward"; readonly node: string; readonly url: string }
  | { readonly kind: "none"; readonly reason: string }
  /** This node refuses client writes itself (its clock is skewed). */
  | { readonly kind: "refused"; readonly error: NodeError };

/** Decides the route of client writes on this node (the region's leadership). */
export interface WriteRouter {
  route(): WriteRoute;
  /** Asked before a write starts to wait for a leader: null, or the answer to give instead (overloaded). */
  admitWait(): NodeError | null;
  /** Resolves when the route may have changed (a leader appeared), or after `ms`. */
  changed(ms: number): Promise<void>;
}

/** Fault injection for demos and tests (POST /admin/faults). */
export interface FaultService {
  block(targets: readonly string[], direction: "both" | "in" | "out"): { blocked: string[] };
  clear(): { blocked: string[] };
}

/**
 * An operator action this node did not perform: why, as the contract's error
 * (refused, or no_leader when the region has none), and where the leader is
 * when another node could perform it. The HTTP layer picks the status.
 */
export interface LeadershipRefusal {
  readonly ok: false;
  readonly error: NodeError;
  /** The URL of the region's leader, when this node is not it and the action belongs there. */
  readonly forwardTo?: string;
}

/** Operator actions on a region's leadership (DESIGN.md cluster API). */
export interface LeadershipService {
  /** Leader: step down, or refuse with the reason. Not leader: refused, with the leader to forward to. */
  stepdown(): Promise<{ readonly ok: true; readonly leader: string | null } | LeadershipRefusal>;
  /** Manual failover: proclaim this node, or refuse with the reason. */
  promote(): { readonly ok: true } | LeadershipRefusal;
  /** Whether `token` names its region's current epoch, and the current token; null when the region is not in the cluster. */
  validateFence(token: FencingToken): { readonly valid: boolean; readonly current: FencingToken } | null;
}
