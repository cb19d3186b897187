// Idempotency-Key across nodes and a failover, on real processes: one region
// of three nodes. The key travels inside the op, so every replica that
// applied the write knows its answer: the same request retried on any node
// gets the original token and never applies the delta a second time, also
// after the leader that took it was killed.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, regionLeader, startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";

let c: ProcCluster;
/** The region's first leader and its two followers (whichever node won). */
let L = "";
let F1 = "";
let F2 = "";
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
  const r = await regionLeader(c, "r");
  [L, F1, F2] = [r.leader, r.followers[0] as string, r.followers[1] as string];
}, 60_000);

afterAll(async () => {
  await c?.close();
});

describe("Idempotency-Key across the region's nodes", () => {
  let token: string;

  it("the leader takes the write once and every replica applies it", async () => {
    const first = await addFive(L);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ key: "c", value: 5 });
    token = first.body.token as string;
    expect(first.headers.get("x-geokv-token")).toBe(token);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    for (const node of [F1, F2]) await waitFor(`${node} applied the write`, async () => (await counterAt(node)) === 5);
  });

  it("the same request sent to each follower gets the same token and changes nothing", async () => {
    for (const node of [F1, F2, L]) {
      const retry = await addFive(node);
      expect(retry.status, `${node}: ${JSON.stringify(retry.body)}`).toBe(200);
      expect(retry.body.token).toBe(token);
      expect(retry.headers.get("x-geokv-token")).toBe(token);
      expect(retry.headers.get("idempotent-replayed")).toBe("true");
    }
    // Same key, different request: refused, wherever it is sent.
    for (const node of [F1, F2]) {
      const other = await addFive(node, 6);
      expect(other.status).toBe(409);
      expect(other.body.error.code).toBe("idempotency_mismatch");
    }
    for (const node of [L, F1, F2]) expect(await counterAt(node)).toBe(5);
  });

  it("after the leader is killed, a retry on a survivor replays or finds no leader, and never writes again", async () => {
    await c.stop(L);
    // Until a new leader serves, F1 answers no_leader; once one does (F1 or
    // F2), the retry reaches a node that applied the write and replays it.
    // A node without the record would answer 200 with a new token instead.
    const answers: { status: number; token: unknown; code: unknown }[] = [];
    await waitFor(`a retry on ${F1} answered from a record`, async () => {
      const r = await addFive(F1);
      answers.push({ status: r.status, token: r.body?.token, code: r.body?.error?.code });
      return r.status === 200;
    }, 15_000, 250).catch(() => undefined);
    for (const a of answers) {
      if (a.status === 200) expect(a.token, JSON.stringify(answers)).toBe(token);
      else expect([a.status, a.code], JSON.stringify(answers)).toEqual([503, "no_leader"]);
    }
    const r3 = await addFive(F2);
    if (r3.status === 200) expect(r3.body.token).toBe(token);
    else expect([r3.status, r3.body.error.code]).toEqual([503, "no_leader"]);
    for (const node of [F1, F2]) expect(await counterAt(node)).toBe(5);
  });
});
