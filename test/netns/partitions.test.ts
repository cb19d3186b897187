// Real partitions: nine `geokv node` processes, one per network namespace,
// cut apart by iptables DROP rules in the kernel (test/support/netns.ts),
// under writes to every namespace (kv, counters, sets, docs) of every region.
// Each scenario checks its own property, then convergence after heal (no
// acknowledged write lost, none applied twice, every node the same), and
// prints one report line. The scenarios run one after another in one file:
// nine nodes at a time is what two cores carry without elections from load.

import { afterAll, afterEach, describe, expect, test } from "vitest";
import { leftovers, startNetnsCluster, type NetnsCluster } from "../support/netns.js";
import { converge, elections, electionsBetween, reportLine, settledLeaders, startWriters, writesFlow, type Writers } from "../support/netns-workload.js";
import { waitFor } from "../support/cluster-files.js";

const HEARTBEAT_MS = 100;
/** Also the lease: a leader that no majority confirmed for this long steps down. */
const ELECTION_TIMEOUT_MS = 1000;
const ENV = {
  GEOKV_HEARTBEAT_MS: String(HEARTBEAT_MS),
  GEOKV_ELECTION_TIMEOUT_MS: String(ELECTION_TIMEOUT_MS),
  // A write to a node without a leader gives up soon: the writers move on.
  GEOKV_WRITE_WAIT_MS: "1000",
};
const REGIONS = [
  { region: "us-east", nodes: 3 },
  { region: "eu-west", nodes: 3 },
  { region: "ap-south", nodes: 3 },
];
/**
 * Writes each region must get acknowledged in every namespace while a fault is
 * in place: as many writer iterations as the 20 writes over kv and counters
 * were, now with a floor under each namespace.
 */
const WRITES_DURING_FAULT = 10;
const SCENARIO_TIMEOUT_MS = 90_000;
/**
 * Between the cut and the end of the old leader's lease: a confirmation in
 * flight when the rules went in, and ticks (every heartbeat / 2). The node
 * checks its lease on the monotonic clock when it takes a write, so load
 * delays its answers but cannot stretch the lease.
 */
const LEASE_SLACK_MS = 2 * HEARTBEAT_MS;
/** Writes sent straight to an isolated leader, one per this many ms. */
const PROBE_GAP_MS = 50;
const FLAP_CYCLES = 10;
/** Acknowledged writes per region and namespace in each half of a flap cycle. */
const FLAP_WRITES = 2;
/** Acknowledged writes per region and namespace that show the writers are going before a step. */
const WRITES_TO_START = 3;
/** A write sent to a stopped node is answered after it wakes, forwards and waits for a leader. */
const WOKEN_CALL_TIMEOUT_MS = 15_000;

let cluster: NetnsCluster | null = null;
let writers: Writers | null = null;
const closed: { prefix: string; pids: number[] }[] = [];

/** A fresh cluster with settled leaders, and writers running on it. */
async function setUp(): Promise<{ c: NetnsCluster; w: Writers; before: Map<string, number>; leaders: Map<string, { node: string; epoch: number }> }> {
  const c = await startNetnsCluster(REGIONS, { env: ENV });
  cluster = c;
  const leaders = await settledLeaders(c);
  const before = await elections(c);
  const w = startWriters(c);
  writers = w;
  await writesFlow(c, w, WRITES_TO_START);
  return { c, w, before, leaders };
}

/** Stops the writers, waits for convergence, prints the report line and checks it. */
async function finish(scenario: string, c: NetnsCluster, w: Writers, before: Map<string, number>, healedAt: number, extra = ""): Promise<number> {
  await w.stop();
  const r = await converge(c, w, healedAt);
  const e = electionsBetween(before, await elections(c));
  console.log(`${reportLine(scenario, { ...r, elections: e })}${extra === "" ? "" : ` ${extra}`}`);
  expect(r.lost).toBe(0);
  expect(r.duplicated).toBe(0);
  return e;
}

/** Every node of a region, and every node of the others. */
function regionAndRest(c: NetnsCluster, region: string): [string[], string[]] {
  const inside = c.regions.get(region) ?? [];
  return [inside, c.nodes.filter((n) => !inside.includes(n))];
}

afterEach(async () => {
  await writers?.stop();
  writers = null;
  if (cluster !== null) {
    closed.push({ prefix: cluster.prefix, pids: cluster.pids() });
    await cluster.close();
    cluster = null;
  }
});

afterAll(() => {
  // Nothing of any scenario's run is left: namespaces, links, processes.
  for (const run of closed) expect(leftovers(run.prefix, run.pids)).toEqual([]);
});

describe("real partitions (network namespaces, iptables)", () => {
  test("a region split, then heal: every region keeps writing and all nine converge", async () => {
    const { c, w, before } = await setUp();
    const [inside, rest] = regionAndRest(c, "us-east");
    c.cut(inside, rest);
    await writesFlow(c, w, WRITES_DURING_FAULT);
    c.heal();
    await finish("region-split", c, w, before, Date.now());
  }, SCENARIO_TIMEOUT_MS);

  test("a leader cut off from its own region: the majority elects another, the old one stops acknowledging within its lease", async () => {
    const { c, w, before, leaders } = await setUp();
    const old = leaders.get("eu-west") as { node: string; epoch: number };
    const peers = (c.regions.get("eu-west") ?? []).filter((n) => n !== old.node);
    c.cut([old.node], peers);
    // From here on no confirmation reaches it: its lease runs out within ELECTION_TIMEOUT_MS.
    const cutAt = Date.now();
    // Writes straight to the old leader from the cut on, each with the time it was sent.
    const probes: Promise<{ sentMs: number; key: string; own: boolean }>[] = [];
    let probing = true;
    const probeLoop = (async () => {
      for (let i = 1; probing; i++) {
        const key = `w-eu-west-probe-${i}`;
        const sentMs = Date.now() - cutAt;
        probes.push(c.call(old.node, "PUT", `/kv/${key}?ack=local`, { i }).then(
          (a) => ({ sentMs, key, own: a.status === 200 && String(a.body.token).startsWith(`${old.node}:`) }),
          () => ({ sentMs, key, own: false }),
        ));
        await new Promise((r) => setTimeout(r, PROBE_GAP_MS));
      }
    })();
    await successorOf(c, peers, old.epoch);
    const stepDownMs = await waitFor(`${old.node} steps down`, async () => ((await c.call(old.node, "GET", "/status")).body.role !== "leader" ? Date.now() - cutAt : null), 10_000, 20);
    await waitFor("probes past the lease", () => Date.now() - cutAt > ELECTION_TIMEOUT_MS + LEASE_SLACK_MS + 5 * PROBE_GAP_MS, 10_000);
    probing = false;
    await probeLoop;
    const acked = (await Promise.all(probes)).filter((p) => p.own);
    // What it acknowledged within its lease is a write like any other: it must survive.
    w.ledgers.get("eu-west")?.ackedKeys.push(...acked.map((p) => p.key));
    // Its lease ends at most ELECTION_TIMEOUT_MS after the last round a peer
    // confirmed, sent before the cut. A write sent later is processed later
    // still, so however loaded the machine, none may be acknowledged as leader.
    expect(acked.filter((p) => p.sentMs >= ELECTION_TIMEOUT_MS + LEASE_SLACK_MS)).toEqual([]);
    const lastAckMs = Math.max(-1, ...acked.map((p) => p.sentMs));
    await writesFlow(c, w, WRITES_DURING_FAULT);
    const healedAt = Date.now();
    c.heal();
    await finish("leader-isolated", c, w, before, healedAt, `last-own-ack-sent=+${lastAckMs}ms stepdown=+${stepDownMs}ms`);
  }, SCENARIO_TIMEOUT_MS);

  test("a one-way partition between two regions: writes flow through the third and all nine converge", async () => {
    const { c, w, before } = await setUp();
    const usEast = c.regions.get("us-east") ?? [];
    const euWest = c.regions.get("eu-west") ?? [];
    // eu-west drops what us-east sends; TCP needs both ways, so the pair's links die
    // and ops between them can only travel through ap-south.
    c.cut(usEast, euWest, "one-way");
    await writesFlow(c, w, WRITES_DURING_FAULT);
    // Converged with the cut still in place: through the third region.
    await finish("one-way", c, w, before, Date.now());
    c.heal();
  }, SCENARIO_TIMEOUT_MS);

  test("flapping: 10 cycles of cut and heal between regions converge with no election in any region", async () => {
    const { c, w, before } = await setUp();
    const regions = [...c.regions.keys()];
    for (let cycle = 0; cycle < FLAP_CYCLES; cycle++) {
      const [inside, rest] = regionAndRest(c, regions[cycle % regions.length] as string);
      c.cut(inside, rest);
      await writesFlow(c, w, FLAP_WRITES);
      c.heal();
      await writesFlow(c, w, FLAP_WRITES);
    }
    const e = await finish("flapping", c, w, before, Date.now());
    // A partition between regions is not a failure inside one.
    expect(e).toBe(0);
  }, SCENARIO_TIMEOUT_MS);

  test("SIGKILL of a leader during a region split, restart, heal: all nine converge", async () => {
    const { c, w, before, leaders } = await setUp();
    const [inside, rest] = regionAndRest(c, "ap-south");
    const old = leaders.get("ap-south") as { node: string; epoch: number };
    c.cut(inside, rest);
    await writesFlow(c, w, WRITES_TO_START);
    await c.stop(old.node, "SIGKILL");
    await successorOf(c, inside.filter((n) => n !== old.node), old.epoch);
    await writesFlow(c, w, WRITES_DURING_FAULT);
    await c.start(old.node);
    const healedAt = Date.now();
    c.heal();
    await finish("sigkill-in-split", c, w, before, healedAt);
  }, SCENARIO_TIMEOUT_MS);

  test("SIGSTOP of a leader past its lease, then SIGCONT: nothing acknowledged under its old epoch", async () => {
    const { c, w, before, leaders } = await setUp();
    const old = leaders.get("us-east") as { node: string; epoch: number };
    const peers = (c.regions.get("us-east") ?? []).filter((n) => n !== old.node);
    c.pause(old.node);
    // Sent while it is stopped: they wait in its socket buffer, the first thing it sees on waking.
    const asleep = [1, 2, 3].map((i) => c.call(old.node, "PUT", `/kv/asleep-${i}?ack=local`, { i }, WOKEN_CALL_TIMEOUT_MS).catch(() => null));
    // Held for two leases (the point of the scenario) and until the others have a new leader.
    await Promise.all([new Promise((r) => setTimeout(r, 2 * ELECTION_TIMEOUT_MS)), successorOf(c, peers, old.epoch)]);
    c.resume(old.node);
    const woken = [1, 2, 3].map((i) => c.call(old.node, "PUT", `/kv/woken-${i}?ack=local`, { i }, WOKEN_CALL_TIMEOUT_MS).catch(() => null));
    const answers = await Promise.all([...asleep, ...woken]);
    // A 200 whose token names the old leader's own op was committed by it as leader: its old epoch.
    const stale = answers.filter((a) => a?.status === 200 && String(a.body.token).startsWith(`${old.node}:`));
    expect(stale).toEqual([]);
    const healedAt = Date.now();
    const forwarded = answers.filter((a) => a?.status === 200).length - stale.length;
    await finish("sigstop", c, w, before, healedAt, `old-epoch-acks=${stale.length} forwarded=${forwarded}/${answers.length}`);
  }, SCENARIO_TIMEOUT_MS);
});

/** Waits until one of `peers` leads with an epoch above `epoch`; returns it. */
async function successorOf(c: NetnsCluster, peers: readonly string[], epoch: number): Promise<string> {
  return waitFor(`a leader among ${peers.join(", ")} with an epoch above ${epoch}`, async () => {
    for (const n of peers) {
      const s = await c.call(n, "GET", "/status").catch(() => null);
      if (s?.body.role === "leader" && s.body.epoch > epoch) return n;
    }
    return null;
  }, 15_000, 50);
}
