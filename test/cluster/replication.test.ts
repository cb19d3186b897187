// Replication on real processes: three regions of three nodes on loopback,
// each node a child process with its own SQLite file, linked by WebSockets.
// Writes in every region reach all nine nodes; a partitioned region keeps
// taking writes and, after healing, every node holds the same state with the
// same kv winners, counters equal to the sum of acknowledged deltas, add-wins
// sets, identical docs and the conflicts recorded; ops travel transitively
// around a cut link.

import * as Y from "yjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";

const REGIONS = ["us", "eu", "ap"];
let c: ProcCluster;

const url = (node: string) => c.urls.get(node) as string;
const leader = (region: string) => `${region}-1`;
const all = () => [...c.urls.keys()];

async function faults(node: string, body: unknown) {
  const r = await call(`${url(node)}/admin/faults`, "POST", body);
  expect(r.status).toBe(200);
}

/** Everything a node holds for the keys under test, in one comparable value. */
async function snapshot(node: string, keys: { kv: string[]; counters: string[]; sets: string[]; docs: string[] }) {
  const out: Record<string, unknown> = {};
  for (const k of keys.kv) {
    const r = await call(`${url(node)}/kv/${encodeURIComponent(k)}`);
    out[`kv:${k}`] = r.status === 200 ? { value: r.body.value, version: r.body.version } : r.status;
  }
  for (const k of keys.counters) out[`counter:${k}`] = (await call(`${url(node)}/counters/${k}`)).body.value;
  for (const k of keys.sets) out[`set:${k}`] = (await call(`${url(node)}/sets/${k}`)).body.members;
  for (const k of keys.docs) {
    const res = await fetch(`${url(node)}/docs/${k}`);
    const doc = new Y.Doc();
    Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()));
    out[`doc:${k}`] = doc.getText("t").toString();
  }
  return out;
}

async function converged(keys: Parameters<typeof snapshot>[1]) {
  const snaps = await Promise.all(all().map((n) => snapshot(n, keys)));
  const first = JSON.stringify(snaps[0]);
  return snaps.every((s) => JSON.stringify(s) === first) ? snaps[0] : null;
}

async function docUpdate(node: string, key: string, text: string, clientId: number) {
  const doc = new Y.Doc();
  doc.clientID = clientId;
  doc.getText("t").insert(0, text);
  const res = await fetch(`${url(node)}/docs/${key}/updates`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: Y.encodeStateAsUpdate(doc) });
  expect(res.status).toBe(200);
}

/** A counter's value in a /metrics text (0 when absent). */
function metric(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

beforeAll(async () => {
  c = await startProcCluster(REGIONS.map((region) => ({ region, nodes: 3 })), { env: { GEOKV_LOG_LEVEL: "warn" } });
  // Every node sees every other (8 links up) before the tests start.
  await waitFor("full mesh", async () => {
    const s = await Promise.all(all().map((n) => call(`${url(n)}/status`)));
    return s.every((r) => r.body.peers.filter((p: { state: string }) => p.state === "up").length === 8);
  }, 30_000);
}, 60_000);

afterAll(async () => {
  await c?.close();
});

describe("replication across three regions", () => {
  it("a write in each region is readable at all nine nodes", async () => {
    for (const r of REGIONS) {
      const w = await call(`${url(`${r}-2`)}/kv/hello-${r}`, "PUT", { from: r });
      expect(w.status).toBe(200);
    }
    await waitFor("all nine nodes have the three writes", async () => {
      for (const n of all()) for (const r of REGIONS) if ((await call(`${url(n)}/kv/hello-${r}`)).status !== 200) return false;
      return true;
    });
    for (const n of all()) expect((await call(`${url(n)}/kv/hello-eu`)).body.value).toEqual({ from: "eu" });
  });

  it("live streaming is served from the in-memory tail: a burst of concurrent writes reads nothing back from the op log", async () => {
    // A group commit commits several client batches in one transaction. The
    // replicator once took the node vector from storage after the first of
    // them, so it planned ops the tail did not have yet and read them back
    // from SQLite on every busy commit.
    const fromLog = async (n: string) => metric((await call(`${url(n)}/metrics`)).body as string, "geokv_replication_ops_from_log_total");
    const before = new Map(await Promise.all(all().map(async (n) => [n, await fromLog(n)] as const)));
    // 300 writes, 50 in flight: enough for group commits of several batches, light enough for a loaded machine.
    const writes: Awaited<ReturnType<typeof call>>[] = [];
    for (let i = 0; i < 300; i += 50) {
      writes.push(...(await Promise.all(Array.from({ length: 50 }, (_, k) => call(`${url(leader("us"))}/kv/burst-${(i + k) % 50}`, "PUT", { i: i + k })))));
    }
    expect(writes.every((w) => w.status === 200)).toBe(true);
    const top = new Map<string, number>();
    for (const w of writes) {
      const [origin, seq] = String(w.headers.get("x-geokv-token")).split(/:(?=\d+$)/);
      top.set(origin as string, Math.max(top.get(origin as string) ?? 0, Number(seq)));
    }
    await waitFor("all nine nodes hold the burst", async () => {
      for (const n of all()) {
        const vv = (await call(`${url(n)}/status`)).body.vv as Record<string, number>;
        for (const [o, seq] of top) if ((vv[o] ?? 0) < seq) return false;
      }
      return true;
    });
    for (const n of all()) expect({ node: n, opsFromLog: (await fromLog(n)) - (before.get(n) as number) }).toEqual({ node: n, opsFromLog: 0 });
  });

  it("a partitioned region keeps taking writes and everything converges after healing", async () => {
    // Cut eu off from both other regions, from both sides.
    for (const n of c.regions.get("eu") as string[]) await faults(n, { block: ["us", "ap"] });
    await waitFor("eu leader sees us and ap down", async () => {
      const s = await call(`${url(leader("eu"))}/status`);
      return s.body.peers.filter((p: { region: string; state: string }) => p.region !== "eu" && p.state === "up").length === 0;
    });

    const deltas: Record<string, number> = { us: 0, eu: 0, ap: 0 };
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        REGIONS.map(async (r, i) => {
          expect((await call(`${url(leader(r))}/kv/shared`, "PUT", { r, round })).status).toBe(200);
          const d = (i + 1) * (round % 2 === 0 ? 1 : -1) * 3;
          const w = await call(`${url(`${r}-${1 + (round % 3)}`)}/counters/hits`, "POST", { delta: d });
          expect(w.status).toBe(200);
          deltas[r] = (deltas[r] as number) + d;
          expect((await call(`${url(leader(r))}/sets/tags`, "POST", { add: [`${r}-${round}`, "common"] })).status).toBe(200);
        }),
      );
    }
    // eu removes "common" having seen only its own adds: the others' concurrent adds win.
    expect((await call(`${url(leader("eu"))}/sets/tags`, "POST", { remove: ["common", "eu-0"] })).status).toBe(200);
    await Promise.all(REGIONS.map((r, i) => docUpdate(leader(r), "notes", `${r}!`, 100 + i)));

    // During the partition eu has not seen the others' writes.
    expect((await call(`${url(leader("eu"))}/kv/shared`)).body.value.r).toBe("eu");

    for (const n of c.regions.get("eu") as string[]) await faults(n, { clear: true });
    const keys = { kv: ["shared", "hello-us"], counters: ["hits"], sets: ["tags"], docs: ["notes"] };
    const state = (await waitFor("all nine nodes identical", () => converged(keys), 20_000)) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

    expect(state["counter:hits"]).toBe(deltas.us! + deltas.eu! + deltas.ap!);
    const members: string[] = state["set:tags"];
    expect(members).toContain("common");
    expect(members).not.toContain("eu-0");
    for (const r of ["us", "ap"]) for (let round = 0; round < 5; round++) expect(members).toContain(`${r}-${round}`);
    const text: string = state["doc:notes"];
    for (const r of REGIONS) expect(text).toContain(`${r}!`);
    expect(text).toHaveLength(9);
    // The winner is the same everywhere (converged) and /conflicts names the key on every node.
    for (const n of all()) {
      const cs = await call(`${url(n)}/conflicts?limit=100`);
      expect(cs.body.items.map((x: { key: string }) => x.key)).toContain("shared");
    }
  });

  it("ops travel transitively when only us and eu are cut apart", async () => {
    for (const n of c.regions.get("us") as string[]) await faults(n, { block: ["eu"] });
    for (const n of c.regions.get("eu") as string[]) await faults(n, { block: ["us"] });
    expect((await call(`${url(leader("us"))}/kv/via-ap`, "PUT", "from us")).status).toBe(200);
    expect((await call(`${url(leader("eu"))}/kv/via-ap-2`, "PUT", "from eu")).status).toBe(200);
    await waitFor("eu nodes get us's write through ap", async () => {
      for (const n of c.regions.get("eu") as string[]) if ((await call(`${url(n)}/kv/via-ap`)).status !== 200) return false;
      for (const n of c.regions.get("us") as string[]) if ((await call(`${url(n)}/kv/via-ap-2`)).status !== 200) return false;
      return true;
    });
    // The links between us and eu really are down.
    const s = await call(`${url(leader("us"))}/status`);
    expect(s.body.peers.filter((p: { region: string; state: string }) => p.region === "eu" && p.state === "up")).toHaveLength(0);
    for (const n of [...(c.regions.get("us") as string[]), ...(c.regions.get("eu") as string[])]) await faults(n, { clear: true });
  });
});
