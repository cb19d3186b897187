// One client write executed twice. A leader takes a write and dies before any
// follower has it; the client's retry (same Idempotency-Key) is taken by the
// next leader; the first copy comes back with the old leader and is merged, as
// deposed leaders' writes are. Every replica must agree on which copy counts,
// so the choice is a total order on the copies: the earlier one wins.

import { compareHlc, type Hlc } from "./hlc.js";

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
