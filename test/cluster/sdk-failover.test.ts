// The SDK through a leader kill, on real processes: concurrent clients keep
// incrementing a counter and writing keys while the region's leader is
// SIGKILLed; every call succeeds (the SDK waits out the election and
// retries), and every write is applied exactly once (one Idempotency-Key per
// write, honoured by whichever node ends up answering the retry).

import { afterAll, expect, it } from "vitest";
import { createClient, type GeokvClient } from "../../src/client/index.js";
import { call, startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";

let c: ProcCluster | undefined;
const clients: GeokvClient[] = [];
afterAll(async () => {
  for (const cl of clients) cl.close();
  await c?.close();
});

it("SDK writes through a leader kill all succeed exactly once", async () => {
  c = await startProcCluster([{ region: "k", nodes: 3 }], { env: { GEOKV_LOG_LEVEL: "warn" } });
  const cluster = c;
  const nodes = cluster.regions.get("k") as string[];
  const urls = nodes.map((n) => cluster.urls.get(n) as string);
  const leaderOf = async () => {
    const s = await Promise.all(urls.map((u) => call(`${u}/status`).catch(() => null)));
    const l = s.filter((x) => x?.body.role === "leader");
    return l.length === 1 ? (l[0]?.body.node as string) : null;
  };
  const first = await waitFor("a leader", leaderOf, 20_000);

  let increments = 0;
  const written = new Map<string, number>();
  let phase: "before" | "after" | "done" = "before";
  let afterKill = 0;
  const loops = Array.from({ length: 4 }, async (_, w) => {
    const client = createClient({ nodes: urls, timeoutMs: 15_000 });
    clients.push(client);
    for (let i = 0; phase !== "done"; i++) {
      // Every call must succeed: a rejection fails the test through Promise.all.
      expect(await client.incr("through-kill", 1)).toBeGreaterThan(0);
      increments++;
      await client.put(`k${w}-${i}`, i);
      written.set(`k${w}-${i}`, i);
      if (phase === "after") afterKill++;
    }
  });
  await waitFor("writes before the kill", () => increments >= 40);
  await cluster.stop(first, "SIGKILL");
  phase = "after";
  await waitFor("writes after the kill, through a new leader", () => afterKill >= 40, 30_000);
  phase = "done";
  await Promise.all(loops);

  const survivor = urls[nodes.indexOf(nodes.find((n) => n !== first) as string)] as string;
  const reader = createClient({ nodes: [survivor] });
  clients.push(reader);
  await waitFor("the survivors agree on a leader", leaderOf, 20_000);
  // Exactly once: the counter equals the number of successful increments.
  await waitFor("the counter settles", async () => (await reader.counter("through-kill")) === increments, 10_000);
  expect(await reader.counter("through-kill")).toBe(increments);
  for (const [k, v] of written) expect((await reader.get(k))?.value).toBe(v);
});
