// Admission under overload (DESIGN.md, "Overload and clocks"): every queue
// and wait of a node has a bound, named with its unit, and a request that
// would take one past it is shed at once with 503 `overloaded` and a
// Retry-After, before it costs the node anything more. Shedding early is what
// keeps a node that is offered ten times what it can do answering the work it
// does take within its usual latency, and keeps its heartbeats on time, so an
// overload never turns into an election. What is never shed is not here at
// all: peer links (heartbeats, replication, elections), /health, /ready,
// /status, /metrics and /leadership/* do not pass through admission.
//
// The decision is this module's; the node only counts what it holds and
// performs the answer (src/node/overload.ts).

/** Each bounded queue or wait, as the node counts it. */
export interface Bounds {
  /** Client HTTP requests being answered at once (--max-inflight-requests). */
  readonly inflightRequests: number;
  /** Ops of client writes submitted to the group commit and not yet committed (--max-pending-write-ops). */
  readonly pendingWriteOps: number;
  /** Writes waiting for a majority or all of the region to confirm them (--max-ack-waiters). */
  readonly ackWaiters: number;
  /** Reads waiting until this replica has applied the write their X-Geokv-Token names (--max-token-waiters). */
  readonly tokenWaiters: number;
  /** Writes waiting for the region to have a leader (--max-leader-waiters). */
  readonly leaderWaiters: number;
  /** Live-document WebSocket clients (--max-ws-clients). */
  readonly wsClients: number;
}

export type BoundName = keyof Bounds;

/** Every bound, in the order /metrics and /status list them. */
export const BOUND_NAMES: readonly BoundName[] = ["inflightRequests", "pendingWriteOps", "ackWaiters", "tokenWaiters", "leaderWaiters", "wsClients"];

/** What each bound counts, for messages: "2048 pending write ops". */
const UNIT: Readonly<Record<BoundName, string>> = {
  inflightRequests: "requests in flight",
  pendingWriteOps: "write ops waiting for a commit",
  ackWaiters: "writes waiting for replica confirmation",
  tokenWaiters: "reads waiting for a causal token",
  leaderWaiters: "writes waiting for a leader",
  wsClients: "live-document clients",
};

/**
 * How long a shed client is told to wait. One second: long enough that a
 * client retrying at once does not double the load it was shed from, short
 * enough that a burst that has passed costs it little.
 */
export const SHED_RETRY_AFTER_S = 1;

/** A refusal: the bound that is full, what it holds and its limit. */
export interface Shed {
  readonly bound: BoundName;
  readonly held: number;
  readonly max: number;
  readonly retryAfterS: number;
}

/**
 * Whether one more unit of `adding` fits a bound that holds `held` of at most
 * `max`: null when it does, the refusal when it does not. A single request
 * larger than the whole bound (a batch of more ops than it allows) is let in
 * when the queue is empty, so no valid request is refused forever.
 */
export function admit(bound: BoundName, held: number, max: number, adding = 1): Shed | null {
  if (held + adding <= max || held === 0) return null;
  return { bound, held, max, retryAfterS: SHED_RETRY_AFTER_S };
}

/** The message of a shed answer: which bound, how full, what to do. */
export function shedMessage(s: Shed): string {
  return `overloaded: ${s.held} ${UNIT[s.bound]} of at most ${s.max}; retry after ${s.retryAfterS} s`;
}
