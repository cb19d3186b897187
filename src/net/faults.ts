// Fault injection for demos and partition tests: this node's view of which
// peers (named by node id or by region) it must not talk to, in which
// direction. It only answers questions; the hub acts on the answers.

import type { NodeId, RegionId } from "../core/ids.js";

export type FaultDirection = "both" | "in" | "out";

/** The blocked targets (as given: node ids or region names), sorted. */
export interface FaultView {
  /** Every target blocked in any direction. */
  readonly blocked: string[];
  /** Targets blocked both ways: no link at all. */
  readonly both: string[];
  /** Targets whose frames to us are dropped (link kept). */
  readonly in: string[];
  /** Targets we do not send to (link kept). */
  readonly out: string[];
}

/** The set of blocked targets per direction. */
export class Faults {
  private readonly sets: Record<FaultDirection, Set<string>> = { both: new Set(), in: new Set(), out: new Set() };

  constructor(private readonly regionOf: (node: NodeId) => RegionId | undefined) {}

  /** Adds targets (additive); empty names are ignored. */
  add(targets: readonly string[], direction: FaultDirection): void {
    for (const t of targets) if (t !== "") this.sets[direction].add(t);
  }

  /** Removes every target in every direction. */
  clear(): void {
    for (const s of Object.values(this.sets)) s.clear();
  }

  private hits(set: Set<string>, node: NodeId): boolean {
    if (set.has(node)) return true;
    const region = this.regionOf(node);
    return region !== undefined && set.has(region);
  }

  /** True when the link with `node` must not exist. */
  blocksLink(node: NodeId): boolean {
    return this.hits(this.sets.both, node);
  }

  /** True when frames from `node` must be dropped. */
  blocksIn(node: NodeId): boolean {
    return this.hits(this.sets.both, node) || this.hits(this.sets.in, node);
  }

  /** True when frames to `node` must not be sent. */
  blocksOut(node: NodeId): boolean {
    return this.hits(this.sets.both, node) || this.hits(this.sets.out, node);
  }

  /** The targets as lists, for /admin/faults and /status. */
  view(): FaultView {
    const sorted = (s: Iterable<string>): string[] => [...new Set(s)].sort();
    return {
      blocked: sorted([...this.sets.both, ...this.sets.in, ...this.sets.out]),
      both: sorted(this.sets.both),
      in: sorted(this.sets.in),
      out: sorted(this.sets.out),
    };
  }
}
