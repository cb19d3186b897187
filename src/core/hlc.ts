// Hybrid logical clock (Kulkarni et al.): physical milliseconds plus a logical
// counter. It stays close to wall time, never goes back, and orders a send
// before its receive, so last-writer-wins picks a winner that respects
// causality even when wall clocks drift a little. Time is an input: callers
// pass `nowMs`; nothing here reads a clock.

import { mutated } from "./mutations.js";

/** A timestamp: wall milliseconds and a logical counter for ties. */
export interface Hlc {
  readonly wallMs: number;
  readonly logical: number;
}

/** The logical counter is 16 bits in the binary encoding. */
export const HLC_LOGICAL_MAX = 0xffff;
/** 48 bits of milliseconds: good until the year 10889. */
export const HLC_WALL_MAX = 2 ** 48 - 1;

export const HLC_ZERO: Hlc = { wallMs: 0, logical: 0 };

/** A clock whose peer is too far away in wall time (see maxClockSkewMs). */
export interface ClockSkewError {
  readonly type: "clock_skew";
  readonly remote: Hlc;
  readonly nowMs: number;
  readonly skewMs: number;
  readonly maxSkewMs: number;
}

function next(wallMs: number, logical: number): Hlc {
  // Logical overflow borrows one millisecond rather than wrapping, so the
  // clock stays monotonic; it only happens past 65535 events in one ms.
  if (logical > HLC_LOGICAL_MAX) return { wallMs: wallMs + 1, logical: 0 };
  return { wallMs, logical };
}

/** The timestamp for a local event (a write, a send) at wall time `nowMs`. */
export function tick(clock: Hlc, nowMs: number): Hlc {
  if (mutated("lww-by-wall-clock")) return { wallMs: Math.floor(nowMs), logical: 0 };
  const wall = Math.max(clock.wallMs, Math.floor(nowMs));
  return wall === clock.wallMs ? next(wall, clock.logical + 1) : { wallMs: wall, logical: 0 };
}

/**
 * Merges a remote timestamp on receive. Refuses (returns an error value) when
 * the remote is more than `maxSkewMs` ahead of our wall clock, so one node's
 * wrong clock cannot drag every other clock into the future.
 */
export function receive(clock: Hlc, remote: Hlc, nowMs: number, maxSkewMs = Infinity): Hlc | ClockSkewError {
  const now = Math.floor(nowMs);
  const skewMs = remote.wallMs - now;
  if (skewMs > maxSkewMs) return { type: "clock_skew", remote, nowMs: now, skewMs, maxSkewMs };
  const wall = Math.max(clock.wallMs, remote.wallMs, now);
  if (wall === clock.wallMs && wall === remote.wallMs) return next(wall, Math.max(clock.logical, remote.logical) + 1);
  if (wall === clock.wallMs) return next(wall, clock.logical + 1);
  if (wall === remote.wallMs) return next(wall, remote.logical + 1);
  return { wallMs: wall, logical: 0 };
}

/** Merges a remote timestamp that was already accepted (no skew check). */
export function observe(clock: Hlc, remote: Hlc, nowMs: number): Hlc {
  return receive(clock, remote, nowMs) as Hlc;
}

/** True when `x` is a ClockSkewError rather than a timestamp. */
export function isClockSkew(x: Hlc | ClockSkewError): x is ClockSkewError {
  return (x as ClockSkewError).type === "clock_skew";
}

/** Total order on timestamps: negative, zero or positive. */
export function compareHlc(a: Hlc, b: Hlc): number {
  return a.wallMs !== b.wallMs ? a.wallMs - b.wallMs : a.logical - b.logical;
}

/** How far `remoteWallMs` is from `nowMs`, in ms, either direction. */
export function skewMs(remoteWallMs: number, nowMs: number): number {
  return Math.abs(remoteWallMs - nowMs);
}

/** True when a peer's wall clock is further than `maxSkewMs` from ours. */
export function isSkewed(remoteWallMs: number, nowMs: number, maxSkewMs: number): boolean {
  return skewMs(remoteWallMs, nowMs) > maxSkewMs;
}

const HLC_STRING = /^(\d{15})-(\d{5})$/;

/** Fixed-width decimal "000001763812345678-00003": sorts like compareHlc. */
export function encodeHlc(h: Hlc): string {
  return `${String(h.wallMs).padStart(15, "0")}-${String(h.logical).padStart(5, "0")}`;
}

/** Parses encodeHlc's output; null for anything else. */
export function decodeHlc(s: string): Hlc | null {
  const m = HLC_STRING.exec(s);
  if (!m) return null;
  const wallMs = Number(m[1]);
  const logical = Number(m[2]);
  if (wallMs > HLC_WALL_MAX || logical > HLC_LOGICAL_MAX) return null;
  return { wallMs, logical };
}

/** 8 bytes, big-endian: 48-bit wall ms then 16-bit logical (sorts bytewise). */
export function hlcToBytes(h: Hlc, out = new Uint8Array(8), offset = 0): Uint8Array {
  const hi = Math.floor(h.wallMs / 2 ** 16);
  const lo = h.wallMs % 2 ** 16;
  const view = new DataView(out.buffer, out.byteOffset + offset, 8);
  view.setUint32(0, hi);
  view.setUint16(4, lo);
  view.setUint16(6, h.logical);
  return out;
}

/** Reads hlcToBytes's layout at `offset`. */
export function hlcFromBytes(bytes: Uint8Array, offset = 0): Hlc {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, 8);
  return { wallMs: view.getUint32(0) * 2 ** 16 + view.getUint16(4), logical: view.getUint16(6) };
}

/** True for a structurally valid timestamp (used when parsing untrusted input). */
export function isValidHlc(h: Hlc): boolean {
  return Number.isInteger(h.wallMs) && h.wallMs >= 0 && h.wallMs <= HLC_WALL_MAX
    && Number.isInteger(h.logical) && h.logical >= 0 && h.logical <= HLC_LOGICAL_MAX;
}
