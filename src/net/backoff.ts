// Reconnect delays for the dialing side of a peer link. Exponential so that a
// peer that is down for a long time costs us little; jittered so that nodes
// that lost a peer at the same moment do not all redial it in lockstep; capped
// so that a healed partition heals within backoffMaxMs.

/** Attempts past this no longer double the delay (2^30 * minMs is beyond any sane cap). */
const DOUBLINGS_MAX = 30;

/**
 * The wait before reconnect attempt `attempt` (0 = first retry): the cap
 * min(maxMs, minMs * 2^attempt), jittered uniformly into [cap/2, cap], never
 * below minMs nor above maxMs. `random` returns [0, 1).
 */
export function backoffDelayMs(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  if (!(minMs >= 0 && maxMs >= minMs)) throw new Error(`backoff needs 0 <= minMs <= maxMs, got ${minMs}, ${maxMs}`);
  const capMs = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(0, attempt), DOUBLINGS_MAX));
  const jitteredMs = capMs / 2 + (capMs / 2) * random();
  return Math.round(Math.min(maxMs, Math.max(minMs, jitteredMs)));
}
