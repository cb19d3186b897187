// What `geokv up` derives from rounds of /status answers (src/cli/up-view.ts)
// and how it shows the nodes' log lines (src/cli/up-logs.ts), as data: the
// region leaders, cut region pairs, the event lines between two rounds.

import { describe, expect, it } from "vitest";
import { parseLogLine, prettyLine, roleRecordOf } from "../../src/cli/up-logs.js";
import { clusterFromRegions, formatConfigError, isConfigError, parseRegion, type ClusterConfig } from "../../src/node/config.js";
import { describeCuts, leadersLine, linkEvent, parseStatusSample, roleEvents, viewOf, type RoleRecord, type StatusSample } from "../../src/cli/up-view.js";

/** A cluster config parsed as region files are, for regions of `sizes` nodes ("<region>-<i>"). */
function clusterOf(sizes: Record<string, number>): ClusterConfig {
  let port = 7000;
  const regions = Object.entries(sizes).map(([region, n]) => {
    const nodes = Array.from({ length: n }, (_, i) => ({ id: `${region}-${i + 1}`, url: `http://127.0.0.1:${++port}`, priority: n - i }));
    const r = parseRegion(`${region}.json`, JSON.stringify({ region, failover: "auto", nodes }));
    if (isConfigError(r)) throw new Error(formatConfigError(r));
    return r;
  });
  const c = clusterFromRegions(regions);
  if (isConfigError(c)) throw new Error(formatConfigError(c));
  return c;
}
const cluster = clusterOf({ east: 2, south: 1, west: 1 });

type Role = StatusSample["role"];
/** A node's /status: its role and epoch, and the regions it has a live link to. */
function s(node: string, role: Role, epoch: number, reaches: readonly string[]): StatusSample {
  const region = node.replace(/-\d+$/, "");
  const peers = [...cluster.nodes.values()].filter((n) => n.id !== node).map((n) => ({ region: n.region, state: reaches.includes(n.region) ? ("up" as const) : ("down" as const) }));
  return { node, region, role, epoch, peers };
}
const ALL = ["east", "south", "west"];
function round(overrides: Record<string, StatusSample | null> = {}) {
  const base: Record<string, StatusSample | null> = {
    "east-1": s("east-1", "leader", 1, ALL),
    "east-2": s("east-2", "follower", 1, ALL),
    "south-1": s("south-1", "leader", 1, ALL),
    "west-1": s("west-1", "leader", 1, ALL),
  };
  return viewOf(cluster, new Map(Object.entries({ ...base, ...overrides })));
}

describe("up-view", () => {
  it("names each region's leader and the time to elect them all", () => {
    const v = round();
    expect(v.cuts.size).toBe(0);
    expect(leadersLine(cluster, v, 1432)).toBe("3 leaders in 1.4 s: east east-1 (epoch 1), south south-1 (epoch 1), west west-1 (epoch 1)");
  });

  it("a stepdown and the next leader are two lines, with the logged reasons", () => {
    const before = round();
    const after = round({ "east-1": s("east-1", "follower", 2, ALL), "east-2": s("east-2", "leader", 2, ALL) });
    const roles = new Map<string, RoleRecord>([
      ["east-1", { role: "follower", epoch: 2, reason: "stepped down on request" }],
      ["east-2", { role: "leader", epoch: 2, reason: "won the election" }],
    ]);
    expect(roleEvents(cluster, before, after, roles)).toEqual([
      "east-1 stepped down as leader of east: stepped down on request",
      "east-2 is now leader of east (epoch 2): won the election",
    ]);
    // A reason logged for another epoch is not this change's reason.
    expect(roleEvents(cluster, before, after, new Map([["east-2", { role: "leader", epoch: 1, reason: "old" }]]))).toContain("east-2 is now leader of east (epoch 2)");
  });

  it("a leader that stops answering leaves its region without a leader", () => {
    expect(roleEvents(cluster, round(), round({ "east-1": null, "east-2": s("east-2", "candidate", 1, ALL) }), new Map())).toEqual([
      "east has no leader: east-1 stopped answering",
    ]);
  });

  it("of two nodes claiming leadership, the higher epoch leads", () => {
    expect(round({ "east-2": s("east-2", "leader", 2, ALL) }).leaders.get("east")).toEqual({ node: "east-2", epoch: 2 });
  });

  it("a region cut off from the others is one phrase; the heal is one line", () => {
    const cutWest = round({
      "east-1": s("east-1", "leader", 1, ["east", "south"]),
      "east-2": s("east-2", "follower", 1, ["east", "south"]),
      "south-1": s("south-1", "leader", 1, ["east"]),
      "west-1": s("west-1", "leader", 1, []),
    });
    expect(linkEvent(cluster, round().cuts, cutWest.cuts)).toBe("west cut off from east, south");
    expect(linkEvent(cluster, cutWest.cuts, cutWest.cuts)).toBeNull();
    expect(linkEvent(cluster, cutWest.cuts, round().cuts)).toBe("links healed");
  });

  it("one lost pair, and a one-way block, count as cut", () => {
    const v = round({ "south-1": s("south-1", "leader", 1, ["west"]) });
    expect(describeCuts(cluster, v.cuts)).toBe("east and south lost their links");
  });

  it("a dead node's region is not 'cut off': it just does not answer", () => {
    expect(round({ "west-1": null, "east-1": s("east-1", "leader", 1, ["east", "south"]), "east-2": s("east-2", "follower", 1, ["east", "south"]) }).cuts.size).toBe(0);
  });

  it("reads only well-formed /status bodies", () => {
    expect(parseStatusSample({ error: "nope" })).toBeNull();
    expect(parseStatusSample({ node: "a-1", region: "a", role: "leader", epoch: 3, peers: [], vv: {} })?.epoch).toBe(3);
  });
});

describe("up-logs", () => {
  it("pretty-prints a pino record on one line, without repeating what the message says", () => {
    const time = new Date(2026, 0, 2, 12, 1, 3, 45).getTime();
    const line = parseLogLine("east-1", JSON.stringify({ level: 30, time, pid: 1, node: "east-1", region: "east", role: "leader", leader: "east-1", epoch: 2, reason: "won", msg: "role leader (leader east-1, epoch 2): won", url: "http://x" }));
    expect(prettyLine(line, 7)).toBe("12:01:03.045 east-1   INFO  role leader (leader east-1, epoch 2): won epoch=2 url=http://x");
    expect(roleRecordOf(line)).toEqual({ role: "leader", epoch: 2, reason: "won" });
  });

  it("shows a line that is not JSON (a crash on stderr) as it is", () => {
    const line = parseLogLine("east-1", "Error: boom");
    expect(roleRecordOf(line)).toBeNull();
    expect(prettyLine(line, 6)).toBe("             east-1  Error: boom");
  });
});
