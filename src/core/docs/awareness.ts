// Awareness (presence) updates as y-protocols encodes them: a count, then per
// client its id, a clock and its state as JSON text. y-protocols applies an
// update entry by entry and throws at the first bad one, so garbage could
// leave half an update applied; this reads the whole update first, with
// lib0's decoder (the encoding y-protocols uses), so a bad one is refused
// before anything of it is applied.

import * as decoding from "lib0/decoding";

/** Most client states one update may carry (a room's presence, not a bulk channel). */
export const AWARENESS_CLIENTS_MAX = 10_000;

/** Why an awareness update is refused, or null when y-protocols can apply all of it. */
export function awarenessUpdateProblem(update: Uint8Array): string | null {
  try {
    const d = decoding.createDecoder(update);
    const n = decoding.readVarUint(d);
    if (n > AWARENESS_CLIENTS_MAX) return `an awareness update of ${n} clients (at most ${AWARENESS_CLIENTS_MAX})`;
    for (let i = 0; i < n; i++) {
      decoding.readVarUint(d);
      decoding.readVarUint(d);
      JSON.parse(decoding.readVarString(d));
    }
    if (decoding.hasContent(d)) return "bytes after the end of the awareness update";
    return null;
  } catch (err) {
    return `a malformed awareness update (${err instanceof Error ? err.message : String(err)})`;
  }
}

/** The client ids an awareness update speaks for (call after awarenessUpdateProblem said null). */
export function awarenessClients(update: Uint8Array): number[] {
  const d = decoding.createDecoder(update);
  const n = decoding.readVarUint(d);
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    ids.push(decoding.readVarUint(d));
    decoding.readVarUint(d);
    decoding.readVarString(d);
  }
  return ids;
}
