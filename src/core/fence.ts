// Fencing tokens, `<region>:<epoch>`: one branded type with one format and
// one parse, and the two decisions every node makes with them. Which epoch of
// a region a node believes current (and so which batches it refuses) must be
// learned only from a leader that won that epoch: a majority of its region
// accepted it. A candidate's ping or claim moves no fence, or a node cut off
// from its own region would fence the region's real leader out of every
// other region.

import { isValidId, type RegionId } from "./ids.js";
import { mutated } from "./mutations.js";

/**
 * A fencing token: a region and one of its epochs. Branded so that only
 * fencingTokenOf (a checked epoch) and parseFencingToken (untrusted text) make
 * one; code holding a FencingToken trusts it.
 */
export type FencingToken = { readonly region: RegionId; readonly epoch: number } & { readonly __brand: "FencingToken" };

/** Epochs are stored and sent as integers of at most 15 digits. */
const EPOCH_DIGITS_MAX = 15;
const FENCE_PATTERN = new RegExp(`^([^:]+):(\\d{1,${EPOCH_DIGITS_MAX}})$`);

/** The token of `region` at `epoch`; a negative or fractional epoch is a bug. */
export function fencingTokenOf(region: RegionId, epoch: number): FencingToken {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`fence: epoch ${epoch} is not a non-negative integer`);
  return { region, epoch } as FencingToken;
}

/** `<region>:<epoch>`, the token stamped on every batch a leader sends. */
export function formatFencingToken(t: FencingToken): string {
  return `${t.region}:${t.epoch}`;
}

/** Parses untrusted text into a fencing token, or null when it is not one. */
export function parseFencingToken(text: string): FencingToken | null {
  const m = FENCE_PATTERN.exec(text);
  if (m === null) return null;
  const region = m[1] as string;
  const epoch = Number(m[2]);
  if (!isValidId(region) || !Number.isSafeInteger(epoch)) return null;
  return { region: region as RegionId, epoch } as FencingToken;
}

/** What a node does with a batch stamped `fence` from a peer of `peerRegion`. */
export type BatchVerdict =
  /** Not stamped: a follower pushing its leader what it lacks. */
  | { readonly kind: "unfenced" }
  /** Current: apply, and remember the epoch (the sender leads it, so it won it). */
  | { readonly kind: "accept"; readonly epoch: number }
  /** From a deposed leader: refuse, and tell the sender the epoch we know. */
  | { readonly kind: "stale"; readonly epoch: number; readonly knownEpoch: number }
  /** Unparseable, or naming a region the sender is not in: drop the batch. */
  | { readonly kind: "malformed" };

/** Judges a batch's fence against the epoch this node knows for the sender's region. */
export function judgeBatch(fence: string, peerRegion: string, knownEpoch: number): BatchVerdict {
  if (fence === "") return { kind: "unfenced" };
  const f = parseFencingToken(fence);
  if (f === null || f.region !== peerRegion) return { kind: "malformed" };
  if (f.epoch < knownEpoch && !mutated("no-fence-check")) return { kind: "stale", epoch: f.epoch, knownEpoch };
  return { kind: "accept", epoch: f.epoch };
}

/**
 * The epoch a ping teaches about the sender's region: only an active leader's
 * ping says anything (it holds a majority's acceptance of its epoch); a
 * candidate's or follower's epoch may be one nobody accepted. Null: learn nothing.
 */
export function epochLearnedFromPing(role: "leader" | "follower" | "candidate", epoch: number): number | null {
  return role === "leader" ? epoch : null;
}

/** The known epoch after learning `learned` (epochs only move forward). */
export function advanceKnownEpoch(known: number, learned: number | null): number {
  return learned !== null && learned > known ? learned : known;
}
