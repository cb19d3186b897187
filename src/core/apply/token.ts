// The causal token of a write is the dot of its op, "<origin>:<seq>". The
// answer to a write carries it, idempotency records store it, and the
// duplicate-write rule reads it back from a record to find which op answered
// a key, so formatting and parsing live in one place.

/** The token of a write: the dot of its op, "<origin>:<seq>". */
export function tokenOf(op: { readonly origin: string; readonly seq: number }): string {
  return `${op.origin}:${op.seq}`;
}

/** Parses a causal token; null when it is not one. */
export function parseToken(token: string): { origin: string; seq: number } | null {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63}):([1-9]\d{0,15})$/.exec(token);
  if (!m) return null;
  const seq = Number(m[2]);
  return Number.isSafeInteger(seq) ? { origin: m[1] as string, seq } : null;
}
