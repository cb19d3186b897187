// Causal tokens, `<origin>:<seq>`: the X-Geokv-Token a write answers with and
// a later request carries for read-your-writes. A token names the dot of the
// write's op, so "has this node applied it?" is a version-vector lookup. One
// branded type with one format and one parse: the HTTP edge parses the header
// once, and the node inside trusts the CausalToken it is handed. Clients treat
// the text as opaque (DESIGN.md), so the SDK never parses it.

import { isValidId, type NodeId } from "./ids.js";
import type { Dot } from "./op.js";

/** A causal token: the dot of a write's op. Only causalTokenOf and parseCausalToken make one. */
export type CausalToken = { readonly origin: NodeId; readonly seq: number } & { readonly __brand: "CausalToken" };

/** Seqs are positive integers of at most 16 digits (and safe integers). */
const TOKEN_PATTERN = /^([^:]+):([1-9]\d{0,15})$/;

/** The token of the write whose op has this dot; a seq below 1 is a bug. */
export function causalTokenOf(dot: Dot): CausalToken {
  if (!Number.isSafeInteger(dot.seq) || dot.seq < 1) throw new Error(`causal token: seq ${dot.seq} is not a positive integer`);
  return { origin: dot.origin, seq: dot.seq } as CausalToken;
}

/** `<origin>:<seq>`, the X-Geokv-Token header and the `token` field of a write's answer. */
export function formatCausalToken(t: CausalToken): string {
  return `${t.origin}:${t.seq}`;
}

/** Parses untrusted text into a causal token, or null when it is not one this API issued. */
export function parseCausalToken(text: string): CausalToken | null {
  const m = TOKEN_PATTERN.exec(text);
  if (m === null) return null;
  const origin = m[1] as string;
  const seq = Number(m[2]);
  if (!isValidId(origin) || !Number.isSafeInteger(seq)) return null;
  return { origin: origin as NodeId, seq } as CausalToken;
}
