// Client tokens: which token grants what. GEOKV_CLIENT_TOKEN reads and
// writes; GEOKV_READ_TOKEN (only together with a client token) reads. The
// data API, the dashboard's data and the live documents at /yjs all ask
// here, so they cannot disagree. Tokens are compared in constant time.

/** What a presented token grants. */
export type Access = "write" | "read";

export interface ClientTokens {
  readonly clientToken?: string | undefined;
  readonly readToken?: string | undefined;
}

/** True when clients must present a token. */
export function tokensRequired(t: ClientTokens): boolean {
  return t.clientToken !== undefined || t.readToken !== undefined;
}

/** Constant-time comparison of a presented token with a configured one. */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ (b[i] as number);
  return diff === 0;
}

/** What `presented` grants: "write", "read", or null for a wrong token. Call only when tokensRequired. */
export function accessOf(presented: string, t: ClientTokens): Access | null {
  // Both are compared, so the time taken does not tell which one matched.
  const write = t.clientToken !== undefined && tokenMatches(presented, t.clientToken);
  const read = t.readToken !== undefined && tokenMatches(presented, t.readToken);
  if (write) return "write";
  if (read) return "read";
  return null;
}
