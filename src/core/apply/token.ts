// The causal token of a write is the dot of its op, "<origin>:<seq>". The
// answer to a write carries it, idempotency records store it, and a replayed
// answer reads it back from a record to find which op answered a key. The one format and parse are CausalToken's (src/core/causal-token.ts);
// these are the string-level conveniences the apply path uses.

import { causalTokenOf, formatCausalToken, parseCausalToken } from "../causal-token.js";
import type { NodeId } from "../ids.js";

/** The token of a write: the dot of its op, "<origin>:<seq>". */
export function tokenOf(op: { readonly origin: NodeId; readonly seq: number }): string {
  return formatCausalToken(causalTokenOf(op));
}

/** Parses a causal token; null when it is not one. */
export function parseToken(token: string): { origin: string; seq: number } | null {
  return parseCausalToken(token);
}
