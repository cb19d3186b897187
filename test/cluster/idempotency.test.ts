// Idempotency-Key across nodes and a failover, on real processes: one region
// of three nodes. The key travels inside the op, so every replica that
// applied the write knows its answer: the same request retried on any node
// gets the original token and never applies the delta a second time, also
// after the leader that took it was killed.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";

let c: ProcCluster;
const url = (node: string) => c.urls.get(node) as string;
const KEY = "retry-7f3c9a";

/** POST /counters/c {"delta": 5} with the test's Idempotency-Key (or another body). */
function addFive(node: string, delta = 5) {
  return call(`${url(node)}/counters/c`, "POST", { delta }, { "Idempotency-Key": KEY });
}

async function counterAt(node: string): Promise<number> {
  const r = await call(`${url(node)}/counters/c`);
  expect(r.status).toBe(200);
  return r.body.value as number;
}

beforeAll(async () => {
  c = await startProcCluster([{ region: "r", nodes: 3 }], { env: { GEOKV_LOG_LEVEL: "warn" } });
  await waitFor("leader r-1 with both followers up", async () => {
    const s = await call(`${url("r-1")}/status`);
    return s.body.role === "leader" && s.body.peers.every((p: { state: string }) => p.state === "up");
  }, 20_000);
}, 60_000);

afterAll(async () => {
  await c?.close();
});

describe("Idempotency-Key across the region's nodes", () => {
  let token: string;

  it("the leader takes the write once and every replica applies it", async () => {
    const first = await addFive("r-1");
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ key: "c", value: 5 });
    token = first.body.token as string;
    expect(first.headers.get("x-geokv-token")).toBe(token);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    for (const node of ["r-2", "r-3"]) await waitFor(`${node} applied the write`, async () => (await counterAt(node)) === 5);
  });

  it("the same request sent to each follower gets the same token and changes nothing", async () => {
    for (const node of ["r-2", "r-3", "r-1"]) {
      const retry = await addFive(node);
      expect(retry.status, `${node}: ${JSON.stringify(retry.body)}`).toBe(200);
      expect(retry.body.token).toBe(token);
      expect(retry.headers.get("x-geokv-token")).toBe(token);
      expect(retry.headers.get("idempotent-replayed")).toBe("true");
    }
    // Same key, different request: refused, wherever it is sent.
    for (const node of ["r-2", "r-3"]) {
      const other = await addFive(node, 6);
      expect(other.status).toBe(409);
      expect(other.body.error.code).toBe("idempotency_mismatch");
    }
    for (const node of ["r-1", "r-2", "r-3"]) expect(await counterAt(node)).toBe(5);
  });

  it("after the leader is killed, a retry on a survivor replays or finds no leader, and never writes again", async () => {
    await c.stop("r-1");
    // Until a new leader serves, r-2 answers no_leader; once one does (r-2 or
    // r-3), the retry reaches a node that applied the write and replays it.
    // A node without the record would answer 200 with a new token instead.
    const answers: { status: number; token: unknown; code: unknown }[] = [];
    await waitFor("a retry on r-2 answered from a record", async () => {
      const r = await addFive("r-2");
      answers.push({ status: r.status, token: r.body?.token, code: r.body?.error?.code });
      return r.status === 200;
    }, 15_000, 250).catch(() => undefined);
    for (const a of answers) {
      if (a.status === 200) expect(a.token, JSON.stringify(answers)).toBe(token);
      else expect([a.status, a.code], JSON.stringify(answers)).toEqual([503, "no_leader"]);
    }
    const r3 = await addFive("r-3");
    if (r3.status === 200) expect(r3.body.token).toBe(token);
    else expect([r3.status, r3.body.error.code]).toEqual([503, "no_leader"]);
    for (const node of ["r-2", "r-3"]) expect(await counterAt(node)).toBe(5);
  });
});
