// How long the SDK waits between attempts of one call. Exponential with full
// jitter (a uniform pick in [0, cap]) so that many clients that failed at the
// same moment (a leader died under all of them) spread their retries instead
// of arriving together; a server's Retry-After is a floor on top of that.

/** Attempts past this no longer double the cap; 2^20 * any sane base is beyond any cap. */
const DOUBLINGS_MAX = 20;

/** Backoff bounds: the cap of attempt n is min(maxMs, baseMs * 2^n). */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 50, maxMs: 1000 };

/** The full-jitter wait before retry `attempt` (0 = the first retry); `random` returns [0, 1). */
export function fullJitterDelayMs(attempt: number, policy: BackoffPolicy, random: () => number): number {
  const capMs = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(0, attempt), DOUBLINGS_MAX));
  // Clamped: a custom `random` that returns 1 or more must not exceed the cap.
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(capMs * r);
}

/**
 * A Retry-After header (delay seconds or an HTTP date) in milliseconds from
 * `nowMs` (wall clock); null when absent or unreadable.
 */
export function retryAfterMs(header: string | null, nowMs: number): number | null {
  if (header === null) return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP date names its day and month; Date.parse alone would also take "-1" (the year 1 BC).
  if (!/[A-Za-z]{3}/.test(text)) return null;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - nowMs);
}
