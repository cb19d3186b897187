// Regional failover on real processes: one region of three nodes (plus, for
// the partition test, a second region so leaders are also watched from
// outside). SIGKILL the leader under ack=region load: a new leader with a
// higher epoch appears, no acknowledged write is lost, the old fencing token
// is no longer valid, and the killed node returns as a follower. Stepdown
// elects another node. A partition that isolates the leader leaves the
// minority without a leader while the majority elects one; after healing
// exactly one leader remains. Manual mode elects nothing until promoted.

import { setImmediate } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { agreedLeader, call, startProcCluster, statuses, waitFor, type NodeStatus as Status, type ProcCluster } from "../support/proc-cluster.js";

const clusters: ProcCluster[] = [];
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.close()));
});

describe("automatic failover", () => {
  it("a killed leader is replaced, loses no acknowledged write, and returns as a follower", async () => {
    const c = await startProcCluster([{ region: "r", nodes: 3 }], { env: { GEOKV_LOG_LEVEL: "info" } });
    clusters.push(c);
    const nodes = c.regions.get("r") as string[];
    const first = await waitFor("a leader", () => agreedLeader(c, nodes), 20_000);

    const acked = new Map<string, number>();
    let stop = false;
    const writers = Array.from({ length: 6 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        // Writers talk to whichever node they like: followers forward to the leader.
        const node = nodes[(w + i) % nodes.length] as string;
        if (!c.running(node)) {
          // Never a synchronous spin: once every node is down (the test failed
          // and afterAll killed them) this loop would block the worker for good.
          await setImmediate();
          continue;
        }
        const r = await call(`${c.urls.get(node)}/kv/w${w}-${i}?ack=region`, "PUT", i).catch(() => null);
        if (r?.status === 200) acked.set(`w${w}-${i}`, i);
      }
    });
    try {
      await waitFor("writes before the kill", () => acked.size >= 100);
      await c.stop(first.node, "SIGKILL");
      const survivors = nodes.filter((n) => n !== first.node);
      const second = await waitFor("a new leader among the survivors", () => agreedLeader(c, survivors), 20_000);
      expect(second.node).not.toBe(first.node);
      expect(second.epoch).toBeGreaterThan(first.epoch);
      const atFailover = acked.size;
      await waitFor("writes acknowledged by the new leader", () => acked.size >= atFailover + 100, 20_000);

      // The old fencing token is stale everywhere, the new one valid.
      for (const n of survivors) {
        const v = await call(`${c.urls.get(n)}/fence-token/validate`, "POST", { token: first.fencingToken });
        expect(v.body).toEqual({ valid: false, current: second.fencingToken });
      }

      await c.start(first.node);
      await waitFor("the old leader is back as a follower of the new one", async () => {
        const s = (await call(`${c.urls.get(first.node)}/status`)).body as Status;
        return s.role === "follower" && s.leader === second.node && s.epoch === second.epoch;
      }, 20_000);
      stop = true;
      await Promise.all(writers);

      const leaderVv = JSON.stringify(((await call(`${c.urls.get(second.node)}/status`)).body as Status).vv);
      for (const n of nodes) {
        await waitFor(`${n} caught up`, async () => JSON.stringify(((await call(`${c.urls.get(n)}/status`)).body as Status).vv) === leaderVv, 20_000);
        let missing = 0;
        for (const [key, value] of acked) {
          const r = await call(`${c.urls.get(n)}/kv/${key}`);
          if (r.status !== 200 || r.body.value !== value) missing++;
        }
        expect(missing, `${n}: acknowledged ack=region writes missing out of ${acked.size}`).toBe(0);
      }
      // Still exactly one leader, and it did not flap back to the recovered node.
      expect((await agreedLeader(c, nodes))?.node).toBe(second.node);
    } finally {
      // Also when a wait above fails: the writers end instead of outliving the test.
      stop = true;
      await Promise.all(writers);
    }
  }, 180_000); // six waits with their own deadlines (leader, writes, new leader, writes, rejoin, catch-up): more than the default 60 s on a loaded machine

  it("stepdown elects a different node", async () => {
    const c = await startProcCluster([{ region: "s", nodes: 3 }], { env: { GEOKV_LOG_LEVEL: "warn" } });
    clusters.push(c);
    const nodes = c.regions.get("s") as string[];
    const first = await waitFor("a leader", () => agreedLeader(c, nodes), 20_000);
    // Asked of a follower, the stepdown is forwarded to the leader.
    const follower = nodes.find((n) => n !== first.node) as string;
    const r = await call(`${c.urls.get(follower)}/leadership/stepdown`, "POST");
    expect(r.status).toBe(202);
    const next = await waitFor("another leader", async () => {
      const l = await agreedLeader(c, nodes);
      return l && l.node !== first.node ? l : null;
    }, 20_000);
    expect(next.epoch).toBeGreaterThan(first.epoch);
  });

  it("a partition isolating the leader: the minority takes no writes, the majority elects, one leader after healing", async () => {
    const c = await startProcCluster([{ region: "p", nodes: 3 }, { region: "q", nodes: 1 }], { env: { GEOKV_LOG_LEVEL: "warn" }, args: ["--write-wait-ms", "1500"] });
    clusters.push(c);
    const nodes = c.regions.get("p") as string[];
    const first = await waitFor("a leader", () => agreedLeader(c, nodes), 20_000);
    const others = nodes.filter((n) => n !== first.node);
    // Cut the leader off from both of its region peers, both ways, on both sides.
    expect((await call(`${c.urls.get(first.node)}/admin/faults`, "POST", { block: others })).status).toBe(200);
    for (const n of others) expect((await call(`${c.urls.get(n)}/admin/faults`, "POST", { block: [first.node] })).status).toBe(200);

    const majority = await waitFor("the majority elects a leader", () => agreedLeader(c, others), 20_000);
    expect(majority.epoch).toBeGreaterThan(first.epoch);
    await waitFor("the isolated old leader steps down", async () => ((await call(`${c.urls.get(first.node)}/status`)).body as Status).role !== "leader", 20_000);
    // The minority refuses writes (no leader it can reach), the majority takes them.
    const minorityWrite = await call(`${c.urls.get(first.node)}/kv/split?ack=local`, "PUT", "minority");
    expect(minorityWrite.status).toBe(503);
    expect(minorityWrite.body.error.code).toBe("no_leader");
    expect((await call(`${c.urls.get(majority.node)}/kv/split`, "PUT", "majority")).status).toBe(200);

    await call(`${c.urls.get(first.node)}/admin/faults`, "POST", { clear: true });
    for (const n of others) await call(`${c.urls.get(n)}/admin/faults`, "POST", { clear: true });
    const healed = await waitFor("exactly one leader after healing", () => agreedLeader(c, nodes), 20_000);
    expect(healed.node).toBe(majority.node);
    await waitFor("the old leader has the majority's write", async () => (await call(`${c.urls.get(first.node)}/kv/split`)).body?.value === "majority", 20_000);
  });
});

describe("manual failover", () => {
  it("elects nothing on its own; promote is refused while unsafe and works when safe", async () => {
    const c = await startProcCluster([{ region: "m", nodes: 3, failover: "manual" }], { env: { GEOKV_LOG_LEVEL: "warn" } });
    clusters.push(c);
    const nodes = c.regions.get("m") as string[];
    await waitFor("links up", async () => (await statuses(c, nodes)).every((s) => (s as unknown as { peers: { state: string }[] }).peers.every((p) => p.state === "up")), 20_000);
    // Several election timeouts pass: no leader appears.
    const before = Date.now();
    await waitFor("time for several election timeouts", async () => Date.now() - before > 2000 && (await statuses(c, nodes)).length === 3, 10_000);
    expect((await statuses(c, nodes)).filter((s) => s.role === "leader")).toHaveLength(0);

    const p = await call(`${c.urls.get("m-2")}/leadership/promote`, "POST");
    expect(p.status).toBe(202);
    const leader = await waitFor("m-2 leads", async () => {
      const l = await agreedLeader(c, nodes);
      return l?.node === "m-2" ? l : null;
    }, 20_000);
    expect((await call(`${c.urls.get("m-1")}/kv/x`, "PUT", 1)).status).toBe(200);

    // A leader is alive: promoting another node is refused with the reason.
    const refused = await call(`${c.urls.get("m-3")}/leadership/promote`, "POST");
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("refused");
    expect(refused.body.error.message).toMatch(/alive|leader/);
    expect((await agreedLeader(c, nodes))?.epoch).toBe(leader.epoch);

    // The leader dies: still no automatic election; promote on a caught-up node works.
    await c.stop("m-2", "SIGKILL");
    const since = Date.now();
    await waitFor("time for several election timeouts", async () => Date.now() - since > 2000, 10_000);
    expect((await statuses(c, ["m-1", "m-3"])).filter((s) => s.role === "leader")).toHaveLength(0);
    expect((await call(`${c.urls.get("m-1")}/leadership/promote`, "POST")).status).toBe(202);
    await waitFor("m-1 leads", async () => (await agreedLeader(c, ["m-1", "m-3"]))?.node === "m-1", 20_000);
  });
});
