// Real partitions: nine `geokv node` processes, one per network namespace,
// cut apart by iptables DROP rules in the kernel (test/support/netns.ts),
// under writes to every region. Each scenario checks its own property, then
// convergence after heal (no acknowledged write lost, none applied twice), and
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
/** Writes each region must get acknowledged while a fault is in place. */
const WRITES_DURING_FAULT = 20;
const SCENARIO_TIMEOUT_MS = 90_000;

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
  await writesFlow(c, w, 5);
  return { c, w, before, leaders };
}

/** Stops the writers, waits for convergence, prints the report line and checks it. */
async function finish(scenario: string, c: NetnsCluster, w: Writers, before: Map<string, number>, healedAt: number): Promise<number> {
  await w.stop();
  const r = await converge(c, w, healedAt);
  const e = electionsBetween(before, await elections(c));
  console.log(reportLine(scenario, { ...r, elections: e }));
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
});
