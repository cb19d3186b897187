// After a snapshot install the replicator must learn the new op-log floor
// before the new vector. The other way round, the step in between planned
// ops below the floor for every peer behind it: ops the install had just
// removed from the log ("planned ops are missing from the tail and the op
// log", found by the whole-cluster simulator at seed 93 of its snapshot
// schedules), instead of a snapshot.
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { MemberConfig } from "../../src/core/cluster-view.js";
import { asNodeId, asRegionId } from "../../src/core/ids.js";
import type { Frame } from "../../src/net/frames.js";
import type { Hub } from "../../src/net/hub.js";
import { LocalStore } from "../../src/node/local-store.js";
import { createMetrics, type NodeMetrics } from "../../src/node/metrics.js";
import { Replicator } from "../../src/node/replicator.js";
import { createGroupCommitter } from "../../src/storage/group-commit.js";
import { createMemoryStorage } from "../../src/storage/memory.js";

const US = asRegionId("us");
const SELF = asNodeId("us-1");
const FOLLOWER = asNodeId("us-2");
const MEMBERS: MemberConfig[] = [
  { node: SELF, region: US, priority: 2 },
  { node: FOLLOWER, region: US, priority: 1 },
];

let metrics: NodeMetrics | undefined;
afterEach(() => metrics?.close());

describe("replicator: after a snapshot install", () => {
  it("sends a follower below the new floor a snapshot, and plans no op the install removed from the log", () => {
    const storage = createMemoryStorage();
    const sent: Frame[] = [];
    const hub = { send: (_to: string, frame: Frame) => (sent.push(frame), true), queuedBytes: () => 0 } as unknown as Hub;
    const errors: string[] = [];
    const logger = pino({ level: "warn" }, new Writable({ write: (chunk: Buffer, _e, done) => (errors.push(chunk.toString()), done()) }));
    const store = new LocalStore({ nodeId: SELF, storage, committer: createGroupCommitter(storage), now: Date.now });
    metrics = createMetrics({ storageBytes: () => 0 }, false);
    const snapshots: string[] = [];
    const replicator = new Replicator({
      self: MEMBERS[0] as MemberConfig,
      members: MEMBERS,
      hub,
      store,
      storage,
      heartbeatMs: 100,
      electionTimeoutMs: 500,
      writeWaitMs: 3000,
      maxClockSkewMs: 500,
      memberForgetMs: 3_600_000,
      sendSnapshot: (peer, id) => snapshots.push(`${peer}#${id}`),
      now: Date.now,
      logger,
      metrics,
    });
    // us-1 leads (best-ranked, no election here); its follower holds nothing.
    replicator.onLinkUp(FOLLOWER, { epoch: 0, vv: {} } as never);
    expect(sent.filter((f) => f.t === "ops")).toEqual([]);
    // What an install leaves in the store: the vector and the floor raised together, no op of eu-1 logged.
    storage.commit({ appliedVv: { "eu-1": 10 } });
    storage.compactOps({ "eu-1": 10 });
    replicator.installed();
    expect(errors).toEqual([]);
    expect(sent.filter((f) => f.t === "ops")).toEqual([]);
    expect(snapshots).toEqual([`${FOLLOWER}#1`]);
  });
});
