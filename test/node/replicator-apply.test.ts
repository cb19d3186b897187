// The replicator driver applies peers' ops in bounded slices, one per
// event-loop turn, in arrival order. A heal brings full windows from several
// peers at once; applied as they were read, one poll phase took them all and
// the node's heartbeats waited behind them (followers called elections during
// every heal of the replication benchmark).
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { MemberConfig } from "../../src/core/cluster-view.js";
import { asNodeId, asRegionId } from "../../src/core/ids.js";
import type { Op } from "../../src/core/op.js";
import type { Frame } from "../../src/net/frames.js";
import type { Hub } from "../../src/net/hub.js";
import { LocalStore } from "../../src/node/local-store.js";
import { createMetrics, type NodeMetrics } from "../../src/node/metrics.js";
import { APPLY_OPS_PER_TURN, Replicator } from "../../src/node/replicator.js";
import { createGroupCommitter } from "../../src/storage/group-commit.js";
import { createMemoryStorage } from "../../src/storage/memory.js";

const US = asRegionId("us");
const LEADER = asNodeId("us-1");
const SELF = asNodeId("us-2");
const MEMBERS: MemberConfig[] = [
  { node: LEADER, region: US, priority: 2 },
  { node: SELF, region: US, priority: 1 },
];

let metrics: NodeMetrics | undefined;
afterEach(() => metrics?.close());

/** `n` kv ops written by a store of `origin`, read back from its op log. */
async function opsOf(origin: typeof LEADER, n: number): Promise<Op[]> {
  const storage = createMemoryStorage();
  const store = new LocalStore({ nodeId: origin, storage, committer: createGroupCommitter(storage), now: Date.now });
  for (let i = 0; i < n; i += 64) {
    await Promise.all(Array.from({ length: Math.min(64, n - i) }, (_, k) => store.kvPut(`k-${i + k}`, JSON.stringify({ i: i + k }), { ack: "local", requestHash: "" })));
  }
  const out: Op[] = [];
  for (let from = 1; from <= n; from += 1000) out.push(...storage.getOps(origin, from, n, 1000));
  return out;
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("replicator: applying peers' ops", () => {
  it("applies at most APPLY_OPS_PER_TURN ops per turn, in arrival order, and acks each frame once it is durable", async () => {
    const ops = await opsOf(LEADER, 4 * 512);
    const storage = createMemoryStorage();
    const sent: { to: string; frame: Frame }[] = [];
    const hub = {
      send: (to: string, frame: Frame) => (sent.push({ to, frame }), true),
      queuedBytes: () => 0,
    } as unknown as Hub;
    // The store reports commits to the replicator, which is built with the store.
    const late: { replicator?: Replicator } = {};
    const store = new LocalStore({ nodeId: SELF, storage, committer: createGroupCommitter(storage), now: Date.now, onCommitted: (o) => late.replicator?.onCommitted(o) });
    metrics = createMetrics({ storageBytes: () => 0 }, false);
    const replicator = new Replicator({
      self: MEMBERS[1] as MemberConfig,
      members: MEMBERS,
      hub,
      store,
      storage,
      heartbeatMs: 100,
      electionTimeoutMs: 500,
      writeWaitMs: 3000,
      maxClockSkewMs: 500,
      memberForgetMs: 3_600_000,
      sendSnapshot: () => {
        throw new Error("no op is compacted here: a snapshot was not expected");
      },
      now: Date.now,
      logger: pino({ level: "silent" }),
      metrics,
    });
    late.replicator = replicator;
    replicator.onLinkUp(LEADER, { epoch: 0, vv: {} } as never);
    // Four full frames arrive in one read, as after a heal.
    for (let b = 0; b < 4; b++) replicator.onFrame(LEADER, { t: "ops", batch: b + 1, fence: "", ops: ops.slice(b * 512, (b + 1) * 512) });
    expect(store.versionVector()[LEADER] ?? 0).toBe(0);

    const seen: number[] = [];
    for (let i = 0; i < 100 && (store.versionVector()[LEADER] ?? 0) < ops.length; i++) {
      await turn();
      seen.push(store.versionVector()[LEADER] ?? 0);
    }
    expect(seen.at(-1)).toBe(ops.length);
    // Never more than one slice between two turns.
    for (let i = 1; i < seen.length; i++) expect((seen[i] as number) - (seen[i - 1] as number)).toBeLessThanOrEqual(APPLY_OPS_PER_TURN);
    expect(seen.length).toBeGreaterThanOrEqual(ops.length / APPLY_OPS_PER_TURN);

    for (let i = 0; i < 20; i++) await turn();
    const acks = sent.filter((s) => s.to === LEADER && s.frame.t === "ack").map((s) => (s.frame as Extract<Frame, { t: "ack" }>).batch);
    // Batched acks: the last one names the last frame, and none goes back.
    expect(acks.at(-1)).toBe(4);
    expect([...acks].sort((a, b) => a - b)).toEqual(acks);
    expect(storage.getOps(LEADER, 1, ops.length, 10_000)).toHaveLength(ops.length);
    replicator.stop();
  });
});
