// Writes per second per region over the last minute, as this node sees them:
// the dashboard's write-rate chart. Fed with every op this node commits (its
// own region's writes and the ops replicated from others), bucketed by the
// op's own timestamp, so writes that arrive late (after a heal) land in the
// second they were written, not in the second they arrived. Fixed memory:
// one slot per second of the window (and the second still filling) per region.

import type { NodeId, RegionId } from "../core/ids.js";
import type { Op } from "../core/op.js";

/** Seconds of history the chart shows. */
export const WRITE_RATE_WINDOW_S = 60;
/** The window plus the second still filling. */
const SLOTS = WRITE_RATE_WINDOW_S + 1;

/** One series per region: `counts[i]` is the writes of second `fromS + i`. */
export interface WriteRateSeries {
  /** Unix seconds of the first bucket. */
  readonly fromS: number;
  readonly regions: Readonly<Record<string, readonly number[]>>;
}

interface RegionSlots {
  /** The second each slot currently counts (a slot is reused every window). */
  readonly second: Float64Array;
  readonly count: Float64Array;
}

/** Counts committed ops per region and second. */
export class WriteRate {
  private readonly slots = new Map<RegionId, RegionSlots>();

  constructor(
    regions: readonly RegionId[],
    private readonly regionOf: (node: NodeId) => RegionId | undefined,
  ) {
    for (const r of regions) this.slots.set(r, { second: new Float64Array(SLOTS).fill(-1), count: new Float64Array(SLOTS) });
  }

  /** Counts `ops` (a commit batch); ops older than the window are not counted, ops from the future count now. */
  add(ops: readonly Op[], nowMs: number): void {
    const nowS = Math.floor(nowMs / 1000);
    for (const op of ops) {
      const region = this.regionOf(op.origin);
      const s = region === undefined ? undefined : this.slots.get(region);
      if (s === undefined) continue;
      const second = Math.min(nowS, Math.floor(op.hlc.wallMs / 1000));
      if (second < nowS - WRITE_RATE_WINDOW_S) continue;
      const i = second % SLOTS;
      if (s.second[i] !== second) {
        s.second[i] = second;
        s.count[i] = 0;
      }
      s.count[i] = (s.count[i] ?? 0) + 1;
    }
  }

  /** The complete seconds of the window, oldest first (the current second is still filling, so it is left out). */
  series(nowMs: number): WriteRateSeries {
    const lastS = Math.floor(nowMs / 1000) - 1;
    const fromS = lastS - WRITE_RATE_WINDOW_S + 1;
    const regions: Record<string, number[]> = {};
    for (const [region, s] of this.slots) {
      const counts: number[] = [];
      for (let second = fromS; second <= lastS; second++) {
        const i = second % SLOTS;
        counts.push(s.second[i] === second ? (s.count[i] as number) : 0);
      }
      regions[region] = counts;
    }
    return { fromS, regions };
  }
}
