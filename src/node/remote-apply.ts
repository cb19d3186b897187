// Remote apply: ops that came from peers (live stream, catch-up, forwarded
// transitively) go through the same core apply path as local writes. What is
// new, what is a duplicate and which first answers to record are decided by
// src/core/apply; this only waits for the outcome to be durable before
// replication acknowledges it.

import type { Op } from "../core/op.js";
import type { ApplyDriver } from "./apply-driver.js";

/** Applies peers' ops; resolves with the ops that were new once they are durable. */
export async function applyRemoteOps(driver: ApplyDriver, ops: readonly Op[]): Promise<Op[]> {
  const run = driver.apply(ops);
  await run.committed;
  return [...run.outcome.ops];
}
