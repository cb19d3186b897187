// Rotating GEOKV_CLUSTER_SECRET by rolling restarts, on real processes, under
// write load. A node proves with the first listed secret and accepts any, so
// the order that never refuses a link is (README, "Rotating the cluster
// secret"): every node on `old`; then every node, one at a time, on
// `old,new` (proves old, accepts both); then on `new,old` (proves new: every
// node already accepts it); then on `new` alone (nobody proves old any more).
// SDK clients write all the while with ack=region (retrying only as the SDK
// does on failover); every acknowledged write is read back on every node, and
// no link is refused for a secret in any node's log or /status. The test
// ends by restarting one node on the retired secret and seeing that refusal
// counted, so a refusal would have been caught.

import { readFileSync } from "node:fs";
import { afterAll, expect, it } from "vitest";
import { createClient, type GeokvClient } from "../../src/client/index.js";
import { call, regionLeader, startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";

let c: ProcCluster | undefined;
const clients: GeokvClient[] = [];
afterAll(async () => {
  for (const cl of clients) cl.close();
  await c?.close();
});

const WRITERS = 3;
/** Acknowledged writes between two restarts, so every step runs under load. */
const ACKS_PER_STEP = 40;
const PHASES: readonly string[] = ["old-secret,new-secret", "new-secret,old-secret", "new-secret"];
/** What nodes say when a link is refused for its secret (handshake.ts). */
const SECRET_REFUSAL = /wrong cluster secret|peer did not authenticate|unexpected proof/;

/** Log lines, across every node's log, that report a link refused for its secret. */
function secretRefusals(cl: ProcCluster, nodes: readonly string[]): string[] {
  return nodes.flatMap((n) => readFileSync(cl.logFile(n), "utf8").split("\n").filter((l) => SECRET_REFUSAL.test(l)).map((l) => `${n}: ${l.slice(0, 200)}`));
}

/** True when every node answers and sees every other as up. */
async function meshUp(cl: ProcCluster, nodes: readonly string[]): Promise<boolean> {
  for (const n of nodes) {
    const s = await call(`${cl.urls.get(n)}/status`).catch(() => null);
    if (s?.status !== 200 || !s.body.peers.every((p: { state: string }) => p.state === "up")) return false;
  }
  return true;
}

it("rotates the cluster secret node by node under write load: no link refused, no write failed or lost", async () => {
  c = await startProcCluster([{ region: "r", nodes: 3 }], { env: { GEOKV_CLUSTER_SECRET: "old-secret", GEOKV_LOG_LEVEL: "info" } });
  const cluster = c;
  const nodes = cluster.regions.get("r") as string[];
  const urls = nodes.map((n) => cluster.urls.get(n) as string);
  await regionLeader(cluster, "r");
  await waitFor("every link up on the old secret", () => meshUp(cluster, nodes), 20_000);

  const counts = { attempted: 0, acknowledged: 0, failed: 0 };
  const failures: string[] = [];
  const acked = new Map<string, number>();
  let stop = false;
  const loops = Array.from({ length: WRITERS }, async (_, w) => {
    const client = createClient({ nodes: urls, timeoutMs: 20_000 });
    clients.push(client);
    for (let i = 0; !stop; i++) {
      const key = `rot-${w}-${i}`;
      counts.attempted++;
      try {
        await client.put(key, i, { ack: "region" });
        counts.acknowledged++;
        acked.set(key, i);
      } catch (err) {
        counts.failed++;
        failures.push(`${key}: ${String(err)}`);
      }
    }
  });
  const progress = async (what: string) => {
    const from = counts.acknowledged;
    await waitFor(`${ACKS_PER_STEP} more acknowledged writes ${what}`, () => counts.acknowledged >= from + ACKS_PER_STEP, 30_000);
  };

  try {
    await progress("on the old secret");
    for (const secrets of PHASES) {
      for (const node of nodes) {
        await cluster.stop(node, "SIGTERM");
        await cluster.start(node, { GEOKV_CLUSTER_SECRET: secrets });
        await waitFor(`every link up after ${node} restarted with ${secrets}`, () => meshUp(cluster, nodes), 30_000);
        await progress(`after ${node} restarted with ${secrets}`);
        expect(secretRefusals(cluster, nodes), `after ${node} restarted with ${secrets}`).toEqual([]);
      }
    }
  } finally {
    stop = true;
    await Promise.all(loops);
  }

  // Every node holds every acknowledged write.
  const leaderVv = await waitFor("a leader's version vector", async () => {
    for (const u of urls) {
      const s = await call(`${u}/status`).catch(() => null);
      if (s?.body.role === "leader") return s.body.vv as Record<string, number>;
    }
    return null;
  });
  let lost = 0;
  for (const [i, u] of urls.entries()) {
    await waitFor(`${nodes[i]} caught up`, async () => {
      const vv = (await call(`${u}/status`)).body.vv as Record<string, number>;
      return Object.entries(leaderVv).every(([n, seq]) => (vv[n] ?? 0) >= seq);
    }, 20_000);
    for (const [key, value] of acked) {
      const r = await call(`${u}/kv/${key}`);
      if (r.status !== 200 || r.body.value !== value) lost++;
    }
  }
  const refusedInStatus = (await Promise.all(urls.map(async (u) => ((await call(`${u}/status`)).body.refusedBy ?? []).length))).reduce((a, b) => a + b, 0);
  const refusals = secretRefusals(cluster, nodes);
  console.log(`secret rotation: writes attempted ${counts.attempted}, acknowledged ${counts.acknowledged}, failed ${counts.failed}; acknowledged writes lost ${lost} (of ${acked.size}, read on ${nodes.length} nodes); links refused for a secret: ${refusals.length} in logs, ${refusedInStatus} in /status; restarts ${PHASES.length * nodes.length}`);
  expect(failures).toEqual([]);
  expect(counts.failed).toBe(0);
  expect(lost).toBe(0);
  expect(refusals).toEqual([]);
  expect(refusedInStatus).toBe(0);

  // The check above can fail: a node back on the retired secret is refused, and that is counted.
  const last = nodes[nodes.length - 1] as string;
  await cluster.stop(last, "SIGTERM");
  await cluster.start(last, { GEOKV_CLUSTER_SECRET: "old-secret" });
  await waitFor("the retired secret is refused", () => secretRefusals(cluster, nodes).length > 0, 20_000);
  await waitFor("and shown in /status", async () => ((await call(`${cluster.urls.get(last)}/status`)).body.refusedBy ?? []).length > 0, 20_000);
});
