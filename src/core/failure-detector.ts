// The failure detector, as pure data: when a node may call a peer dead, and
// how it avoids calling it dead for a silence it slept through itself. Time is
// an input; nothing here reads a clock. It is the only liveness rule of the
// node: the election (is the leader alive, may I stand) and the replication
// machine (is a peer up, is its link dead) both judge with this module, each
// on its own awake clock, so no other layer times peers out on a clock of its
// own (the net layer only reports evidence: frames, pongs, drained queues).
//
// Stall guard (DESIGN.md: "A node never suspects a peer for a silence that it
// slept through itself"): the runtime feeds an input at least every
// heartbeatMs (a tick when nothing else happens). When two consecutive inputs
// are further apart than STALL_FACTOR * heartbeatMs, this node was not running
// (event-loop stall, GC pause, SIGSTOP, VM freeze) and the gap beyond one
// nominal tick is a stall. Instead of pushing every "last heard" time forward
// by the stall length, the machine keeps all its timers on an *awake clock*:
// wall time minus the total stall time. Shifting the clock back is the same as
// shifting every recorded time forward, and cannot forget a timer.
//
// Drain before judging: after any pause longer than a heartbeat (a stall, or
// a shorter hiccup below the stall threshold), the runtime's timer usually
// fires before it reads the sockets (Node runs due timers first), while the
// leader's heartbeat already waits in the buffer. So the first tick after such
// a pause only moves the clock; timers fire on the next input, once whatever
// arrived meanwhile has been read. Only one tick in a row is held back, so a
// runtime that ticks too slowly still makes progress.

/** A node's own clock with the time it was stalled taken out. */
export interface AwakeClock {
  /** `now` of the last input (monotonic runtime clock, ms). */
  readonly lastInputMs: number;
  /** Total time this node was detected stalled since it started. */
  readonly stalledMs: number;
  /** The last tick ended a pause and fired no timer. */
  readonly heldTick: boolean;
}

/** Gaps between inputs longer than this many heartbeats are stalls of this node. */
export const STALL_FACTOR = 2;

/** A clock that starts at `now`, with no stall yet. */
export function startClock(now: number): AwakeClock {
  assertTime(now);
  return { lastInputMs: now, stalledMs: 0, heldTick: false };
}

/** What one input at `now` tells about this node's own scheduling. */
export interface Observed {
  readonly clock: AwakeClock;
  /** Stall detected just before this input (0 if none). */
  readonly stallMs: number;
  /** For a tick: whether timers may fire now (false right after a pause). */
  readonly fireTimers: boolean;
}

/** The clock after an input (a tick when `isTick`) at `now`. */
export function observeInput(clock: AwakeClock, now: number, heartbeatMs: number, isTick: boolean): Observed {
  assertTime(now);
  // The runtime must use a monotonic clock (performance.now()): a wall clock
  // stepped back by NTP would make every timer fire late or never.
  if (now < clock.lastInputMs) throw new Error(`time went back: ${now} < ${clock.lastInputMs} (use a monotonic clock)`);
  const gapMs = now - clock.lastInputMs;
  // One nominal tick interval of every gap counts as awake time, so that even a
  // node that stalls on every tick still moves its clock forward and its
  // leases still expire.
  const stallMs = gapMs > STALL_FACTOR * heartbeatMs ? gapMs - heartbeatMs : 0;
  const fireTimers = !isTick || !(gapMs > heartbeatMs && !clock.heldTick);
  const heldTick = isTick ? !fireTimers : clock.heldTick;
  return { clock: { lastInputMs: now, stalledMs: clock.stalledMs + stallMs, heldTick }, stallMs, fireTimers };
}

/** `now` on the awake clock: what every timer of the election is measured in. */
export function awakeNow(clock: AwakeClock, now: number): number {
  return now - clock.stalledMs;
}

/** A follower's suspicion timer: armed whenever it hears its leader. */
export interface SilenceTimer {
  /** Awake time at which the leader was last heard (or the timer was armed). */
  readonly heardMs: number;
  /** Awake time from which the leader is suspected. */
  readonly suspectAtMs: number;
}

/**
 * Jitter on a silence timeout, as a fraction of it. Bully's ranking settles
 * who stands when two followers suspect at once, so the jitter only needs to
 * spread them a little; every bit of it is added to the failover time.
 */
export const SILENCE_JITTER_FRACTION = 0.25;

/**
 * Arms the timer at `nowMs` (awake time): suspicion after electionTimeoutMs plus a
 * jitter of up to a quarter of it, drawn now, so that followers do not all suspect at once.
 */
export function armSilenceTimer(nowMs: number, electionTimeoutMs: number, random: number): SilenceTimer {
  assertRandom(random);
  const jitterMs = Math.floor(random * electionTimeoutMs * SILENCE_JITTER_FRACTION);
  return { heardMs: nowMs, suspectAtMs: nowMs + electionTimeoutMs + jitterMs };
}

/** True once the silence has lasted past the armed timeout. */
export function isSuspected(timer: SilenceTimer, nowMs: number): boolean {
  return nowMs >= timer.suspectAtMs;
}

/**
 * True when a peer last heard at `heardMs` counts as live: heard within
 * electionTimeoutMs (no jitter, so every node applies the same pre-vote rule).
 */
export function isLive(heardMs: number, nowMs: number, electionTimeoutMs: number): boolean {
  return nowMs - heardMs < electionTimeoutMs;
}

/**
 * Silence, in election timeouts, after which a peer's link is presumed dead
 * and closed (the hub redials it). 20 x the default 500 ms is 10 s: a busy
 * peer (applying a big catch-up can stall its event loop for seconds) must
 * not lose its link, since closing it throws away the frames in flight and
 * makes both sides resend them. Leadership uses isLive, which is far quicker.
 */
export const LINK_SILENCE_TIMEOUTS = 20;

/**
 * True when a link whose peer last showed a sign of life at `heardMs` (a frame,
 * a ws pong, a drained send queue; awake time) is presumed dead.
 */
export function linkPresumedDead(heardMs: number, nowMs: number, electionTimeoutMs: number): boolean {
  return !isLive(heardMs, nowMs, LINK_SILENCE_TIMEOUTS * electionTimeoutMs);
}

function assertTime(now: number): void {
  if (!Number.isFinite(now)) throw new Error(`time must be a finite number of ms, got ${now}`);
}

/** Random inputs come from the runtime (Math.random) or the simulator's PRNG. */
export function assertRandom(random: number): void {
  if (!(random >= 0 && random < 1)) throw new Error(`random must be in [0, 1), got ${random}`);
}
