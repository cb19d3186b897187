// Regression: a node cut off from its own region must not fence its region's
// real leader out of every other region. Three regions of three nodes on real
// processes. The us-east leader L is cut off from its two region peers only
// (both directions, both sides), while its links to the other regions stay
// up. The majority elects a new leader N. For the whole cut: L keeps its
// epoch (no epoch without a majority), no node refuses a batch as stale, every
// write N acknowledges reaches every node of the other regions, and /health
// stays quick everywhere (a sender whose batches are refused must not spin).
// After healing the region has one agreed leader and L follows it.

import { afterAll, describe, expect, it } from "vitest";
import { agreedLeader, call, startProcCluster, waitFor, type NodeStatus as Status, type ProcCluster } from "../support/proc-cluster.js";

const clusters: ProcCluster[] = [];
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.close()));
});


const REGIONS = ["us-east", "eu-west", "ap-south"] as const;
/** The scenario: how long the cut lasts, counted from the moment it is made. */
const CUT_MS = 10_000;
const POLL_EVERY_MS = 200;
/**
 * The defect makes the new leader's /health take 2-8 s while the others answer
 * in milliseconds. A node is slow when its 90th-percentile /health is at least
 * this, or SLOW_FACTOR times the median node's when the whole machine is
 * loaded (a shared 2-core box): the test then measures one node against its
 * peers, not against the machine's speed.
 */
const HEALTH_BOUND_MS = 1000;
const SLOW_FACTOR = 3;
const MAX_WRITES = 400;
const WRITE_EVERY_MS = 25;



/** Sum of a Prometheus counter (all label sets) on a node's /metrics; 0 when absent. */
async function counter(c: ProcCluster, node: string, name: string): Promise<number> {
  const r = await fetch(`${c.urls.get(node)}/metrics`, { signal: AbortSignal.timeout(15_000) });
  let sum = 0;
  for (const line of (await r.text()).split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) sum += Number(m[3]);
  }
  return sum;
}

/** The q-quantile of `xs` (nearest rank); 0 for none. */
function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
}

/** Milliseconds a GET /health takes (a timeout or error counts as its full wait). */
async function healthMs(url: string): Promise<number> {
  const t0 = performance.now();
  try {
    const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) });
    await r.text();
  } catch {
    // counted as slow: the elapsed time below
  }
  return performance.now() - t0;
}

describe("a node cut off from its own region", () => {
  it("does not raise its epoch or fence its region's new leader out of the other regions", async () => {
    const c = await startProcCluster(REGIONS.map((region) => ({ region, nodes: 3 })), {
      env: { GEOKV_LOG_LEVEL: "info" },
      args: ["--write-wait-ms", "1500"],
    });
    clusters.push(c);
    const all = [...c.urls.keys()];
    const east = c.regions.get("us-east") as string[];
    const elsewhere = all.filter((n) => !east.includes(n));

    for (const r of REGIONS) await waitFor(`a leader in ${r}`, () => agreedLeader(c, c.regions.get(r) as string[]), 20_000);
    const first = (await agreedLeader(c, east)) as Status;
    const L = first.node;
    // Usually the best-ranked node (the harshest case: nobody ranks above it, so
    // it goes straight to candidacy); on a loaded machine another may win first,
    // and the rule under test is the same for it.
    const E = first.epoch;
    const peers = east.filter((n) => n !== L);
    const writeTo = peers[1] as string;

    // Cut L off from its two region peers only, both ways, on both sides.
    const cutAt = Date.now();
    expect((await call(`${c.urls.get(L)}/admin/faults`, "POST", { block: peers })).status).toBe(200);
    for (const n of peers) expect((await call(`${c.urls.get(n)}/admin/faults`, "POST", { block: [L] })).status).toBe(200);

    // An ack=region writer against one of L's peers (forwarded to its leader).
    const acked = new Map<string, number>();
    let writing = true;
    let attempts = 0;
    const writer = (async () => {
      for (let i = 0; writing && i < MAX_WRITES && Date.now() - cutAt < CUT_MS; i++) {
        attempts++;
        const t0 = Date.now();
        const r = await call(`${c.urls.get(writeTo)}/kv/cut-${i}?ack=region`, "PUT", i).catch(() => null);
        if (r?.status === 200) acked.set(`cut-${i}`, i);
        const rest = WRITE_EVERY_MS - (Date.now() - t0);
        if (rest > 0) await new Promise((res) => setTimeout(res, rest));
      }
    })();

    // Poll /health on every node and L's epoch for the whole cut.
    const maxHealth = new Map<string, number>(all.map((n) => [n, 0]));
    const healthSamples = new Map<string, number[]>(all.map((n) => [n, []]));
    const epochsOfL: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const t0 = Date.now();
        const [ms, st] = await Promise.all([
          Promise.all(all.map((n) => healthMs(c.urls.get(n) as string))),
          call(`${c.urls.get(L)}/status`).catch(() => null),
        ]);
        all.forEach((n, i) => {
          maxHealth.set(n, Math.max(maxHealth.get(n) ?? 0, ms[i] as number));
          healthSamples.get(n)?.push(ms[i] as number);
        });
        if (st?.status === 200) epochsOfL.push((st.body as Status).epoch);
        const rest = POLL_EVERY_MS - (Date.now() - t0);
        if (rest > 0) await new Promise((res) => setTimeout(res, rest));
      }
    })();

    try {
      const N = await waitFor("the majority elects a new leader", async () => {
        const l = await agreedLeader(c, peers);
        return l && l.epoch > E ? l : null;
      }, 20_000);

      // The scenario: the cut lasts about CUT_MS in all.
      await waitFor("the end of the cut", () => Date.now() - cutAt >= CUT_MS, CUT_MS + 5_000, 100);
      writing = false;
      await writer;

      // (1) Every acknowledged write reaches every node of the other regions, cut still in place.
      const missing = new Map<string, Set<string>>(elsewhere.map((n) => [n, new Set(acked.keys())]));
      const missingTotal = () => [...missing.values()].reduce((s, m) => s + m.size, 0);
      let readBackError: unknown = null;
      try {
        await waitFor("acknowledged writes on every node of the other regions", async () => {
          for (const [n, keys] of missing) {
            for (const key of [...keys]) {
              const r = await call(`${c.urls.get(n)}/kv/${key}`);
              if (r.status === 200 && r.body.value === acked.get(key)) keys.delete(key);
            }
          }
          return missingTotal() === 0;
        }, 15_000, 250);
      } catch (err) {
        readBackError = err;
      }
      const cutMs = Date.now() - cutAt;
      polling = false;
      await poller;

      const lAfter = ((await call(`${c.urls.get(L)}/status`)).body as Status).epoch;
      const stale = new Map<string, number>();
      for (const n of all) stale.set(n, await counter(c, n, "geokv_stale_batches_rejected_total"));
      const staleTotal = [...stale.values()].reduce((s, v) => s + v, 0);
      const worstHealth = Math.max(...maxHealth.values());
      const p90 = new Map([...healthSamples].map(([n, xs]) => [n, quantile(xs, 0.9)]));
      const boundMs = Math.max(HEALTH_BOUND_MS, SLOW_FACTOR * quantile([...p90.values()], 0.5));
      const slowNodes = [...p90].filter(([, ms]) => ms >= boundMs).map(([n, ms]) => `${n}=${Math.round(ms)}`);
      const missingByNode = [...missing].filter(([, m]) => m.size > 0).map(([n, m]) => `${n}=${m.size}`);

      console.log(
        `isolated-node: L=${L} epoch before=${E} after=${lAfter} (samples max=${Math.max(...epochsOfL)}, n=${epochsOfL.length}); ` +
          `new leader ${N.node} epoch=${N.epoch}; writes acked during cut=${acked.size}/${attempts}; ` +
          `missing elsewhere=${missingTotal()} [${missingByNode.join(" ")}]; refused batches total=${staleTotal}; ` +
          `max /health ms=${Math.round(worstHealth)}, p90 bound ${Math.round(boundMs)} ms [slow: ${slowNodes.join(" ")}]; cut lasted ${cutMs} ms`,
      );

      expect(N.node).not.toBe(L);
      expect(acked.size, "writes acknowledged by the new leader during the cut").toBeGreaterThan(0);
      expect.soft(readBackError === null && missingTotal() === 0, `acknowledged writes missing on other regions: ${missingByNode.join(", ")}`).toBe(true);
      expect.soft(epochsOfL.length, "samples of L's epoch").toBeGreaterThan(10);
      expect.soft(epochsOfL.filter((e) => e !== E), `L's epoch samples other than ${E}`).toEqual([]);
      expect.soft(lAfter, "L's epoch at the end of the cut").toBe(E);
      expect.soft(Object.fromEntries(stale), "geokv_stale_batches_rejected_total per node").toEqual(Object.fromEntries(all.map((n) => [n, 0])));
      expect.soft(slowNodes, `nodes whose p90 /health was ${Math.round(boundMs)} ms or more`).toEqual([]);
    } finally {
      writing = false;
      polling = false;
      await Promise.all([writer, poller]);
      // Heal.
      for (const n of east) await call(`${c.urls.get(n)}/admin/faults`, "POST", { clear: true });
    }

    const healed = await waitFor("exactly one agreed leader in us-east after healing", () => agreedLeader(c, east), 20_000);
    expect(healed.node).not.toBe(L);
    const lStatus = ((await call(`${c.urls.get(L)}/status`)).body as Status);
    expect(lStatus.role).toBe("follower");
    expect(lStatus.leader).toBe(healed.node);
  }, 90_000);
});
