// One counter write executed more than once. A leader takes a write with an
// Idempotency-Key and dies before any follower has it; the client's retry is
// taken by the next leader, which has no record of the key (and after a
// second failover, by a third); the first copy comes back with the old
// leader and is merged, as deposed leaders' writes are. For kv, sets and docs
// a second copy changes nothing a reader sees; a counter would count the
// delta once per copy.
//
// The rule lives in the merge, not in any node's actions: a counter's state
// keeps, per Idempotency-Key and request hash (one write; a different request
// reusing a key is a different write, acknowledged too), every copy of that
// write it has applied (origin, seq, hlc, delta), and its value leaves out
// the delta of every copy but the winner, the first by copyLoses' total
// order (earlier HLC, then origin, then seq). The copies of a write are a
// set, kept sorted by that order, so every replica that applied the same ops
// holds the same state and value, in any delivery order and with duplicates,
// whether or not the losers' origins are alive.
//
// Bounded memory: an entry lives about as long as an idempotency record
// (IDEMPOTENCY_TTL_MS). Applying an op to the counter drops the entries whose
// newest copy is more than the TTL older than the op, by HLC wall time: the
// origins' clocks, as idempotency records are stamped, not the time a
// replica happens to apply the op, so a replica a day behind drops the same
// entries when it catches up. The losers' deltas of a dropped entry move
// into one folded adjustment, so the value does not change. The
// honest limit: a copy that reaches a replica after its entry expired there
// counts there as a new write, as a client retry after the TTL does
// everywhere (there is no record left to replay either). Copies of one write
// are made seconds apart (a failover), so this takes a replica cut off from
// the copies' origins for about a day. For the same reason a copy applied
// again after its entry expired would be recorded again: the apply path
// never does that, its node vector drops every duplicate.
//
// The entries are a list sorted by (key, request hash), not an object keyed
// by the key: a key is client input (it may be "__proto__"), and a sorted
// list takes one binary search to update, where a large object is rebuilt
// per write.

import { compareHlc, type Hlc } from "../hlc.js";
import type { CounterCopy, CounterOp, KeyedCopies, OpIdem } from "../op.js";

/** A counter's entries: sorted by (Idempotency-Key, request hash), each pair once. */
export type CopiesList = readonly KeyedCopies[];

/** The parts of an op that order its copies. */
export interface WriteCopy {
  readonly hlc: Hlc;
  readonly origin: string;
  readonly seq: number;
}

/** True when copy `a` loses to copy `b`: it is the later one by (hlc, origin, seq). */
export function copyLoses(a: WriteCopy, b: WriteCopy): boolean {
  const c = compareHlc(a.hlc, b.hlc);
  if (c !== 0) return c > 0;
  if (a.origin !== b.origin) return a.origin > b.origin;
  return a.seq > b.seq;
}

/** The copy an idempotency-keyed counter op adds to its key's state. */
export function copyOf(op: CounterOp): CounterCopy {
  return { origin: op.origin, seq: op.seq, hlc: { wallMs: op.hlc.wallMs, logical: op.hlc.logical }, delta: op.delta };
}

const sameCopy = (a: CounterCopy, b: CounterCopy): boolean => a.origin === b.origin && a.seq === b.seq;
const byCopyOrder = (a: CounterCopy, b: CounterCopy): number => (sameCopy(a, b) ? 0 : copyLoses(a, b) ? 1 : -1);
const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const compareKeys = (a: OpIdem, b: OpIdem): number => compareStrings(a.key, b.key) || compareStrings(a.requestHash, b.requestHash);

/** One key's copies in copy order (winner first), each dot once: a dot names one op. */
function canonicalCopies(copies: readonly CounterCopy[]): readonly CounterCopy[] {
  return [...copies].sort(byCopyOrder).filter((c, i, all) => i === 0 || !sameCopy(c, all[i - 1] as CounterCopy));
}

/** Where the write `key` names is in the sorted list, or where it would go. */
function search(list: CopiesList, key: OpIdem): { index: number; found: boolean } {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareKeys(list[mid] as KeyedCopies, key);
    if (c === 0) return { index: mid, found: true };
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return { index: lo, found: false };
}

/** `list` with `copy` added to the write `idem` names; undefined stands for the empty list. */
export function withCopy(list: CopiesList | undefined, idem: OpIdem, copy: CounterCopy): CopiesList {
  const base = list ?? [];
  const at = search(base, idem);
  const { key, requestHash } = idem;
  if (!at.found) return [...base.slice(0, at.index), { key, requestHash, copies: [copy] }, ...base.slice(at.index)];
  const entry = base[at.index] as KeyedCopies;
  if (entry.copies.some((c) => sameCopy(c, copy))) return base;
  const next = [...base];
  next[at.index] = { key, requestHash, copies: canonicalCopies([...entry.copies, copy]) };
  return next;
}

/** The union of two states' entries, copies united per write: a join (commutative, associative, idempotent). */
export function unionCopies(a: CopiesList | undefined, b: CopiesList | undefined): CopiesList | undefined {
  let out: CopiesList | undefined = a;
  for (const e of b ?? []) for (const c of e.copies) out = withCopy(out, e, c);
  return out;
}

/** The deltas of one key's losing copies: every copy but the first. */
function losersDelta(copies: readonly CounterCopy[]): number {
  let sum = 0;
  for (let i = 1; i < copies.length; i++) sum += (copies[i] as CounterCopy).delta;
  return sum;
}

/** What the value leaves out for the live entries: the losers' deltas of every key. */
export function losingDeltas(list: CopiesList | undefined): number {
  let sum = 0;
  for (const e of list ?? []) sum += losersDelta(e.copies);
  return sum;
}

/** The wall time of an entry's newest copy: copy order sorts by HLC first, so it is the last. */
function newestMs(e: KeyedCopies): number {
  const newest = e.copies[e.copies.length - 1];
  if (newest === undefined) throw new Error(`a counter's copies under an Idempotency-Key must not be empty (${JSON.stringify(e.key)})`);
  return newest.hlc.wallMs;
}

/**
 * Drops the entries whose newest copy is more than `ttlMs` older than
 * `nowWallMs` (the wall time of the op being applied); returns the rest
 * (undefined when none is left) and the losers' deltas of the dropped ones,
 * to fold into the state.
 */
export function expireCopies(list: CopiesList | undefined, nowWallMs: number, ttlMs: number): { list: CopiesList | undefined; folded: number } {
  if (list === undefined || !list.some((e) => nowWallMs - newestMs(e) > ttlMs)) return { list, folded: 0 };
  let folded = 0;
  const kept = list.filter((e) => {
    if (nowWallMs - newestMs(e) <= ttlMs) return true;
    folded += losersDelta(e.copies);
    return false;
  });
  return { list: kept.length === 0 ? undefined : kept, folded };
}
