// Region durability on real processes: a follower killed with SIGKILL under
// ack=region load comes back and catches up from the op log, and no
// acknowledged write is missing anywhere; a node started with the wrong
// cluster secret is refused by its peers, keeps serving, and says why in its
// log and /status.

import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { call, regionLeader, startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";

const clusters: ProcCluster[] = [];
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.close()));
});

describe("a follower killed under ack=region load", () => {
  it("catches up after restart and no acknowledged write is lost", async () => {
    const c = await startProcCluster([{ region: "r", nodes: 3 }], { env: { GEOKV_CLUSTER_SECRET: "s3cret", GEOKV_LOG_LEVEL: "warn" } });
    clusters.push(c);
    const url = (n: string) => c.urls.get(n) as string;
    const { leader: L, followers } = await regionLeader(c, "r");
    const [killed, other] = followers as [string, string];

    const acked = new Map<string, number>();
    let stop = false;
    let sent = 0;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const key = `w${w}-${i}`;
        sent++;
        const r = await call(`${url(L)}/kv/${key}?ack=region`, "PUT", i).catch(() => null);
        if (r?.status === 200) acked.set(key, i);
      }
    });
    await waitFor("some acknowledged writes", () => acked.size >= 100);
    await c.stop(killed, "SIGKILL");
    const atKill = acked.size;
    await waitFor(`writes still acknowledged with ${killed} down (${L} + ${other} are a majority)`, () => acked.size >= atKill + 200);
    await c.start(killed);
    await waitFor("more writes after the restart", () => acked.size >= atKill + 400);
    stop = true;
    await Promise.all(writers);

    const leaderVv = (await call(`${url(L)}/status`)).body.vv;
    await waitFor(`${killed} caught up with the leader`, async () => JSON.stringify((await call(`${url(killed)}/status`)).body.vv) === JSON.stringify(leaderVv), 20_000);
    for (const node of [L, killed, other]) {
      await waitFor(`${node} caught up`, async () => JSON.stringify((await call(`${url(node)}/status`)).body.vv) === JSON.stringify(leaderVv), 20_000);
      let missing = 0;
      for (const [key, value] of acked) {
        const r = await call(`${url(node)}/kv/${key}`);
        if (r.status !== 200 || r.body.value !== value) missing++;
      }
      expect(missing, `${node}: acknowledged writes missing of ${acked.size} (sent ${sent})`).toBe(0);
    }
  });
});

describe("a node with the wrong cluster secret", () => {
  it("is refused by its peers, keeps serving, and says why", async () => {
    const c = await startProcCluster([{ region: "s", nodes: 3 }], {
      env: { GEOKV_CLUSTER_SECRET: "right-secret", GEOKV_LOG_LEVEL: "info" },
      nodeEnv: { "s-3": { GEOKV_CLUSTER_SECRET: "wrong-secret" } },
    });
    clusters.push(c);
    const url = (n: string) => c.urls.get(n) as string;
    await waitFor("s-3 reports the refusal in /status", async () => {
      const s = await call(`${url("s-3")}/status`);
      return (s.body.refusedBy ?? []).some((x: { reason: string }) => /secret/.test(x.reason));
    }, 20_000);
    // The good nodes link up with each other, never with s-3.
    await waitFor("s-1 and s-2 linked", async () => {
      const s = await call(`${url("s-1")}/status`);
      return s.body.peers.find((p: { node: string }) => p.node === "s-2").state === "up";
    });
    const s1 = await call(`${url("s-1")}/status`);
    expect(s1.body.peers.find((p: { node: string }) => p.node === "s-3").state).toBe("down");
    // s-3 still serves HTTP, and its log says why it is alone.
    expect((await call(`${url("s-3")}/health`)).status).toBe(200);
    await waitFor("the refusal is in s-3's log", () => /secret/i.test(readFileSync(c.logFile("s-3"), "utf8")));
    await waitFor("the refusal is in s-1's log", () => /s-3/.test(readFileSync(c.logFile("s-1"), "utf8")) && /secret/i.test(readFileSync(c.logFile("s-1"), "utf8")));
  });
});
