// The replication step machine, scripted (given this input, it sends these
// frames) and under random schedules: any interleaving, loss, duplication and
// reordering of frames ends, once the network is quiet, with every node
// holding every op exactly once.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MemberConfig } from "../../src/core/cluster-view.js";
import { asNodeId, asRegionId, type NodeId } from "../../src/core/ids.js";
import { REFUSAL_BACKOFF_MIN_MS } from "../../src/core/replication/decisions.js";
import { clockOffsetMs, initReplication, isClockSkewed, knownEpochOf, PONG_INTERVAL_MS, refusesWritesForClock, step } from "../../src/core/replication/machine.js";
import type { Leadership, OutFrame, ReplConfig, ReplInput, ReplOutput, ReplState } from "../../src/core/replication/types.js";
import { vvGet, type VersionVector } from "../../src/core/version-vector.js";
import { LINK_SILENCE_TIMEOUTS, linkPresumedDead } from "../../src/core/failure-detector.js";

const US = asRegionId("us");
const EU = asRegionId("eu");
const AP = asRegionId("ap");
const id = (s: string) => asNodeId(s);
const MEMBERS: MemberConfig[] = [
  { node: id("us-1"), region: US, priority: 2 },
  { node: id("us-2"), region: US, priority: 1 },
  { node: id("us-3"), region: US, priority: 0 },
  { node: id("eu-1"), region: EU, priority: 1 },
  { node: id("ap-1"), region: AP, priority: 1 },
];
const HB = 100;
const ET = 500;

function config(self: string, over: Partial<ReplConfig> = {}): ReplConfig {
  return {
    self: MEMBERS.find((m) => m.node === self) as MemberConfig,
    members: MEMBERS,
    heartbeatMs: HB,
    electionTimeoutMs: ET,
    maxClockSkewMs: 500,
    ackWaitMs: 3000,
    sendWindowOps: 1024,
    frameOpsMax: 512,
    stepOpsMax: 2048,
    memberForgetMs: 3_600_000,
    ...over,
  };
}

const LEADER: Leadership = { active: true, role: "leader", leader: id("us-1"), epoch: 3 };

/** One machine fed by hand; `now` is the monotonic clock, and the wall clock too unless `wallStepMs` moved it. */
class Node {
  s: ReplState;
  /** How far the wall clock was stepped away from the monotonic one. */
  wallStepMs = 0;
  constructor(self: string, over: Partial<ReplConfig> = {}, vv: VersionVector = {}) {
    this.s = initReplication(config(self, over), vv, 0, 0);
  }
  feed(now: number, input: ReplInput): ReplOutput {
    const out = step(this.s, input, now, now + this.wallStepMs);
    this.s = out.state;
    return out;
  }
}

const describeSend = (out: ReplOutput): string[] =>
  out.send.map(({ to, frame: f }) => (f.t === "ops" ? `${to} ops#${f.batch} ${f.fence || "-"} ${f.range.origin}:${f.range.fromSeq}-${f.range.toSeq}` : `${to} ${f.t}`));

describe("replication machine, scripted", () => {
  it("a leader streams to its followers and to the other regions' leaders, stamped with its fence, within the window", () => {
    const n = new Node("us-1", { sendWindowOps: 600 });
    n.feed(1, { type: "leadership", leadership: LEADER });
    for (const p of ["us-2", "us-3", "eu-1"]) n.feed(2, { type: "link_up", peer: id(p), vv: {}, epoch: 0 });
    // eu-1 leads eu (its ping says so): only then is it a push target.
    n.feed(3, { type: "frame", peer: id("eu-1"), frame: { t: "ping", wallMs: 3, role: "leader", leader: "eu-1", epoch: 1, vv: {} } });
    const out = n.feed(4, { type: "committed", vv: { "us-1": 700 } });
    expect(describeSend(out)).toEqual([
      "eu-1 ops#1 us:3 us-1:1-512",
      "eu-1 ops#2 us:3 us-1:513-600",
      "us-2 ops#1 us:3 us-1:1-512",
      "us-2 ops#2 us:3 us-1:513-600",
      "us-3 ops#1 us:3 us-1:1-512",
      "us-3 ops#2 us:3 us-1:513-600",
    ]);
    // The window is full until an ack; an ack of the first batch opens 512 more.
    expect(n.feed(5, { type: "committed", vv: { "us-1": 800 } }).send).toEqual([]);
    expect(describeSend(n.feed(6, { type: "frame", peer: id("us-2"), frame: { t: "ack", batch: 1, vv: { "us-1": 512 } } }))).toEqual(["us-2 ops#3 us:3 us-1:601-800"]);
  });

  it("takes a current batch (and learns its epoch), refuses a stale one with the epoch it knows, drops a malformed one", () => {
    const n = new Node("us-1");
    n.feed(1, { type: "link_up", peer: id("eu-1"), vv: {}, epoch: 0 });
    const ok = n.feed(2, { type: "frame", peer: id("eu-1"), frame: { t: "ops", batch: 1, fence: "eu:4", highest: { "eu-1": 3 } } });
    expect(ok.batch).toBe("apply");
    expect(knownEpochOf(n.s, "eu")).toBe(4);
    const stale = n.feed(3, { type: "frame", peer: id("eu-1"), frame: { t: "ops", batch: 2, fence: "eu:3", highest: { "eu-1": 4 } } });
    expect(stale.batch).toBe("stale");
    expect(stale.send).toEqual([{ to: "eu-1", frame: { t: "refuse", batch: 2, knownEpoch: 4, vv: {} } }]);
    expect(stale.events.map((e) => e.msg)).toEqual(["refused a batch under a stale fencing token"]);
    // The next refusal within the log interval is counted, not logged.
    expect(n.feed(4, { type: "frame", peer: id("eu-1"), frame: { t: "ops", batch: 3, fence: "eu:3", highest: {} } }).events).toEqual([]);
    expect(n.feed(5, { type: "frame", peer: id("eu-1"), frame: { t: "ops", batch: 4, fence: "us:9", highest: {} } }).batch).toBe("malformed");
  });

  it("learns another region's epoch only from an active leader's ping", () => {
    const n = new Node("us-1");
    n.feed(1, { type: "link_up", peer: id("eu-1"), vv: {}, epoch: 0 });
    for (let e = 2; e < 9; e++) n.feed(e, { type: "frame", peer: id("eu-1"), frame: { t: "ping", wallMs: e, role: "candidate", leader: "", epoch: e, vv: {} } });
    expect(knownEpochOf(n.s, "eu")).toBe(0);
    n.feed(10, { type: "frame", peer: id("eu-1"), frame: { t: "ping", wallMs: 10, role: "leader", leader: "eu-1", epoch: 2, vv: {} } });
    expect(knownEpochOf(n.s, "eu")).toBe(2);
  });

  it("a refused sender resyncs and holds off for the backoff, then tries again", () => {
    const n = new Node("us-1");
    n.feed(1, { type: "leadership", leadership: LEADER });
    n.feed(2, { type: "link_up", peer: id("us-2"), vv: {}, epoch: 0 });
    n.feed(3, { type: "committed", vv: { "us-1": 10 } });
    const refused = n.feed(4, { type: "frame", peer: id("us-2"), frame: { t: "refuse", batch: 1, knownEpoch: 5, vv: { "us-1": 2 } } });
    expect(refused.send).toEqual([]);
    expect(refused.events[0]?.msg).toBe("peer refused our batches under a stale fencing token; backing off");
    expect(n.feed(5, { type: "committed", vv: { "us-1": 11 } }).send).toEqual([]);
    // Ticks every heartbeat (a longer gap would be this node's own stall): nothing until the backoff ran out.
    const ops = (now: number) => describeSend(n.feed(now, { type: "tick" })).filter((x) => x.includes("ops"));
    for (let t = 100; t < 4 + REFUSAL_BACKOFF_MIN_MS; t += 100) expect(ops(t)).toEqual([]);
    expect(ops(4 + REFUSAL_BACKOFF_MIN_MS)).toEqual(["us-2 ops#2 us:3 us-1:3-11"]);
  });

  it("acks are batched: one per peer per flush, for the highest batch made durable", () => {
    const n = new Node("us-2");
    n.feed(1, { type: "link_up", peer: id("us-1"), vv: {}, epoch: 0 });
    n.feed(2, { type: "committed", vv: { "us-1": 3 } });
    n.feed(3, { type: "applied", peer: id("us-1"), batch: 1 });
    n.feed(4, { type: "applied", peer: id("us-1"), batch: 2 });
    const flush = n.feed(5, { type: "flush" });
    expect(flush.send).toEqual([{ to: "us-1", frame: { t: "ack", batch: 2, vv: { "us-1": 3 } } }]);
    expect(n.feed(6, { type: "flush" }).send).toEqual([]);
  });

  it("region acks resolve when a majority holds the op, and fail after ackWaitMs", () => {
    const n = new Node("us-1");
    n.feed(1, { type: "leadership", leadership: LEADER });
    n.feed(2, { type: "link_up", peer: id("us-2"), vv: {}, epoch: 0 });
    n.feed(3, { type: "committed", vv: { "us-1": 1 } });
    expect(n.feed(4, { type: "await", id: 7, origin: id("us-1"), seq: 1, level: "region" }).resolved).toEqual([]);
    expect(n.feed(5, { type: "frame", peer: id("us-2"), frame: { t: "ack", batch: 1, vv: { "us-1": 1 } } }).resolved).toEqual([{ id: 7, ok: true }]);
    n.feed(6, { type: "await", id: 8, origin: id("us-1"), seq: 2, level: "region" });
    expect(n.feed(3005, { type: "tick" }).resolved).toEqual([]);
    expect(n.feed(3006, { type: "tick" }).resolved).toEqual([{ id: 8, ok: false, reason: "a majority of region us did not confirm the write within 3000 ms" }]);
  });

  it("does not forward a third region's ops to a leader that gets them directly; does once that leader's progress stalls", () => {
    const n = new Node("us-1");
    n.feed(1, { type: "leadership", leadership: LEADER });
    n.feed(2, { type: "link_up", peer: id("eu-1"), vv: {}, epoch: 0 });
    n.feed(3, { type: "frame", peer: id("eu-1"), frame: { t: "ping", wallMs: 3, role: "leader", leader: "eu-1", epoch: 1, vv: {} } });
    // ap-1's ops reached us; eu-1 reports none of them.
    expect(describeSend(n.feed(4, { type: "committed", vv: { "ap-1": 5, "us-1": 1 } }))).toEqual(["eu-1 ops#1 us:3 us-1:1-1"]);
    n.feed(5, { type: "frame", peer: id("eu-1"), frame: { t: "ack", batch: 1, vv: { "us-1": 1 } } });
    // eu-1 advances on ap-1 by itself (its direct link works): still nothing from us.
    const opsAt = (now: number) => n.feed(now, { type: "tick" }).send.filter((x) => x.frame.t === "ops");
    expect(opsAt(100)).toEqual([]);
    expect(opsAt(200)).toEqual([]);
    n.feed(300, { type: "frame", peer: id("eu-1"), frame: { t: "pong", echoWallMs: 299, wallMs: 300, vv: { "ap-1": 2 } } });
    for (let t = 400; t < 800; t += 100) expect(opsAt(t)).toEqual([]);
    // eu-1 is alive (it pings every heartbeat) but gets nothing more of ap-1.
    n.feed(750, { type: "frame", peer: id("eu-1"), frame: { t: "ping", wallMs: 750, role: "leader", leader: "eu-1", epoch: 1, vv: { "ap-1": 2, "us-1": 1 } } });
    // Stuck at ap-1:2 for an election timeout while we hold 5: we forward.
    const forwarded = opsAt(800);
    expect(forwarded.map((x) => (x.frame as Extract<OutFrame, { t: "ops" }>).range)).toEqual([{ origin: "ap-1", fromSeq: 3, toSeq: 5 }]);
  });

  it("does not send a batch back to the peer it came from (echo), and marks peers down only for real silence", () => {
    const n = new Node("us-1");
    n.feed(1, { type: "leadership", leadership: LEADER });
    n.feed(2, { type: "link_up", peer: id("us-2"), vv: {}, epoch: 0 });
    expect(n.feed(3, { type: "frame", peer: id("us-2"), frame: { t: "ops", batch: 1, fence: "", highest: { "us-2": 4 } } }).batch).toBe("apply");
    expect(n.feed(4, { type: "committed", vv: { "us-2": 4 } }).send).toEqual([]);
    // A 3 s stall of this node (no input at all) is not the peer's silence.
    n.feed(3004, { type: "tick" });
    expect(n.s.peers.get(id("us-2"))?.view.up).toBe(true);
    for (let t = 3100; t <= 3700; t += 100) n.feed(t, { type: "tick" });
    expect(n.s.peers.get(id("us-2"))?.view.up).toBe(false);
  });

  it("closes a silent peer's link once, after LINK_SILENCE_TIMEOUTS election timeouts, and takes it down", () => {
    const n = new Node("us-1");
    n.feed(0, { type: "link_up", peer: id("us-2"), vv: {}, epoch: 0 });
    const closes: Array<{ t: number; close: ReplOutput["close"]; warns: string[] }> = [];
    for (let t = HB; t <= LINK_SILENCE_TIMEOUTS * ET + 20 * HB; t += HB) {
      const out = n.feed(t, { type: "tick" });
      if (out.close.length > 0) closes.push({ t, close: out.close, warns: out.events.filter((e) => e.level === "warn").map((e) => e.msg) });
    }
    expect(closes).toEqual([
      { t: LINK_SILENCE_TIMEOUTS * ET, close: [{ peer: "us-2", reason: `no sign of life for ${LINK_SILENCE_TIMEOUTS * ET} ms: connection presumed dead` }], warns: ["peer link presumed dead; closing it"] },
    ]);
    const p = n.s.peers.get(id("us-2"));
    expect([p?.linkUp, p?.view.up]).toEqual([false, false]);
    // The hub reports the close as a link down, then redials: the new link is judged afresh.
    n.feed(12_050, { type: "link_down", peer: id("us-2"), reason: "no sign of life" });
    n.feed(12_060, { type: "link_up", peer: id("us-2"), vv: {}, epoch: 0 });
    expect(n.feed(12_100, { type: "tick" }).close).toEqual([]);
    expect(n.s.peers.get(id("us-2"))?.linkUp).toBe(true);
  });

  it("a link's signs of life (pongs, a draining queue) keep it open, but do not make a silent peer up", () => {
    const n = new Node("us-1");
    n.feed(0, { type: "link_up", peer: id("us-2"), vv: {}, epoch: 0 });
    const closedAt: number[] = [];
    for (let t = HB; t <= 40_000; t += HB) {
      // The link reports once a ping interval (1 s), for 30 s.
      if (t % 1000 === 0 && t <= 30_000) n.feed(t, { type: "alive", peer: id("us-2") });
      if (n.feed(t, { type: "tick" }).close.length > 0) closedAt.push(t);
      if (t === 20_000) expect(n.s.peers.get(id("us-2"))?.view.up).toBe(false);
    }
    expect(closedAt).toEqual([30_000 + LINK_SILENCE_TIMEOUTS * ET]);
  });

  it("a stall of this node is not its peer's silence: the link closes only after the rule's time awake", () => {
    const n = new Node("us-1");
    n.feed(0, { type: "link_up", peer: id("us-2"), vv: {}, epoch: 0 });
    const closedAt: number[] = [];
    const tick = (t: number) => {
      if (n.feed(t, { type: "tick" }).close.length > 0) closedAt.push(t);
    };
    for (let t = HB; t <= 9000; t += HB) tick(t);
    // 3 s with no input at all: past the rule's 10 s on the wall clock, not awake.
    tick(12_000);
    for (let t = 12_100; t <= 14_000; t += HB) tick(t);
    // Awake time is wall time minus the stall (the gap less one tick): 3000 - 100.
    expect(closedAt).toEqual([LINK_SILENCE_TIMEOUTS * ET + 2900]);
  });

  it("the link rule: presumed dead from LINK_SILENCE_TIMEOUTS election timeouts of silence on", () => {
    expect(LINK_SILENCE_TIMEOUTS * 500).toBe(10_000);
    expect(linkPresumedDead(1000, 1000 + LINK_SILENCE_TIMEOUTS * ET - 1, ET)).toBe(false);
    expect(linkPresumedDead(1000, 1000 + LINK_SILENCE_TIMEOUTS * ET, ET)).toBe(true);
  });

  it("answers a peer's pings with a pong at most once per PONG_INTERVAL_MS: both sides ping every heartbeat anyway", () => {
    const n = new Node("us-1");
    n.feed(1, { type: "link_up", peer: id("us-2"), vv: {}, epoch: 0 });
    const pongsAt = (now: number) =>
      n.feed(now, { type: "frame", peer: id("us-2"), frame: { t: "ping", wallMs: now, role: "follower", leader: "us-1", epoch: 1, vv: {} } }).send.filter((x) => x.frame.t === "pong").length;
    const pongs: number[] = [];
    for (let t = 100; t <= 2100; t += HB) pongs.push(pongsAt(t));
    // The first ping of the link is answered (a fresh offset at once), then one a second.
    expect(pongs.reduce((a, b) => a + b, 0)).toBe(3);
    expect([pongs[0], pongs[PONG_INTERVAL_MS / HB], pongs[(2 * PONG_INTERVAL_MS) / HB]]).toEqual([1, 1, 1]);
    // A new link answers its first ping again.
    n.feed(2150, { type: "link_down", peer: id("us-2"), reason: "test" });
    n.feed(2160, { type: "link_up", peer: id("us-2"), vv: {}, epoch: 0 });
    expect(pongsAt(2200)).toBe(1);
  });

  it("clock offsets come only from quick round trips; a skewed clock is flagged", () => {
    const n = new Node("us-1");
    n.feed(1, { type: "link_up", peer: id("us-2"), vv: {}, epoch: 0 });
    n.feed(1000, { type: "frame", peer: id("us-2"), frame: { t: "pong", echoWallMs: 100, wallMs: 5000, vv: {} } }); // rtt 900: ignored
    expect(isClockSkewed(n.s)).toBe(false);
    n.feed(1010, { type: "frame", peer: id("us-2"), frame: { t: "pong", echoWallMs: 1000, wallMs: 5000, vv: {} } });
    expect(isClockSkewed(n.s)).toBe(true);
  });

  it("a step of the wall clock is seen at once against the monotonic one; samples from before it are void until a majority of up peers measures again", () => {
    const n = new Node("us-1");
    const pong = (at: number, peer: string, echoWallMs: number, peerWallMs: number) =>
      n.feed(at, { type: "frame", peer: id(peer), frame: { t: "pong", echoWallMs, wallMs: peerWallMs, vv: {} } });
    /** [refuses client writes, skewed as the election hears it] at monotonic `at`. */
    const verdict = (at: number) => [refusesWritesForClock(n.s, at, at + n.wallStepMs), isClockSkewed(n.s)];
    n.feed(1, { type: "link_up", peer: id("us-2"), vv: {}, epoch: 0 });
    n.feed(1, { type: "link_up", peer: id("us-3"), vv: {}, epoch: 0 });
    pong(10, "us-2", 5, 8);
    pong(10, "us-3", 5, 8);
    expect(verdict(10)).toEqual([false, false]);
    // The wall clock goes back 10 s at monotonic 100: a write asking before any step sees it is refused already.
    n.wallStepMs = -10_000;
    expect(verdict(100)).toEqual([true, false]);
    n.wallStepMs = 200; // under half the bound: not a step
    expect(verdict(100)).toEqual([false, false]);
    n.wallStepMs = -10_000;
    const stepped = n.feed(100, { type: "tick" });
    expect(stepped.events.map((e) => e.msg)).toContain("wall clock stepped against the monotonic clock; clock samples voided until the peers measure it again");
    expect(clockOffsetMs(n.s)).toBeNull();
    // Writes are refused until the peers measure it again; the election hears nothing yet.
    expect(verdict(100)).toEqual([true, false]);
    // A pong echoing a ping from before the step has a negative round trip: no sample.
    pong(110, "us-2", 50, 60);
    expect(clockOffsetMs(n.s)).toBeNull();
    // One fresh sample of two up peers is not a majority: the verdict waits.
    pong(120, "us-2", 115 - 10_000, 118);
    expect(verdict(120)).toEqual([true, false]);
    pong(130, "us-3", 125 - 10_000, 128);
    // Measured again by both: the clock is 10 s behind them, so it is skewed.
    expect(clockOffsetMs(n.s)).toBe(-10_000);
    expect(verdict(130)).toEqual([true, true]);
    // Corrected (a step forward): void again, the verdict held, then measured good by both.
    n.wallStepMs = 0;
    n.feed(200, { type: "tick" });
    expect(verdict(200)).toEqual([true, true]);
    pong(210, "us-2", 205, 208);
    pong(220, "us-3", 215, 218);
    expect(verdict(220)).toEqual([false, false]);
  });

  it("after a step with no peer up there is nobody to ask: the clock is trusted, as at start", () => {
    const n = new Node("us-1");
    n.wallStepMs = 60_000;
    n.feed(100, { type: "tick" });
    expect(isClockSkewed(n.s)).toBe(false);
  });
});

// ---- random schedules ------------------------------------------------------------

interface Msg {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly frame: OutFrame;
  /** Ops frames carry the dots (the runtime fills them from its log). */
  readonly dots: readonly { origin: NodeId; seq: number }[];
}

interface SimNode {
  readonly id: NodeId;
  s: ReplState;
  applied: Map<string, number>;
  count: Map<string, number>;
  ownSeq: number;
}

/** Three single-node regions plus a two-node region; leaders fixed; a lossy, reordering, duplicating network. */
export function runSchedule(seedOps: readonly { kind: number; a: number; b: number }[]): SimNode[] {
  const members: MemberConfig[] = [
    { node: id("a-1"), region: asRegionId("a"), priority: 1 },
    { node: id("a-2"), region: asRegionId("a"), priority: 0 },
    { node: id("b-1"), region: asRegionId("b"), priority: 0 },
    { node: id("c-1"), region: asRegionId("c"), priority: 0 },
  ];
  const cfg = (self: MemberConfig): ReplConfig => ({ ...config("us-1", { sendWindowOps: 8, frameOpsMax: 3, stepOpsMax: 10 }), self, members });
  let now = 0;
  const nodes: SimNode[] = members.map((m) => ({ id: m.node, s: initReplication(cfg(m), {}, 0, 0), applied: new Map(), count: new Map(), ownSeq: 0 }));
  const byId = new Map(nodes.map((n) => [n.id as string, n]));
  const net: Msg[] = [];
  const feed = (n: SimNode, input: ReplInput): ReplOutput => {
    const out = step(n.s, input, now, now);
    n.s = out.state;
    for (const c of out.close) {
      // The hub cuts the socket (what was on it is lost), both sides see the link go, and the dialer redials.
      const m = byId.get(c.peer) as SimNode;
      for (let i = net.length - 1; i >= 0; i--) if ((net[i]?.from === n.id && net[i]?.to === m.id) || (net[i]?.from === m.id && net[i]?.to === n.id)) net.splice(i, 1);
      feed(m, { type: "link_down", peer: n.id, reason: c.reason });
      feed(n, { type: "link_up", peer: m.id, vv: vvOf(m), epoch: 1 });
      feed(m, { type: "link_up", peer: n.id, vv: vvOf(n), epoch: 1 });
    }
    for (const { to, frame } of out.send) {
      const dots = frame.t === "ops" ? Array.from({ length: frame.range.toSeq - frame.range.fromSeq + 1 }, (_, i) => ({ origin: frame.range.origin, seq: frame.range.fromSeq + i })) : [];
      // Every planned op is one this node holds.
      for (const d of dots) expect(vvGet(Object.fromEntries(n.applied), d.origin)).toBeGreaterThanOrEqual(d.seq);
      net.push({ from: n.id, to, frame, dots });
    }
    return out;
  };
  const vvOf = (n: SimNode): VersionVector => Object.fromEntries(n.applied);
  for (const n of nodes) {
    const leader = n.id === "a-2" ? id("a-1") : n.id;
    feed(n, { type: "leadership", leadership: { active: n.id !== "a-2", role: n.id === "a-2" ? "follower" : "leader", leader, epoch: 1 } });
    for (const m of nodes) if (m !== n) feed(n, { type: "link_up", peer: m.id, vv: {}, epoch: 1 });
  }
  const deliver = (m: Msg): void => {
    const n = byId.get(m.to) as SimNode;
    const f = m.frame;
    if (f.t === "snapshot") throw new Error("no op is ever compacted here: a snapshot was not expected");
    if (f.t !== "ops") return void feed(n, { type: "frame", peer: m.from, frame: f });
    const highest: Record<string, number> = {};
    for (const d of m.dots) highest[d.origin] = Math.max(highest[d.origin] ?? 0, d.seq);
    const out = feed(n, { type: "frame", peer: m.from, frame: { t: "ops", batch: f.batch, fence: f.fence, highest } });
    if (out.batch !== "apply") return;
    for (const d of m.dots) {
      // The store's gap rule: only the next seq of each origin is taken.
      if (d.seq !== (n.applied.get(d.origin) ?? 0) + 1) continue;
      n.applied.set(d.origin, d.seq);
      const k = `${d.origin}:${d.seq}`;
      n.count.set(k, (n.count.get(k) ?? 0) + 1);
    }
    feed(n, { type: "committed", vv: vvOf(n) });
    feed(n, { type: "applied", peer: m.from, batch: f.batch });
  };
  const write = (n: SimNode): void => {
    if (n.id === "a-2") return; // followers forward client writes; the leader takes them
    n.ownSeq++;
    n.applied.set(n.id, n.ownSeq);
    n.count.set(`${n.id}:${n.ownSeq}`, 1);
    feed(n, { type: "committed", vv: vvOf(n) });
  };
  for (const op of seedOps) {
    now += 1 + (op.a % 7);
    const n = nodes[op.b % nodes.length] as SimNode;
    if (op.kind < 4) write(n);
    else if (op.kind < 8 && net.length > 0) {
      const [m] = net.splice(op.a % net.length, 1) as [Msg];
      deliver(m);
    } else if (op.kind === 8 && net.length > 0) net.splice(op.a % net.length, 1); // lost
    else if (op.kind === 9 && net.length > 0) deliver(net[op.a % net.length] as Msg); // duplicated
    else if (op.kind === 10) feed(n, { type: "flush" });
    else feed(n, { type: "tick" });
  }
  // Quiet: reliable delivery, ticks (pings carry vectors, lost ops are resent), flushes.
  for (let round = 0; round < 60; round++) {
    now += HB;
    for (const n of nodes) {
      feed(n, { type: "tick" });
      feed(n, { type: "flush" });
    }
    while (net.length > 0) deliver(net.shift() as Msg);
  }
  return nodes;
}

describe("replication machine, random schedules", () => {
  it("any interleaving, loss, duplication and reordering ends with every node holding every op exactly once", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ kind: fc.nat({ max: 11 }), a: fc.nat({ max: 1000 }), b: fc.nat({ max: 3 }) }), { maxLength: 300 }), (schedule) => {
        const nodes = runSchedule(schedule);
        const all = new Map<string, number>();
        for (const n of nodes) for (const [o, seq] of n.applied) all.set(o, Math.max(all.get(o) ?? 0, seq));
        for (const n of nodes) {
          for (const [o, seq] of all) expect(n.applied.get(o) ?? 0, `${n.id} holds ${o} up to`).toBe(seq);
          for (const [k, c] of n.count) expect(c, `${n.id} applied ${k}`).toBe(1);
        }
      }),
      { numRuns: 150 },
    );
  });
});
