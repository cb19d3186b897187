// The in-region election, scripted: first single machines fed exact inputs
// (what each rule does with one message or one tick), then whole 3-node
// regions on the simulator with a clean network (initial election, failover,
// no preemption unless configured, stepdown, minority leases, manual
// failover), then the wire parser. The simulator also checks the safety
// invariants at every step of those runs.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MemberConfig } from "../../src/core/cluster-view.js";
import {
  epochOf,
  fencingToken,
  holdsLease,
  initElection,
  isActiveLeader,
  leaderOf,
  nextTimerMs,
  parseElectionMsg,
  phaseOf,
  roleOf,
  step,
  type Durable,
  type ElectionBody,
  type ElectionConfig,
  type ElectionInput,
  type ElectionMsg,
  type ElectionOutput,
  type ElectionState,
} from "../../src/core/election.js";
import { formatFencingToken } from "../../src/core/fence.js";
import { asNodeId, asRegionId, type NodeId } from "../../src/core/ids.js";
import type { VersionVector } from "../../src/core/version-vector.js";
import { ClusterSim, type SimConfig } from "../sim/cluster-sim.js";
import { HEALTHY, TIMING } from "../sim/scenario.js";

const REGION = asRegionId("us-east");
const N1 = asNodeId("us-east-1");
const N2 = asNodeId("us-east-2");
const N3 = asNodeId("us-east-3");
const MEMBERS: MemberConfig[] = [
  { node: N1, region: REGION, priority: 3 },
  { node: N2, region: REGION, priority: 2 },
  { node: N3, region: REGION, priority: 1 },
];
const HB = 100;
const ET = 500;

function config(self: NodeId, over: Partial<ElectionConfig> = {}): ElectionConfig {
  const me = MEMBERS.find((m) => m.node === self) as MemberConfig;
  return { self: me, members: MEMBERS, failover: "auto", preempt: false, heartbeatMs: HB, electionTimeoutMs: ET, ...over };
}

const msg = (from: NodeId, epoch: number, body: ElectionBody): ElectionMsg => ({ ...body, from, epoch }) as ElectionMsg;

/**
 * One machine fed by hand. Jitter is 0 unless a test says otherwise, so
 * timeouts are exact. Like the runtime, tests tick at least every heartbeat:
 * a longer gap between inputs is taken for a stall of this node.
 */
class Machine {
  s: ElectionState;
  constructor(self: NodeId, over: Partial<ElectionConfig> = {}, persisted: Durable = { epoch: 0, vote: null }, vv: VersionVector = {}) {
    this.s = initElection(config(self, over), persisted, vv, 0, 0);
  }
  feed(now: number, input: ElectionInput, random = 0): ElectionOutput {
    const out = step(this.s, input, now, random);
    this.s = out.state;
    return out;
  }
  tick(now: number): ElectionOutput {
    return this.feed(now, { type: "tick" });
  }
  recv(now: number, m: ElectionMsg): ElectionOutput {
    return this.feed(now, { type: "message", msg: m });
  }
  /** Ticks every 50 ms from `from` to `to` inclusive; returns every output. */
  ticks(from: number, to: number): ElectionOutput[] {
    const outs: ElectionOutput[] = [];
    for (let t = from; t <= to; t += 50) outs.push(this.tick(t));
    return outs;
  }
}

const sent = (out: ElectionOutput): string[] => out.send.map(({ to, msg: m }) => `${m.type}@${m.epoch}->${to}`);

/** A member's grant of the pre-vote that `round` started. */
const grant = (from: NodeId, round: number, epoch = 0): ElectionMsg => msg(from, epoch, { type: "prevote_ok", round });

/** us-east-1 suspects at 500, pre-votes, and proclaims epoch 1 at 500 on us-east-2's grant. */
function proclaimedAt500(over: Partial<ElectionConfig> = {}): Machine {
  const n1 = new Machine(N1, over);
  n1.ticks(50, 500);
  n1.recv(500, grant(N2, 500));
  expect(phaseOf(n1.s)).toBe("leader_pending");
  return n1;
}

/** A machine that is the active leader of epoch 1 (proclaimed at 500, accepted by us-east-2 at 510). */
function activeLeader(over: Partial<ElectionConfig> = {}): Machine {
  const n1 = proclaimedAt500(over);
  n1.recv(510, msg(N2, 1, { type: "accept", vv: {}, round: 500 }));
  expect(isActiveLeader(n1.s)).toBe(true);
  return n1;
}

describe("election: one machine, rule by rule", () => {
  it("a follower suspects after the election timeout, asks the higher-ranked, pre-votes, then proclaims epoch 1 on a majority, persisting before it sends", () => {
    const n3 = new Machine(N3);
    const quiet = n3.ticks(50, 450);
    expect(quiet.every((o) => o.send.length === 0 && o.events.length === 0)).toBe(true);
    const suspect = n3.tick(500);
    expect(sent(suspect)).toEqual([`election@0->${N1}`, `election@0->${N2}`]);
    expect(suspect.events).toEqual([{ type: "role", role: "candidate", leader: null, epoch: 0, reason: "no leader for 500 ms" }]);
    expect(n3.tick(700).send).toEqual([]); // still waiting for an answer
    const prevote = n3.tick(750);
    // Nobody answered: ask the region before raising the epoch; nothing is persisted yet.
    expect(sent(prevote)).toEqual([`prevote@0->${N1}`, `prevote@0->${N2}`]);
    expect(prevote.persist).toBeNull();
    expect(phaseOf(n3.s)).toBe("prevoting");
    expect(roleOf(n3.s)).toBe("candidate");
    // A grant that answers an older pre-vote does not count.
    expect(n3.recv(755, grant(N2, 700)).persist).toBeNull();
    const proclaim = n3.recv(760, grant(N2, 750));
    // The output carries the durable vote together with the messages that rely on it.
    expect(proclaim.persist).toEqual({ epoch: 1, vote: { epoch: 1, node: N3 } });
    expect(sent(proclaim)).toEqual([`coordinator@1->${N1}`, `coordinator@1->${N2}`]);
    expect(phaseOf(n3.s)).toBe("leader_pending");
    expect(roleOf(n3.s)).toBe("candidate");
  });

  it("jitter (drawn when the timer is armed) delays suspicion by up to a quarter of a timeout, and nextTimerMs says when", () => {
    const n3 = new Machine(N3);
    n3.feed(100, { type: "message", msg: msg(N1, 1, { type: "heartbeat", round: 100 }) }, 0.999);
    const due = 100 + ET + Math.floor(0.999 * ET * 0.25);
    expect(nextTimerMs(n3.s)).toBe(due);
    expect(n3.ticks(150, 700).every((o) => o.send.length === 0)).toBe(true);
    expect(n3.tick(due - 1).send).toEqual([]);
    // Its leader us-east-1 is the silent one: only us-east-2 is asked.
    expect(sent(n3.tick(due))).toEqual([`election@1->${N2}`]);
    expect(nextTimerMs(n3.s)).toBe(due + ET / 2); // the answer deadline
  });

  it("a pre-vote refused while the leader was live is granted the moment it is not", () => {
    const n3 = new Machine(N3);
    n3.feed(100, { type: "message", msg: msg(N1, 1, { type: "heartbeat", round: 100 }) }, 0.999); // suspects only at 724
    n3.ticks(150, 550);
    expect(sent(n3.recv(590, msg(N2, 1, { type: "prevote", round: 590 })))).toEqual([`alive@1->${N2}`]);
    // Liveness of us-east-1 ends at 100 + ET: that is the next timer, and the grant goes out then.
    expect(nextTimerMs(n3.s)).toBe(100 + ET);
    expect(n3.tick(599).send).toEqual([]);
    expect(n3.tick(600).send).toEqual([{ to: N2, msg: { from: N3, epoch: 1, type: "prevote_ok", round: 590 } }]);
    // Once only, and never for a pre-vote older than an election timeout.
    expect(n3.tick(610).send).toEqual([]);
    const late = new Machine(N3);
    late.recv(100, msg(N1, 1, { type: "heartbeat", round: 100 }));
    late.recv(200, msg(N2, 1, { type: "prevote", round: 50 }));
    late.ticks(250, 550);
    expect(late.tick(600).send.filter((x) => x.msg.type === "prevote_ok")).toEqual([]);
  });

  it("a higher-ranked node answers an ELECTION and runs its own; the top-ranked pre-votes at once", () => {
    const n2 = new Machine(N2);
    const out = n2.recv(100, msg(N3, 0, { type: "election" }));
    expect(sent(out)).toEqual([`answer@0->${N3}`, `election@0->${N1}`]);
    const n1 = new Machine(N1);
    expect(sent(n1.recv(100, msg(N2, 0, { type: "election" })))).toEqual([`answer@0->${N2}`, `prevote@0->${N2}`, `prevote@0->${N3}`]);
    expect(sent(n1.recv(101, grant(N3, 100)))).toEqual([`coordinator@1->${N2}`, `coordinator@1->${N3}`]);
  });

  it("a follower whose leader went silent does not wait for that leader's answer", () => {
    const n2 = new Machine(N2);
    n2.recv(100, msg(N1, 1, { type: "heartbeat", round: 100 }));
    n2.ticks(150, 550);
    // us-east-1, the only higher-ranked member, is the silent leader: straight to the pre-vote.
    expect(sent(n2.tick(600))).toEqual([`prevote@1->${N1}`, `prevote@1->${N3}`]);
  });

  it("pre-vote: granted only by a member that hears no live leader; a leader answers with a heartbeat", () => {
    const n3 = new Machine(N3);
    expect(n3.recv(100, msg(N2, 0, { type: "prevote", round: 100 })).send).toEqual([{ to: N2, msg: { from: N3, epoch: 0, type: "prevote_ok", round: 100 } }]);
    n3.recv(200, msg(N1, 1, { type: "heartbeat", round: 200 }));
    const refused = n3.recv(300, msg(N2, 1, { type: "prevote", round: 300 }));
    expect(sent(refused)).toEqual([`alive@1->${N2}`]);
    expect(refused.persist).toBeNull();
    const n1 = activeLeader();
    expect(sent(n1.recv(600, msg(N3, 1, { type: "prevote", round: 600 })))).toEqual([`alive@1->${N3}`, `heartbeat@1->${N3}`]);
  });

  it("a pre-vote without a majority never raises the epoch; it backs off, resends, and tries again", () => {
    const n1 = new Machine(N1, {}, { epoch: 4, vote: { epoch: 4, node: N1 } });
    const outs = n1.ticks(50, 6000);
    expect(outs.every((o) => o.persist === null)).toBe(true);
    expect(epochOf(n1.s)).toBe(4);
    const tries = outs.filter((o) => o.events.some((e) => e.role === "candidate"));
    const fails = outs.flatMap((o) => o.events).filter((e) => e.reason.startsWith("pre-vote failed"));
    expect(fails[0]?.reason).toBe("pre-vote failed: 1 of 3 granted within 500 ms; epoch stays 4");
    // Backoff: 2, then 4 election timeouts between tries instead of 1.
    expect(tries.length).toBeGreaterThanOrEqual(2);
    expect(tries.length).toBeLessThanOrEqual(4);
    // A grant after all that still leads to a proclamation, at the next epoch only.
    let at = 6050;
    while (!n1.tick(at).send.some((x) => x.msg.type === "prevote")) {
      at += 50;
      expect(at).toBeLessThan(9000);
    }
    expect(n1.recv(at + 1, grant(N3, at, 4)).persist).toEqual({ epoch: 5, vote: { epoch: 5, node: N1 } });
  });

  it("a candidate that got an ANSWER waits for the coordinator, then starts over", () => {
    const n3 = new Machine(N3);
    n3.ticks(50, 500);
    n3.recv(510, msg(N2, 0, { type: "answer" }));
    expect(phaseOf(n3.s)).toBe("awaiting_coordinator");
    expect(n3.ticks(550, 1000).every((o) => o.send.length === 0)).toBe(true);
    expect(sent(n3.tick(1010))).toEqual([`election@0->${N1}`, `election@0->${N2}`]);
  });

  it("pre-vote: a node that hears a live leader answers ALIVE and refuses other coordinators; the candidate backs off", () => {
    const n2 = new Machine(N2);
    n2.recv(100, msg(N1, 1, { type: "heartbeat", round: 100 }));
    expect(sent(n2.recv(150, msg(N3, 1, { type: "election" })))).toEqual([`alive@1->${N3}`]);
    const refused = n2.recv(200, msg(N3, 2, { type: "coordinator", vv: {}, round: 200 }));
    expect(refused.send).toEqual([{ to: N3, msg: { from: N2, epoch: 1, type: "reject", code: "leader_alive", reason: "leader us-east-1 is alive" } }]);
    expect(refused.persist).toBeNull();
    expect(epochOf(n2.s)).toBe(1);

    const n3 = new Machine(N3);
    n3.ticks(50, 500);
    n3.recv(510, msg(N2, 1, { type: "alive", leader: N1 }));
    expect(roleOf(n3.s)).toBe("follower");
  });

  it("without preempt nobody joins a higher-ranked coordinator against a live leader; with preempt they do", () => {
    for (const preempt of [false, true]) {
      const n3 = new Machine(N3, { preempt });
      n3.recv(100, msg(N2, 1, { type: "heartbeat", round: 100 }));
      const out = n3.recv(200, msg(N1, 2, { type: "coordinator", vv: {}, round: 200 }));
      if (preempt) {
        expect(out.persist).toEqual({ epoch: 2, vote: { epoch: 2, node: N1 } });
        expect(sent(out)).toEqual([`accept@2->${N1}`]);
        expect(leaderOf(n3.s)).toBe(N1);
      } else {
        expect(sent(out)).toEqual([`reject@1->${N1}`]);
        expect(leaderOf(n3.s)).toBe(N2);
      }
    }
  });

  it("accepts at most one coordinator per epoch; a duplicate is accepted again without a new vote", () => {
    const n3 = new Machine(N3);
    const first = n3.recv(100, msg(N2, 1, { type: "coordinator", vv: {}, round: 100 }));
    expect(first.persist).toEqual({ epoch: 1, vote: { epoch: 1, node: N2 } });
    expect(first.send[0]?.msg).toEqual({ from: N3, epoch: 1, type: "accept", vv: {}, round: 100 });
    const other = n3.recv(110, msg(N1, 1, { type: "coordinator", vv: {}, round: 110 }));
    expect(other.send[0]?.msg).toMatchObject({ type: "reject", code: "voted_other", reason: "already accepted us-east-2 for epoch 1" });
    const dup = n3.recv(120, msg(N2, 1, { type: "coordinator", vv: {}, round: 100 }));
    expect(dup.persist).toBeNull();
    expect(sent(dup)).toEqual([`accept@1->${N2}`]);
    const stale = n3.recv(130, msg(N1, 0, { type: "coordinator", vv: {}, round: 130 }));
    expect(stale.send[0]?.msg).toMatchObject({ type: "reject", code: "superseded", epoch: 1 });
    // us-east-1 won epoch 1 without this vote; a late resend from us-east-2 is answered, but not followed.
    n3.recv(140, msg(N1, 1, { type: "heartbeat", round: 140 }));
    expect(sent(n3.recv(150, msg(N2, 1, { type: "coordinator", vv: {}, round: 150 })))).toEqual([`accept@1->${N2}`]);
    expect(leaderOf(n3.s)).toBe(N1);
  });

  it("a coordinator takes office only once its vv covers what the accepting majority reported", () => {
    const n1 = proclaimedAt500();
    const acc = n1.recv(510, msg(N2, 1, { type: "accept", vv: { [N2]: 3 }, round: 500 }));
    expect(acc.events).toEqual([]);
    expect(phaseOf(n1.s)).toBe("leader_pending");
    expect(isActiveLeader(n1.s)).toBe(false);
    const caughtUp = n1.feed(520, { type: "local_vv", vv: { [N2]: 3 } });
    expect(isActiveLeader(n1.s)).toBe(true);
    expect(caughtUp.events[0]).toMatchObject({ role: "leader", leader: N1, epoch: 1 });
    expect(sent(caughtUp)).toEqual([`heartbeat@1->${N2}`, `heartbeat@1->${N3}`]);
    expect(formatFencingToken(fencingToken(REGION, n1.s))).toBe("us-east:1");
  });

  it("an acceptance older than the lease does not count (a slow catch-up needs fresh ones)", () => {
    const n1 = proclaimedAt500();
    n1.recv(510, msg(N2, 1, { type: "accept", vv: { [N2]: 3 }, round: 500 }));
    n1.ticks(550, 1100); // us-east-2 goes quiet; its ops arrive only now
    n1.feed(1100, { type: "local_vv", vv: { [N2]: 3 } });
    expect(phaseOf(n1.s)).toBe("leader_pending");
    n1.recv(1110, msg(N2, 1, { type: "accept", vv: { [N2]: 3 }, round: 1100 }));
    expect(isActiveLeader(n1.s)).toBe(true);
  });

  it("a pending coordinator gives up after the bound and retries later at a higher epoch", () => {
    const n1 = proclaimedAt500();
    const resends = n1.ticks(550, 950);
    expect(resends.flatMap(sent)).toContain(`coordinator@1->${N2}`);
    const giveUp = n1.tick(1000);
    expect(giveUp.events[0]).toMatchObject({ role: "follower", leader: null, reason: "candidacy for epoch 1 timed out: 1 of 3 accepted" });
    n1.ticks(1050, 1450);
    expect(sent(n1.tick(1500))).toEqual([`prevote@1->${N2}`, `prevote@1->${N3}`]);
    expect(sent(n1.recv(1500, grant(N3, 1500, 1)))).toEqual([`coordinator@2->${N2}`, `coordinator@2->${N3}`]);
  });

  it("the next epoch is above every epoch seen, and an outdated candidacy stops", () => {
    const n1 = proclaimedAt500();
    const outdated = n1.recv(510, msg(N2, 9, { type: "reject", code: "superseded", reason: "" }));
    expect(outdated.events[0]).toMatchObject({ role: "follower", reason: "candidacy for epoch 1 is outdated: us-east-2 is at epoch 9" });
    n1.ticks(550, 950);
    expect(sent(n1.tick(1010))).toEqual([`prevote@1->${N2}`, `prevote@1->${N3}`]);
    expect(n1.recv(1011, grant(N2, 1010, 9)).persist).toEqual({ epoch: 10, vote: { epoch: 10, node: N1 } });
  });

  it("a leader heartbeats every heartbeatMs and steps down when no majority confirmed within the lease", () => {
    const n1 = activeLeader();
    const outs = n1.ticks(550, 950);
    expect(outs.filter((o) => o.send.length > 0).length).toBe(4); // 600, 700, 800, 900
    n1.recv(960, msg(N3, 1, { type: "heartbeat_ack", vv: {}, round: 900 }));
    // N3 confirmed round 900: the lease holds until 1400.
    expect(n1.ticks(1000, 1350).every((o) => o.events.length === 0)).toBe(true);
    const down = n1.tick(1400);
    expect(down.events[0]).toMatchObject({ role: "follower", leader: null, reason: "lost the majority: 1 of 3 confirmed within 500 ms" });
    expect(isActiveLeader(n1.s)).toBe(false);
  });

  it("a leader that slept past its lease holds none on waking: not before its first step, nor on a pre-stall round read then", () => {
    // Found by test/netns (SIGSTOP of a leader): the awake clock leaves a stall
    // out, so the lease outlived the sleep and a write read on waking was taken.
    const n1 = activeLeader();
    n1.ticks(550, 600);
    n1.recv(610, msg(N2, 1, { type: "heartbeat_ack", vv: {}, round: 600 }));
    expect(holdsLease(n1.s, 650)).toBe(true);
    // Stopped from 610 to 2000: nothing stepped yet, so the gap counts in full.
    expect(holdsLease(n1.s, 2000)).toBe(false);
    // An ack of round 600 that waited in the socket buffer does not renew it.
    n1.recv(2000, msg(N2, 1, { type: "heartbeat_ack", vv: {}, round: 600 }));
    expect(isActiveLeader(n1.s)).toBe(true);
    expect(holdsLease(n1.s, 2001)).toBe(false);
    // It read its sockets on waking (that ack), so its first tick steps it down.
    expect(n1.tick(2010).events[0]).toMatchObject({ role: "follower", reason: "lost the majority: 1 of 3 confirmed within 500 ms" });
  });

  it("a coordinator that slept through its candidacy does not take office on acceptances read on waking", () => {
    // Found by the whole-cluster simulator (seed 106480): a node proclaimed,
    // stalled before the accepts came in, and woke to them; its awake clock
    // left the stall out, so they looked fresh, and it took office and a
    // write 600 ms after the region had elected another leader meanwhile.
    const n1 = proclaimedAt500();
    // Stopped from 500 to 1700. The runtime's timers run first on waking (the
    // tick notices the stall), then the sockets: an accept of round 500.
    n1.tick(1700);
    n1.recv(1700, msg(N2, 1, { type: "accept", vv: {}, round: 500 }));
    expect(isActiveLeader(n1.s)).toBe(false);
    expect(holdsLease(n1.s, 1700)).toBe(false);
    // A fresh acceptance, of a round sent after waking, still counts.
    n1.ticks(1750, 1800);
    n1.recv(1805, msg(N2, 1, { type: "accept", vv: {}, round: 1800 }));
    expect(isActiveLeader(n1.s)).toBe(true);
    expect(holdsLease(n1.s, 1805)).toBe(true);
  });

  it("a stall shorter than what is left of the lease keeps it", () => {
    const n1 = activeLeader();
    n1.ticks(550, 600);
    n1.recv(610, msg(N2, 1, { type: "heartbeat_ack", vv: {}, round: 600 }));
    // 290 ms asleep: round 600 is 300 ms old in real time, within the 500 ms lease.
    n1.tick(900);
    expect(holdsLease(n1.s, 900)).toBe(true);
  });

  it("a higher epoch from a leader demotes at once, and is persisted", () => {
    const n1 = activeLeader();
    const out = n1.recv(600, msg(N2, 4, { type: "heartbeat", round: 600 }));
    expect(out.persist).toEqual({ epoch: 4, vote: { epoch: 4, node: N2 } });
    expect(roleOf(n1.s)).toBe("follower");
    expect(leaderOf(n1.s)).toBe(N2);
    expect(sent(out)).toEqual([`heartbeat_ack@4->${N2}`]);
  });

  it("a leader that a member rejects as stale (no leader at a higher epoch) renews above that epoch", () => {
    const n1 = activeLeader();
    const out = n1.recv(600, msg(N3, 7, { type: "reject", code: "stale_epoch", reason: "" }));
    expect(out.persist).toEqual({ epoch: 8, vote: { epoch: 8, node: N1 } });
    expect(sent(out)).toEqual([`coordinator@8->${N2}`, `coordinator@8->${N3}`]);
    // Its own follower accepts: the coordinator is the leader it hears.
    const n2 = new Machine(N2);
    n2.recv(500, msg(N1, 1, { type: "heartbeat", round: 500 }));
    expect(sent(n2.recv(610, msg(N1, 8, { type: "coordinator", vv: {}, round: 600 })))).toEqual([`accept@8->${N1}`]);
  });

  it("restarted with a persisted epoch 5 it never goes back: older coordinators and heartbeats are refused", () => {
    const n2 = new Machine(N2, {}, { epoch: 5, vote: { epoch: 5, node: N1 } });
    expect(epochOf(n2.s)).toBe(5);
    expect(n2.recv(10, msg(N1, 4, { type: "heartbeat", round: 10 })).send[0]?.msg).toEqual({
      from: N2,
      epoch: 5,
      type: "reject",
      code: "stale_epoch",
      reason: "epoch 4 is stale: us-east-2 is at epoch 5",
    });
    expect(n2.recv(20, msg(N3, 3, { type: "coordinator", vv: {}, round: 20 })).send[0]?.msg).toMatchObject({ type: "reject", code: "stale_epoch" });
    expect(n2.recv(30, msg(N3, 5, { type: "coordinator", vv: {}, round: 30 })).send[0]?.msg).toMatchObject({ type: "reject", code: "voted_other" });
    n2.ticks(50, 700); // suspects at 500, asks us-east-1, which does not answer
    expect(sent(n2.tick(750))).toEqual([`prevote@5->${N1}`, `prevote@5->${N3}`]);
    expect(n2.recv(760, grant(N3, 750, 5)).persist).toEqual({ epoch: 6, vote: { epoch: 6, node: N2 } });
    expect(epochOf(n2.s)).toBe(6);
  });

  it("stall guard: a big gap between ticks is this node's own stall, not the leader's silence", () => {
    const n3 = new Machine(N3);
    for (let t = 100; t <= 300; t += 100) n3.recv(t, msg(N1, 1, { type: "heartbeat", round: t }));
    // The process sleeps 3 s; the first input after it is a tick.
    expect(n3.tick(3300).send).toEqual([]);
    expect(leaderOf(n3.s)).toBe(N1);
    // Silence from here on counts: last heard at 300, the stall (3000 ms minus one nominal tick) is not counted.
    const before = n3.ticks(3350, 3650);
    expect(before.every((o) => o.send.length === 0)).toBe(true);
    expect(sent(n3.tick(3700))).toEqual([`election@1->${N2}`]);
  });

  it("after a hiccup (a pause under the stall threshold) it reads what arrived before judging the silence", () => {
    for (const buffered of [true, false]) {
      const n3 = new Machine(N3);
      n3.recv(100, msg(N1, 1, { type: "heartbeat", round: 100 }));
      n3.ticks(150, 450);
      // 150 ms without running: the overdue tick comes first, the leader's heartbeat waits in the socket.
      expect(n3.tick(600).send).toEqual([]);
      if (buffered) n3.recv(600, msg(N1, 1, { type: "heartbeat", round: 500 }));
      expect(sent(n3.tick(650))).toEqual(buffered ? [] : [`election@1->${N2}`]);
    }
  });

  it("without a stall, the same silence is suspected on time", () => {
    const n3 = new Machine(N3);
    n3.recv(300, msg(N1, 1, { type: "heartbeat", round: 300 }));
    n3.ticks(350, 750);
    expect(sent(n3.tick(800))).toEqual([`election@1->${N2}`]);
  });

  it("operator stepdown: refused unless leading; the leader tells the region and stays out of the next election", () => {
    expect(new Machine(N2).feed(100, { type: "stepdown" }).refused).toBe("not the leader");
    const f = new Machine(N2);
    f.recv(100, msg(N1, 1, { type: "heartbeat", round: 100 }));
    expect(f.feed(150, { type: "stepdown" }).refused).toBe("not the leader: us-east-1 is");

    const n1 = activeLeader();
    const out = n1.feed(600, { type: "stepdown" });
    expect(out.refused).toBeUndefined();
    expect(sent(out)).toEqual([`stepdown@1->${N2}`, `stepdown@1->${N3}`]);
    expect(out.events[0]).toMatchObject({ role: "follower", leader: null, reason: "stepped down on operator request" });
    // Abstains for 2 election timeouts: no ANSWER, no election of its own.
    expect(n1.recv(700, msg(N3, 1, { type: "election" })).send).toEqual([]);
    expect(n1.ticks(750, 1550).every((o) => o.send.length === 0)).toBe(true);
    expect(sent(n1.recv(1650, msg(N3, 1, { type: "election" })))).toContain(`answer@1->${N3}`);
  });

  it("members that receive STEPDOWN start an election at once (not after the timeout)", () => {
    const n2 = new Machine(N2);
    n2.recv(100, msg(N1, 1, { type: "heartbeat", round: 100 }));
    // The leader that stepped down abstains: no ELECTION to it, straight to the pre-vote.
    expect(sent(n2.recv(150, msg(N1, 1, { type: "stepdown" })))).toEqual([`prevote@1->${N1}`, `prevote@1->${N3}`]);
    // A stepdown from a newer epoch than this node knows: adopt it, drop the old leader, elect.
    const n3 = new Machine(N3);
    n3.recv(100, msg(N2, 1, { type: "heartbeat", round: 100 }));
    const newer = n3.recv(150, msg(N1, 3, { type: "stepdown" }));
    expect(newer.persist).toEqual({ epoch: 3, vote: { epoch: 1, node: N2 } });
    expect(sent(newer)).toEqual([`election@3->${N2}`]);
    const manual = new Machine(N2, { failover: "manual" });
    manual.recv(100, msg(N1, 1, { type: "heartbeat", round: 100 }));
    expect(manual.recv(150, msg(N1, 1, { type: "stepdown" })).send).toEqual([]);
    expect(leaderOf(manual.s)).toBeNull();
  });

  it("a skewed clock: the leader steps down and tells the region; a skewed node neither stands, nor answers, nor can be promoted; it still votes", () => {
    const n1 = activeLeader();
    const out = n1.feed(600, { type: "clock", skewed: true });
    expect(sent(out)).toEqual([`stepdown@1->${N2}`, `stepdown@1->${N3}`]);
    expect(out.persist).toBeNull();
    expect(out.events[0]).toMatchObject({ role: "follower", leader: null, reason: "stepped down from epoch 1: this node's clock is skewed from its peers'" });
    // The same input again changes nothing.
    expect(n1.feed(610, { type: "clock", skewed: true }).send).toEqual([]);
    // Top-ranked, yet no ANSWER and no candidacy of its own however long the silence.
    expect(n1.recv(650, msg(N3, 1, { type: "election" })).send).toEqual([]);
    expect(n1.ticks(700, 3000).every((o) => o.send.length === 0 && o.events.every((e) => e.role === "follower"))).toBe(true);
    expect(n1.feed(3010, { type: "promote", bestReachableVv: {} }).refused).toMatch(/clock is skewed/);
    // It votes: a pre-vote is granted and a coordinator accepted.
    expect(sent(n1.recv(3020, msg(N2, 1, { type: "prevote", round: 3020 })))).toEqual([`prevote_ok@1->${N2}`]);
    expect(sent(n1.recv(3030, msg(N2, 2, { type: "coordinator", vv: {}, round: 3030 })))).toEqual([`accept@2->${N2}`]);
    expect(leaderOf(n1.s)).toBe(N2);
    // Its clock is good again: once its leader falls silent it stands (top-ranked: straight to the pre-vote).
    n1.feed(3040, { type: "clock", skewed: false });
    const stood = n1.ticks(3050, 3700).flatMap(sent);
    expect(stood.slice(0, 2)).toEqual([`prevote@2->${N2}`, `prevote@2->${N3}`]);
  });

  it("a skewed clock withdraws a candidacy: pre-voting, or pending with acceptors that follow it", () => {
    const pre = new Machine(N1);
    pre.ticks(50, 500);
    expect(phaseOf(pre.s)).toBe("prevoting");
    const withdrawn = pre.feed(510, { type: "clock", skewed: true });
    expect(phaseOf(pre.s)).toBe("follower");
    expect(withdrawn.events[0]?.reason).toMatch(/withdrew from the election: this node's clock is skewed/);
    // A grant arriving late proclaims nothing.
    expect(pre.recv(520, grant(N2, 500)).persist).toBeNull();
    const pending = proclaimedAt500();
    expect(sent(pending.feed(510, { type: "clock", skewed: true }))).toEqual([`stepdown@1->${N2}`, `stepdown@1->${N3}`]);
    expect(roleOf(pending.s)).toBe("follower");
  });

  it("manual failover: nothing is elected automatically", () => {
    const n1 = new Machine(N1, { failover: "manual" });
    expect(n1.ticks(50, 10_000).every((o) => o.send.length === 0 && o.persist === null)).toBe(true);
    expect(n1.recv(10_010, msg(N3, 0, { type: "election" })).send).toEqual([]);
    expect(roleOf(n1.s)).toBe("follower");
    expect(epochOf(n1.s)).toBe(0);
  });

  it("promote is refused while a leader is alive or when behind, and otherwise proclaims once a majority grants the pre-vote", () => {
    const n2 = new Machine(N2, { failover: "manual" }, { epoch: 0, vote: null }, { [N1]: 2 });
    n2.recv(100, msg(N1, 1, { type: "heartbeat", round: 100 }));
    expect(n2.feed(200, { type: "promote", bestReachableVv: { [N1]: 2 } }).refused).toBe("leader us-east-1 is alive");
    // After the leader's silence it is no longer alive, but this node lacks 3 of its ops.
    n2.ticks(250, 700);
    expect(n2.feed(700, { type: "promote", bestReachableVv: { [N1]: 5 } }).refused).toBe("behind the region's most up-to-date reachable node by 3 ops");
    n2.feed(710, { type: "local_vv", vv: { [N1]: 5 } });
    const ok = n2.feed(720, { type: "promote", bestReachableVv: { [N1]: 5 } });
    expect(ok.refused).toBeUndefined();
    expect(ok.persist).toBeNull();
    expect(sent(ok)).toEqual([`prevote@1->${N1}`, `prevote@1->${N3}`]);
    expect(n2.feed(721, { type: "promote", bestReachableVv: {} }).refused).toBe("a pre-vote is already running");
    const granted = n2.recv(722, grant(N3, 720, 1));
    expect(granted.persist).toEqual({ epoch: 2, vote: { epoch: 2, node: N2 } });
    expect(sent(granted)).toEqual([`coordinator@2->${N1}`, `coordinator@2->${N3}`]);
    expect(n2.feed(730, { type: "promote", bestReachableVv: {} }).refused).toBe("a candidacy for epoch 2 is already pending");
    n2.recv(740, msg(N3, 2, { type: "accept", vv: {}, round: 722 }));
    expect(n2.feed(750, { type: "promote", bestReachableVv: {} }).refused).toBe("already the leader of epoch 2");
  });

  it("ignores messages from outside the region and from itself", () => {
    const n2 = new Machine(N2);
    const before = n2.s;
    expect(n2.recv(100, msg(asNodeId("eu-west-1"), 9, { type: "heartbeat", round: 1 })).send).toEqual([]);
    expect(n2.recv(110, msg(N2, 9, { type: "heartbeat", round: 1 })).send).toEqual([]);
    expect(epochOf(n2.s)).toBe(epochOf(before));
    expect(n2.s.seenEpoch).toBe(0);
  });

  it("programmer errors throw: bad config, time going back, random out of range, vv going back", () => {
    expect(() => initElection(config(N1, { electionTimeoutMs: HB }), { epoch: 0, vote: null }, {}, 0, 0)).toThrow(/above heartbeatMs/);
    expect(() => initElection({ ...config(N1), members: MEMBERS.slice(1) }, { epoch: 0, vote: null }, {}, 0, 0)).toThrow(/must be one of the members/);
    expect(() => initElection(config(N1), { epoch: 1, vote: { epoch: 2, node: N2 } }, {}, 0, 0)).toThrow(/does not fit/);
    const m = new Machine(N1, {}, { epoch: 0, vote: null }, { [N1]: 3 });
    expect(() => step(m.s, { type: "tick" }, 10, 1)).toThrow(/random/);
    m.tick(100);
    expect(() => m.tick(50)).toThrow(/time went back/);
    expect(() => m.feed(200, { type: "local_vv", vv: { [N1]: 2 } })).toThrow(/local_vv went back/);
    expect(() => fencingToken(asRegionId("eu-west"), m.s)).toThrow(/fencing token/);
  });
});

describe("election: a candidate cut off from a majority", () => {
  // A 5-node region where this node still hears one peer (a minority of two).
  // Whatever the timing (ticks at any gaps, stalls included) and whatever that
  // peer says at or below the node's epoch, the node never raises its epoch:
  // only a majority's pre-vote leads to a proclamation.
  const five: MemberConfig[] = [1, 2, 3, 4, 5].map((i) => ({ node: asNodeId(`e-${i}`), region: REGION, priority: 6 - i }));
  const inputArb = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("tick" as const), gapMs: fc.oneof(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 60, max: 3000 })) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("peer" as const),
        gapMs: fc.integer({ min: 0, max: 200 }),
        body: fc.oneof(
          fc.record({ type: fc.constantFrom("prevote_ok" as const, "prevote" as const), roundBackMs: fc.integer({ min: -50, max: 2000 }) }),
          fc.constantFrom({ type: "answer" as const }, { type: "election" as const }, { type: "alive" as const }),
          fc.record({ type: fc.constant("reject" as const), code: fc.constantFrom("stale_epoch" as const, "superseded" as const, "voted_other" as const, "leader_alive" as const) }),
        ),
      }),
    },
  );

  it("never raises its persisted epoch, whatever the timing", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 9 }), fc.array(inputArb, { maxLength: 300 }), (selfIndex, epoch0, inputs) => {
        const self = five[selfIndex] as MemberConfig;
        const peer = (five[(selfIndex + 1) % 5] as MemberConfig).node;
        const cfg: ElectionConfig = { self, members: five, failover: "auto", preempt: false, heartbeatMs: HB, electionTimeoutMs: ET };
        let s = initElection(cfg, { epoch: epoch0, vote: null }, {}, 0, 0.5);
        let now = 0;
        let r = 0.37;
        for (const input of inputs) {
          now += input.gapMs;
          r = (r * 9301 + 0.49297) % 1;
          let out: ElectionOutput;
          if (input.kind === "tick") out = step(s, { type: "tick" }, now, r);
          else {
            const b = input.body;
            const body: ElectionBody =
              b.type === "prevote_ok" || b.type === "prevote"
                ? { type: b.type, round: now - b.roundBackMs }
                : b.type === "alive"
                  ? { type: "alive", leader: peer }
                  : b.type === "reject"
                    ? { type: "reject", code: b.code, reason: "" }
                    : { type: b.type };
            out = step(s, { type: "message", msg: msg(peer, epochOf(s), body) }, now, r);
          }
          s = out.state;
          expect(out.persist === null || out.persist.epoch === epoch0, `epoch raised to ${out.persist?.epoch} at ${now} ms`).toBe(true);
          expect(isActiveLeader(s)).toBe(false);
        }
        expect(epochOf(s)).toBe(epoch0);
      }),
      { numRuns: 500 },
    );
  });
});

/** A 3-node region on the simulator over a clean network (n1 ranks first). */
function region(over: Partial<SimConfig> = {}): ClusterSim {
  return new ClusterSim({ priorities: [3, 2, 1], failover: "auto", preempt: false, ...TIMING, seed: 11, writeRate: 0.3, quality: HEALTHY, ...over });
}

/** Each node as id:role:leader:epoch. */
function view(sim: ClusterSim): string[] {
  return sim.nodes.map((n) => (n.state === null ? `${n.id}:down` : `${n.id}:${roleOf(n.state)}:${leaderOf(n.state) ?? "-"}:${epochOf(n.state)}`));
}

describe("election: scripted runs of a 3-node region", () => {
  it("the initial election elects the highest-ranked node", () => {
    const sim = region();
    sim.runUntil(2000);
    expect(view(sim)).toEqual(["n1:leader:n1:1", "n2:follower:n1:1", "n3:follower:n1:1"]);
    expect(formatFencingToken(fencingToken(asRegionId("sim"), sim.node(0).state!))).toBe("sim:1");
  });

  it("with equal priorities the higher id ranks first", () => {
    const sim = region({ priorities: [1, 1, 1] });
    sim.runUntil(2000);
    expect(view(sim)).toEqual(["n1:follower:n3:1", "n2:follower:n3:1", "n3:leader:n3:1"]);
  });

  it("leader crash: the next-ranked is elected with a higher epoch; the recovered node does not take over", () => {
    const sim = region();
    sim.runUntil(2000);
    sim.crash(0);
    sim.runUntil(4000);
    expect(view(sim)).toEqual(["n1:down", "n2:leader:n2:2", "n3:follower:n2:2"]);
    sim.restart(0);
    sim.runUntil(8000);
    expect(view(sim)).toEqual(["n1:follower:n2:2", "n2:leader:n2:2", "n3:follower:n2:2"]);
  });

  it("with preempt, the recovered higher-ranked node takes over in a new epoch", () => {
    const sim = region({ preempt: true });
    sim.runUntil(2000);
    sim.crash(0);
    sim.runUntil(4000);
    sim.restart(0);
    sim.runUntil(8000);
    expect(view(sim)).toEqual(["n1:leader:n1:3", "n2:follower:n1:3", "n3:follower:n1:3"]);
  });

  it("stepdown elects a different node, promptly", () => {
    const sim = region();
    sim.runUntil(2000);
    expect(sim.stepdown(2)).toBe("not the leader: n1 is");
    expect(sim.stepdown(0)).toBeUndefined();
    // Faster than a silence timeout: members start the election at once.
    sim.runUntil(2000 + TIMING.electionTimeoutMs);
    expect(sim.activeLeaders().map((n) => n.id)).toEqual(["n2"]);
    sim.runUntil(6000);
    expect(view(sim)).toEqual(["n1:follower:n2:2", "n2:leader:n2:2", "n3:follower:n2:2"]);
  });

  it("one skewed clock of three: the skewed leader steps down, a good-clock node leads, and the skewed one never takes it back", () => {
    const sim = region({ preempt: true });
    sim.runUntil(2000);
    sim.clock(0, true);
    // Prompt: the members elect on its STEPDOWN, not after a silence.
    sim.runUntil(2000 + TIMING.electionTimeoutMs);
    expect(sim.activeLeaders().map((n) => n.id)).toEqual(["n2"]);
    // Even with preempt the top-ranked node stays out while skewed.
    sim.runUntil(8000);
    expect(view(sim)).toEqual(["n1:follower:n2:2", "n2:leader:n2:2", "n3:follower:n2:2"]);
    // Corrected, it stands again (here by preempting, as configured).
    sim.clock(0, false);
    sim.runUntil(12_000);
    expect(view(sim)).toEqual(["n1:leader:n1:3", "n2:follower:n1:3", "n3:follower:n1:3"]);
  });

  it("skewed from the start, the top-ranked node is passed over in the first election", () => {
    const sim = region();
    sim.clock(0, true);
    sim.runUntil(4000);
    expect(view(sim)).toEqual(["n1:follower:n2:1", "n2:leader:n2:1", "n3:follower:n2:1"]);
  });

  it("a leader cut off in a minority steps down within the lease; the majority elects; after the heal all follow it", () => {
    const sim = region();
    sim.runUntil(2000);
    sim.partition([0, 1, 1]);
    sim.runUntil(2000 + sim.leaseBoundMs);
    expect(isActiveLeader(sim.node(0).state!)).toBe(false);
    sim.runUntil(4000);
    expect(sim.activeLeaders().map((n) => n.id)).toEqual(["n2"]);
    sim.heal(HEALTHY);
    sim.runUntil(7000);
    const epoch = epochOf(sim.node(1).state!);
    expect(view(sim)).toEqual([`n1:follower:n2:${epoch}`, `n2:leader:n2:${epoch}`, `n3:follower:n2:${epoch}`]);
  });

  it("a node isolated from its region keeps its epoch however long it tries, and rejoins without an election", () => {
    for (const isolated of [0, 2]) {
      const sim = region();
      sim.runUntil(2000);
      const before = epochOf(sim.node(isolated).state!);
      sim.partition(isolated === 0 ? [0, 1, 1] : [0, 0, 1]);
      sim.runUntil(12_000);
      // No pre-vote reached a majority, so the isolated node never proclaimed.
      expect(sim.node(isolated).durable.epoch).toBe(before);
      sim.heal(HEALTHY);
      sim.runUntil(15_000);
      const leader = sim.activeLeaders()[0] as (typeof sim.nodes)[number];
      const epoch = epochOf(leader.state!);
      expect(epoch).toBe(isolated === 0 ? before + 1 : before);
      expect(view(sim).filter((v) => v.endsWith(`:${leader.id}:${epoch}`)).length).toBe(3);
    }
  });

  it("manual failover: nobody is elected; promote works once, and is refused while that leader lives", () => {
    const sim = region({ failover: "manual" });
    sim.runUntil(5000);
    expect(view(sim)).toEqual(["n1:follower:-:0", "n2:follower:-:0", "n3:follower:-:0"]);
    expect(sim.promote(1, true)).toBeUndefined();
    sim.runUntil(5500);
    expect(view(sim)).toEqual(["n1:follower:n2:1", "n2:leader:n2:1", "n3:follower:n2:1"]);
    expect(sim.promote(0, true)).toBe("leader n2 is alive");
    sim.crash(1);
    sim.runUntil(8000);
    expect(view(sim)).toEqual(["n1:follower:-:1", "n2:down", "n3:follower:-:1"]);
  });
});

describe("election: wire format", () => {
  const idArb = fc.constantFrom(N1, N2, N3);
  const vvArb: fc.Arbitrary<VersionVector> = fc.dictionary(fc.constantFrom("us-east-1", "eu-west-2"), fc.integer({ min: 1, max: 2 ** 40 }), { maxKeys: 2 });
  const roundArb = fc.integer({ min: -(2 ** 40), max: 2 ** 40 });
  const msgArb: fc.Arbitrary<ElectionMsg> = fc
    .tuple(
      idArb,
      fc.nat(),
      fc.oneof(
        fc.constantFrom({ type: "election" as const }, { type: "answer" as const }, { type: "stepdown" as const }),
        fc.record({ type: fc.constantFrom("prevote" as const, "prevote_ok" as const), round: roundArb }),
        fc.record({ type: fc.constant("alive" as const), leader: idArb }),
        fc.record({ type: fc.constantFrom("coordinator" as const, "accept" as const, "heartbeat_ack" as const), vv: vvArb, round: roundArb }),
        fc.record({ type: fc.constant("heartbeat" as const), round: roundArb }),
        fc.record({
          type: fc.constant("reject" as const),
          code: fc.constantFrom("stale_epoch" as const, "superseded" as const, "voted_other" as const, "leader_alive" as const),
          reason: fc.string({ maxLength: 300 }),
        }),
      ),
    )
    .map(([from, epoch, body]) => ({ from, epoch, ...body }) as ElectionMsg);

  it("every message survives JSON and the parser unchanged", () => {
    fc.assert(
      fc.property(msgArb, (m) => {
        const parsed = parseElectionMsg(JSON.parse(JSON.stringify(m)));
        expect(parsed).toEqual({ ok: true, msg: m });
      }),
    );
  });

  it("refuses malformed messages with a reason, and never throws", () => {
    const bad: unknown[] = [
      null,
      [],
      "x",
      { epoch: 1, type: "election" },
      { from: "a b", epoch: 1, type: "election" },
      { from: "n1", epoch: -1, type: "election" },
      { from: "n1", epoch: 1.5, type: "election" },
      { from: "n1", epoch: 1, type: "nope" },
      { from: "n1", epoch: 1, type: "alive" },
      { from: "n1", epoch: 1, type: "heartbeat" },
      { from: "n1", epoch: 1, type: "heartbeat", round: "1" },
      { from: "n1", epoch: 1, type: "accept", vv: { n1: -1 }, round: 1 },
      { from: "n1", epoch: 1, type: "accept", vv: JSON.parse('{"__proto__": 1}'), round: 1 },
      { from: "n1", epoch: 1, type: "reject", code: "because", reason: "" },
      { from: "n1", epoch: 1, type: "reject", code: "superseded" },
    ];
    for (const b of bad) {
      const parsed = parseElectionMsg(b);
      expect(parsed.ok, JSON.stringify(b)).toBe(false);
      if (!parsed.ok) expect(parsed.error).toMatch(/^election message: /);
    }
    fc.assert(
      fc.property(fc.jsonValue(), (j) => {
        expect(typeof parseElectionMsg(j).ok).toBe("boolean");
      }),
    );
  });

  it("keeps only known fields and cuts long reasons", () => {
    const parsed = parseElectionMsg({ from: "n1", epoch: 2, type: "reject", code: "superseded", reason: "x".repeat(1000), extra: true });
    expect(parsed.ok && parsed.msg).toEqual({ from: "n1", epoch: 2, type: "reject", code: "superseded", reason: "x".repeat(300) });
  });
});
