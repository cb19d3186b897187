// Yjs documents as a state-based CRDT over update bytes. A doc's state is one
// Yjs update holding everything merged so far; merging is Y.mergeUpdates,
// which works on the encoded form without building a Y.Doc, so a node stores
// and serves documents without ever running them. Yjs owns the merge; this
// file adds the things a database needs around it: an empty state, diffs
// against a client's state vector, and a check that untrusted bytes are a
// Yjs update at all before they are replicated to every region.

import * as Y from "yjs";
import type { DocState } from "../op.js";

/**
 * Options for the scratch Y.Docs this file loads states into. A fixed guid
 * skips the uuid Yjs would otherwise draw from the system random source for
 * every doc (that draw dominated the cost of a validation); nothing here
 * writes through the doc, so its random client id never reaches any state.
 */
const SCRATCH_DOC = { gc: false, guid: "geokv-scratch" } as const;
/** The same, garbage-collecting: for compaction, which exists to drop deleted content. */
const GC_DOC = { gc: true, guid: "geokv-compact" } as const;

/** An update with no structs and no deletions (what Y.encodeStateAsUpdate gives for a new doc). */
const EMPTY_UPDATE: readonly number[] = [0, 0];

/** The state of a doc nobody has written. */
export function emptyDoc(): DocState {
  return Uint8Array.from(EMPTY_UPDATE);
}

/**
 * Below this size a doc state is never compacted: merging keeps deleted
 * content, and re-encoding a small doc through a Y.Doc is not worth it.
 */
export const DOC_COMPACT_MIN_BYTES = 64 * 1024;

/**
 * The state with deleted content dropped: loaded into a garbage-collecting
 * Y.Doc and encoded again, the way a Yjs server's own docs shed it. Deleted
 * items keep their ids (as GC structs) and stay in the delete set, so the
 * result merges with any replica's state and any later update exactly as the
 * full state would, and holds the same document. Updates still waiting for
 * their dependencies are kept (Yjs encodes its pending structs with the
 * state).
 */
export function compactDoc(state: DocState): DocState {
  const doc = new Y.Doc(GC_DOC);
  try {
    Y.applyUpdate(doc, state);
    return Y.encodeStateAsUpdate(doc);
  } catch {
    // A state Yjs cannot load (an update that was valid alone but not with
    // the rest) stays as it is: the apply path must never throw.
    return state;
  } finally {
    doc.destroy();
  }
}

/**
 * True when a state that grew from `before` to `after` bytes is due for
 * compaction: once it passes DOC_COMPACT_MIN_BYTES, each time its size
 * crosses a power of two (see mergeIntoDoc for why that stays cheap).
 */
export function docCompactionDue(before: number, after: number): boolean {
  if (after < DOC_COMPACT_MIN_BYTES) return false;
  return Math.floor(Math.log2(after)) > Math.floor(Math.log2(Math.max(before, 1)));
}

/** A compaction is kept only when it saved at least this share; otherwise the next threshold is the next power of two. */
const DOC_COMPACT_KEEP_RATIO = 0.75;

/**
 * Merges updates into a state (the state first), compacting it when its
 * growth says so. A compaction that saves less than a quarter is dropped:
 * kept, it would leave the state just under the threshold it crossed, and
 * the next op would pay for another pass. Kept, it leaves the state at most
 * three quarters of the threshold, so it must grow by a third first.
 */
export function mergeIntoDoc(state: DocState, updates: readonly Uint8Array[]): DocState {
  const merged = Y.mergeUpdates([state, ...updates]);
  if (!docCompactionDue(state.length, merged.length)) return merged;
  const compacted = compactDoc(merged);
  return keepsCompaction(merged.length, compacted.length) ? compacted : merged;
}

/** True when a compaction from `mergedBytes` to `compactedBytes` saved enough to be kept (see mergeIntoDoc). */
export function keepsCompaction(mergedBytes: number, compactedBytes: number): boolean {
  return compactedBytes <= mergedBytes * DOC_COMPACT_KEEP_RATIO;
}

/** Applies one update: the merge of the state and the update (compacted past the bound, see docCompactionDue). */
export function applyDoc(state: DocState | undefined, update: Uint8Array): DocState {
  // mergeUpdates returns its single input as is; starting from the empty doc copies it, so callers never alias a state.
  return mergeIntoDoc(state ?? emptyDoc(), [update]);
}

/** The state-based join of two doc states. */
export function mergeDoc(a: DocState, b: DocState): DocState {
  return Y.mergeUpdates([a, b]);
}

/** What a peer with `stateVector` lacks (the whole state when no vector is given). */
export function docDiff(state: DocState, stateVector?: Uint8Array): Uint8Array {
  if (stateVector === undefined) return state.slice();
  return Y.diffUpdate(state, stateVector);
}

/** The state vector of a doc state, for clients that sync with sync step 1. */
export function docStateVector(state: DocState): Uint8Array {
  return Y.encodeStateVectorFromUpdate(state);
}

/** True when `sv` decodes as a Yjs state vector (never throws). */
export function validateStateVector(sv: Uint8Array): boolean {
  try {
    Y.decodeStateVector(sv);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when `bytes` is a Yjs (v1) update that Yjs can apply; never throws.
 *
 * Decoding comes first and is the cheap, bounded check: Y.applyUpdate on raw
 * garbage can preallocate an array as long as a varint in the input says
 * (a 5-byte input costs ~100 ms and hundreds of MB), while decoding reads
 * every struct it counts and so fails at the end of the input instead. Some
 * bytes decode but still make Y.applyUpdate throw (dangling references,
 * unknown content), so the update is then also applied to a throwaway doc.
 * An update whose dependencies are missing is valid: it stays pending until
 * they arrive, exactly as in a client.
 */
export function validateDocUpdate(bytes: Uint8Array): boolean {
  try {
    Y.decodeUpdate(bytes);
  } catch {
    return false;
  }
  try {
    const doc = new Y.Doc(SCRATCH_DOC);
    try {
      Y.applyUpdate(doc, bytes);
    } finally {
      doc.destroy();
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * True when `bytes` is an update Yjs can apply to the doc `state`; never
 * throws. An update can be valid alone and still break a doc it is merged
 * into (it names structs the doc has, with other content): merged, such a
 * doc no longer loads, for any client. So a write is checked against the
 * doc it goes to. When `state` itself does not load, only the update alone
 * can be checked.
 */
export function validateDocUpdateFor(state: DocState | undefined, bytes: Uint8Array): boolean {
  if (!validateDocUpdate(bytes)) return false;
  if (state === undefined) return true;
  const doc = new Y.Doc(SCRATCH_DOC);
  try {
    try {
      Y.applyUpdate(doc, state);
    } catch {
      return true;
    }
    Y.applyUpdate(doc, bytes);
    return true;
  } catch {
    return false;
  } finally {
    doc.destroy();
  }
}

/** [clock, length] ranges per Yjs client id, sorted and coalesced. */
export type DocRanges = Record<string, Array<[number, number]>>;

/**
 * A canonical description of a doc state for comparing replicas: which struct
 * ids it holds, which are deleted, and the visible content. Two states with
 * equal digests hold the same document even if their bytes differ (Yjs may
 * split or merge the same structs differently depending on merge order).
 */
export interface DocDigest {
  /** Struct ids present, including structs still waiting for their dependencies. */
  readonly structs: DocRanges;
  /** Struct ids deleted. */
  readonly deleted: DocRanges;
  /** Root type name -> visible content (see contentOf). */
  readonly content: Record<string, unknown>;
}

function coalesce(byClient: Map<number, Array<[number, number]>>): DocRanges {
  const clients = [...byClient.keys()].sort((a, b) => a - b);
  const out: Array<[string, Array<[number, number]>]> = [];
  for (const client of clients) {
    const ranges = (byClient.get(client) ?? []).slice().sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const [clock, len] of ranges) {
      const last = merged[merged.length - 1];
      if (last !== undefined && clock <= last[0] + last[1]) {
        last[1] = Math.max(last[1], clock + len - last[0]);
      } else if (len > 0) {
        merged.push([clock, len]);
      }
    }
    if (merged.length > 0) out.push([String(client), merged]);
  }
  return Object.fromEntries(out);
}

/** A JSON-able rendering of one value found in a doc. */
function jsonOf(value: unknown): unknown {
  if (value instanceof Y.AbstractType) return contentOf(value);
  if (value instanceof Y.Doc) return { subdoc: value.guid };
  if (value instanceof Uint8Array) return { binary: Array.from(value) };
  return value;
}

/**
 * The visible content of a type, read generically: a doc loaded from bytes
 * does not know whether a root is a Y.Text, Y.Array or Y.Map (that is only
 * decided by the first getText/getArray/getMap call), so both the map part
 * (live entries, keys sorted) and the list part (live items in order; runs
 * of text joined into one string) are read from the type's items.
 */
function contentOf(type: Y.AbstractType<unknown>): unknown {
  const map: Array<[string, unknown]> = [];
  for (const key of [...type._map.keys()].sort()) {
    const item = type._map.get(key);
    if (item === undefined || item.deleted) continue;
    const values = item.content.getContent();
    map.push([key, jsonOf(values[values.length - 1])]);
  }
  const list: unknown[] = [];
  for (let item = type._start; item !== null; item = item.right) {
    if (item.deleted || !item.countable) continue;
    for (const v of item.content.getContent()) {
      const prev = list[list.length - 1];
      if (item.content instanceof Y.ContentString && typeof prev === "string") list[list.length - 1] = prev + String(v);
      else list.push(jsonOf(v));
    }
  }
  const out: Record<string, unknown> = {};
  if (map.length > 0) out.map = Object.fromEntries(map);
  if (list.length > 0) out.list = list;
  return out;
}

/** The canonical digest of a doc state (see DocDigest). */
export function docDigest(state: DocState): DocDigest {
  const { structs, ds } = Y.decodeUpdate(state);
  const present = new Map<number, Array<[number, number]>>();
  for (const s of structs) {
    if (s instanceof Y.Skip) continue;
    const ranges = present.get(s.id.client) ?? [];
    ranges.push([s.id.clock, s.length]);
    present.set(s.id.client, ranges);
  }
  const deleted = new Map<number, Array<[number, number]>>();
  for (const [client, items] of ds.clients) deleted.set(client, items.map((d): [number, number] => [d.clock, d.len]));
  const doc = new Y.Doc(SCRATCH_DOC);
  try {
    Y.applyUpdate(doc, state);
    const roots = [...doc.share.keys()].sort();
    const content = Object.fromEntries(roots.map((name) => [name, contentOf(doc.share.get(name) as Y.AbstractType<unknown>)]));
    return { structs: coalesce(present), deleted: coalesce(deleted), content };
  } finally {
    doc.destroy();
  }
}
