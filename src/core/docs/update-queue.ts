// The write queue of one live document (a y-websocket room): which client
// updates are merged into the next write, when it is due, and when a client
// must be refused because the queue is full. Pure: the room driver
// (src/node/yjs-rooms.ts) offers updates, asks for the next step with the
// time and whether the region has a reachable leader, and reports how each
// write ended. A typing burst becomes one op: updates that arrive within
// `batchDelayMs` of the first one, up to `batchBytes`, are written together.
// Nothing leaves the queue until its write succeeded, so a region without a
// leader holds edits (up to `queueBytes`) instead of dropping them.
// The state is the driver's and is updated in place (a queue of a region
// without a leader holds many small updates: copying it per offer would be
// quadratic); every decision is still a function of the state and the inputs.

/** One client update waiting to be written. */
export interface QueuedUpdate {
  /** The connection it came from (for the overflow decision and logs). */
  readonly client: number;
  readonly bytes: Uint8Array;
}

interface Waiting extends QueuedUpdate {
  /** When it was offered. */
  readonly at: number;
}

export interface UpdateQueueLimits {
  /** A batch is written once it holds this many bytes (a single larger update is written alone). */
  readonly batchBytes: number;
  /** ... or once its first update has waited this long. */
  readonly batchDelayMs: number;
  /** Bytes the queue may hold in all, in flight included; an update past it is refused. */
  readonly queueBytes: number;
  /** After a failed write, the next try waits this long (the driver also retries when a leader appears). */
  readonly retryMs: number;
}

export interface UpdateQueue {
  items: Waiting[];
  bytes: number;
  /** Updates at the head of `items` that are being written now (0: no write in flight). */
  inFlight: number;
  /** No write before this time (after a failure); 0 when none failed. */
  retryAt: number;
}

/** A queue with nothing in it. */
export function emptyQueue(): UpdateQueue {
  return { items: [], bytes: 0, inFlight: 0, retryAt: 0 };
}

/** The outcome of offering an update. */
export type Offer = { readonly accepted: true } | { readonly accepted: false; readonly reason: string };

/** What the driver does next. */
export type QueueStep =
  /** Write these updates merged into one op; report with written(). */
  | { readonly kind: "write"; readonly batch: readonly QueuedUpdate[] }
  /** Ask again in `ms` (or when a leader appears). */
  | { readonly kind: "wait"; readonly ms: number }
  /** Nothing to do until the next offer or the in-flight write ends. */
  | { readonly kind: "idle" };

/** Adds an update, or refuses it when the queue would pass its bound. */
export function offer(q: UpdateQueue, u: QueuedUpdate, now: number, limits: UpdateQueueLimits): Offer {
  if (q.bytes + u.bytes.length > limits.queueBytes) {
    return { accepted: false, reason: `${q.bytes} bytes of edits wait to be written (bound ${limits.queueBytes})` };
  }
  q.items.push({ ...u, at: now });
  q.bytes += u.bytes.length;
  return { accepted: true };
}

/** The next step: a batch to write, a time to wait, or nothing. `flush` writes without waiting out the batch delay (shutdown). */
export function nextStep(q: UpdateQueue, now: number, leaderKnown: boolean, limits: UpdateQueueLimits, flush = false): QueueStep {
  if (q.inFlight > 0 || q.items.length === 0) return { kind: "idle" };
  if (now < q.retryAt) return { kind: "wait", ms: q.retryAt - now };
  if (!leaderKnown) return { kind: "wait", ms: limits.retryMs };
  const since = (q.items[0] as Waiting).at;
  if (!flush && q.bytes < limits.batchBytes && now - since < limits.batchDelayMs) return { kind: "wait", ms: since + limits.batchDelayMs - now };
  let n = 0;
  let bytes = 0;
  for (const u of q.items) {
    if (n > 0 && bytes + u.bytes.length > limits.batchBytes) break;
    bytes += u.bytes.length;
    n++;
  }
  q.inFlight = n;
  return { kind: "write", batch: q.items.slice(0, n) };
}

/** The in-flight write ended: its updates leave the queue when it succeeded, and wait for a retry when not. */
export function written(q: UpdateQueue, ok: boolean, now: number, limits: UpdateQueueLimits): void {
  if (q.inFlight === 0) return;
  if (!ok) {
    q.inFlight = 0;
    q.retryAt = now + limits.retryMs;
    return;
  }
  const done = q.items.splice(0, q.inFlight);
  q.bytes -= done.reduce((s, u) => s + u.bytes.length, 0);
  q.inFlight = 0;
  q.retryAt = 0;
}
