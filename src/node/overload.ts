// Carries out admission (src/core/admission.ts): each part of the node that
// holds a bounded queue or wait asks here before it takes one more, with what
// it holds now, and gets null or the 503 overloaded to answer. Counts every
// shed in geokv_shed_total{bound}, and logs a summary at most every
// SHED_LOG_EVERY_MS: a node shedding ten thousand requests a second must not
// also write ten thousand log lines a second.

import type { Logger } from "pino";
import { admit, shedMessage, type BoundName, type Bounds } from "../core/admission.js";
import { nodeError, type NodeError } from "./errors.js";
import type { NodeMetrics } from "./metrics.js";

/** At most one "shedding load" log line per this many ms. */
export const SHED_LOG_EVERY_MS = 5000;

export interface LoadShedderOptions {
  readonly bounds: Bounds;
  readonly metrics: Pick<NodeMetrics, "shed">;
  readonly logger: Logger;
  /** Monotonic ms (performance.now). */
  readonly nowMs?: () => number;
}

/** The node's admission: asked before each bounded queue or wait grows. */
export class LoadShedder {
  private readonly nowMs: () => number;
  /** Sheds since the last log line, by bound. */
  private readonly unlogged = new Map<BoundName, number>();
  private loggedAtMs = Number.NEGATIVE_INFINITY;
  private total = 0;

  constructor(private readonly o: LoadShedderOptions) {
    this.nowMs = o.nowMs ?? (() => performance.now());
  }

  /** Null when `adding` more fits `bound`, which holds `held` now; else the overloaded error to answer (counted). */
  check(bound: BoundName, held: number, adding = 1): NodeError | null {
    const shed = admit(bound, held, this.o.bounds[bound], adding);
    if (shed === null) return null;
    this.total++;
    this.o.metrics.shed.inc({ bound });
    this.unlogged.set(bound, (this.unlogged.get(bound) ?? 0) + 1);
    const now = this.nowMs();
    if (now - this.loggedAtMs >= SHED_LOG_EVERY_MS) {
      this.loggedAtMs = now;
      this.o.logger.warn({ shed: Object.fromEntries(this.unlogged), bounds: this.o.bounds }, `shedding load: ${shedMessage(shed)}`);
      this.unlogged.clear();
    }
    return nodeError("overloaded", shedMessage(shed), shed.retryAfterS);
  }

  /** Sheds since the node started, over every bound. */
  shedTotal(): number {
    return this.total;
  }

  /** The bounds this node runs with. */
  bounds(): Bounds {
    return this.o.bounds;
  }
}
