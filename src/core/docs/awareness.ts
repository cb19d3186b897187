// Awareness (presence) updates as y-protocols encodes them: a count, then per
// client its id, a clock and its state as JSON text. y-protocols applies an
// update entry by entry and throws at the first bad one, so garbage could
// leave half an update applied; this reads the whole update first, with
// lib0's decoder (the encoding y-protocols uses), so a bad one is refused
// before anything of it is applied.

import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";

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

/** One client's entry of an awareness update: its id, clock, and state as JSON text ("null": gone). */
export interface AwarenessEntry {
  readonly client: number;
  readonly clock: number;
  readonly json: string;
}

/** The entries of an awareness update (call after awarenessUpdateProblem said null). */
export function awarenessEntries(update: Uint8Array): AwarenessEntry[] {
  const d = decoding.createDecoder(update);
  const n = decoding.readVarUint(d);
  const out: AwarenessEntry[] = [];
  for (let i = 0; i < n; i++) out.push({ client: decoding.readVarUint(d), clock: decoding.readVarUint(d), json: decoding.readVarString(d) });
  return out;
}

/** Encodes entries as an awareness update. */
export function encodeAwarenessEntries(entries: readonly AwarenessEntry[]): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, entries.length);
  for (const x of entries) {
    encoding.writeVarUint(e, x.client);
    encoding.writeVarUint(e, x.clock);
    encoding.writeVarString(e, x.json);
  }
  return encoding.toUint8Array(e);
}

/**
 * The entries of a state relayed again after this node had removed it (the
 * link to its node was down), with clocks raised past the removal: the
 * removal went to the clients with the next clock, and a state at the
 * client's own clock would be ignored as old until it next renews (15 s).
 * `removedClock(client)` is this node's clock for a client it holds no state of,
 * or undefined.
 */
export function raisedPastRemoval(entries: readonly AwarenessEntry[], removedClock: (client: number) => number | undefined): { entries: AwarenessEntry[]; raised: boolean } {
  let raised = false;
  const out = entries.map((x) => {
    const removed = removedClock(x.client);
    if (removed === undefined || x.json === "null" || x.clock > removed) return x;
    raised = true;
    return { ...x, clock: removed + 1 };
  });
  return { entries: out, raised };
}
