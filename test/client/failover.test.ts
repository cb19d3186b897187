// The SDK's 503 handling against real nodes. One node of a three-node region
// is cut off from its peers with the nodes' own fault injection (POST
// /admin/faults), which makes the two refusals real: it serves reads from a
// replica that falls behind, so a read carrying a newer causal token gets
// stale_replica and must move to another node; and it has no leader, so a
// write sent there gets no_leader with Retry-After, which the client must
// honour as a floor on its wait, within its deadline, until the cut heals.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, isGeokvError, type GeokvClient, type GeokvError } from "../../src/client/index.js";
import { startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";
import { agreedLeader, nodeStatus, recordingFetch, type SentRequest } from "./helpers.js";

/** Short, so a write to a leaderless node and a read of a lagging one are refused quickly. */
const WRITE_WAIT_MS = 500;
/** What the nodes send with no_leader (forward.ts, runtime.ts: one second). */
const RETRY_AFTER_MS = 1_000;
/** Timers may fire a hair before the mark on another clock. */
const TIMER_SLACK_MS = 10;

let cluster: ProcCluster;
let leader: string;
/** The follower that the tests cut off. */
let cut: string;
/** The follower that stays with the leader. */
let kept: string;
const clients: GeokvClient[] = [];

function url(node: string): string {
  return cluster.urls.get(node) as string;
}

async function faults(node: string, body: unknown): Promise<void> {
  const res = await fetch(`${url(node)}/admin/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  expect(res.status, await res.text()).toBe(200);
}

async function failure(p: Promise<unknown>): Promise<GeokvError> {
  try {
    await p;
  } catch (err) {
    expect(isGeokvError(err), String(err)).toBe(true);
    return err as GeokvError;
  }
  throw new Error("expected the call to fail");
}

/** For each retry after a refusal with Retry-After: how long the client waited before asking again. */
function waitsAfterRetryAfter(sent: readonly SentRequest[]): number[] {
  const waits: number[] = [];
  for (let i = 1; i < sent.length; i++) {
    const prev = sent[i - 1] as SentRequest;
    if (prev.responseHeaders?.get("retry-after") == null) continue;
    waits.push((sent[i] as SentRequest).startedMs - (prev.answeredMs as number));
  }
  return waits;
}

beforeAll(async () => {
  cluster = await startProcCluster([{ region: "f", nodes: 3 }], { env: { GEOKV_LOG_LEVEL: "warn" }, args: ["--write-wait-ms", String(WRITE_WAIT_MS)] });
  const nodes = cluster.regions.get("f") as string[];
  leader = await agreedLeader(cluster.urls, nodes);
  const others = nodes.filter((n) => n !== leader);
  // The lowest-ranked follower: nodes are listed highest priority first.
  cut = others.at(-1) as string;
  kept = others[0] as string;
  await faults(cut, { block: nodes.filter((n) => n !== cut), direction: "both" });
  // Cut off both ways: it sees every peer down (and, once elections need a majority, no leader).
  await waitFor(`${cut} to see its peers down`, async () => {
    const s = await nodeStatus(url(cut));
    // Peers down on the links, and the election has let go of the old leader
    // (until then the node still forwards writes to it over HTTP, which works).
    return s?.peers.every((p) => p.state === "down") && s.leader === null;
  }, 10_000);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.close();
});

describe("503 answers from a node cut off from its region", () => {
  it("stale_replica: a read the lagging node cannot serve moves to another node, and still sees the write", async () => {
    const writer = createClient({ nodes: [url(leader)] });
    clients.push(writer);
    await writer.put("fresh", "new");
    // Control: the cut-off node really is behind (without a token it answers from its replica).
    const plain = await fetch(`${url(cut)}/kv/fresh`, { signal: AbortSignal.timeout(5_000) });
    expect(plain.status).toBe(404);

    const rec = recordingFetch();
    const reader = createClient({ nodes: [url(cut), url(kept)], causalToken: writer.causalToken() as string, fetch: rec.fetch });
    clients.push(reader);
    expect((await reader.get("fresh"))?.value).toBe("new");
    expect(rec.sent.map((r) => [new URL(r.url).origin, r.status, r.errorCode])).toEqual([
      [url(cut), 503, "stale_replica"],
      [url(kept), 200, undefined],
    ]);
    // The next read starts at the node that answered.
    await reader.get("fresh");
    expect(new URL(rec.sent.at(-1)?.url as string).origin).toBe(url(kept));
  });

  it("no_leader: a Retry-After that cannot fit the deadline ends the call at once, not at the deadline", async () => {
    const rec = recordingFetch();
    // One refusal takes WRITE_WAIT_MS; the one-second wait it asks for does not fit in what is left.
    const timeoutMs = WRITE_WAIT_MS + RETRY_AFTER_MS - 100;
    const c = createClient({ nodes: [url(cut)], timeoutMs, fetch: rec.fetch });
    clients.push(c);
    const started = performance.now();
    const e = await failure(c.put("while-cut", 1));
    const elapsed = performance.now() - started;
    expect(e.code).toBe("unavailable");
    expect(e.cause?.code).toBe("no_leader");
    expect(e.status).toBe(503);
    expect(e.node).toBe(cut);
    expect(rec.sent.map((r) => [r.status, r.errorCode, r.responseHeaders?.get("retry-after")])).toEqual([[503, "no_leader", "1"]]);
    // Gave up when the answer came, instead of retrying early or sleeping into the deadline.
    expect(performance.now() - (rec.sent[0]?.answeredMs as number)).toBeLessThan(100);
    expect(elapsed).toBeLessThan(timeoutMs - 200);
  });

  it("no_leader, then the cut heals: retries wait at least Retry-After, keep one Idempotency-Key, and succeed within the deadline", async () => {
    const rec = recordingFetch();
    const c = createClient({ nodes: [url(cut)], timeoutMs: 20_000, fetch: rec.fetch });
    clients.push(c);
    const write = c.put("through-heal", { v: 1 });
    await waitFor("the first no_leader answer", () => rec.sent.some((r) => r.errorCode === "no_leader"), 10_000);
    await faults(cut, { clear: true });
    await write;

    expect(rec.sent.length).toBeGreaterThanOrEqual(2);
    expect(rec.sent[0]?.errorCode).toBe("no_leader");
    expect(rec.sent.at(-1)?.status).toBe(200);
    expect(new Set(rec.sent.map((r) => r.headers.get("idempotency-key"))).size).toBe(1);
    const waits = waitsAfterRetryAfter(rec.sent);
    expect(waits.length).toBeGreaterThanOrEqual(1);
    for (const w of waits) expect(w).toBeGreaterThanOrEqual(RETRY_AFTER_MS - TIMER_SLACK_MS);
    const check = createClient({ nodes: [url(leader), url(kept)], causalToken: c.causalToken() as string });
    clients.push(check);
    expect((await check.get("through-heal"))?.value).toEqual({ v: 1 });
  });

  // Once a race: a node holding a write's Idempotency-Key forwarded the retry
  // to a leader that had not received the op yet, which applied it again. A
  // node now answers a retry whose key it holds itself (forward.ts), and a
  // replay waits for the write to be acknowledged at the asked level.
  it("no_leader, then the cut heals: a counter write retried across the heal is applied once", async () => {
    await faults(cut, { block: (cluster.regions.get("f") as string[]).filter((n) => n !== cut), direction: "both" });
    await waitFor(`${cut} to see its peers down`, async () => {
    const s = await nodeStatus(url(cut));
    // Peers down on the links, and the election has let go of the old leader
    // (until then the node still forwards writes to it over HTTP, which works).
    return s?.peers.every((p) => p.state === "down") && s.leader === null;
  }, 10_000);
    const rec = recordingFetch();
    const c = createClient({ nodes: [url(cut)], timeoutMs: 20_000, fetch: rec.fetch });
    clients.push(c);
    const write = c.incr("through-heal-count", 3);
    await waitFor("the first no_leader answer", () => rec.sent.some((r) => r.errorCode === "no_leader"), 10_000);
    await faults(cut, { clear: true });
    expect(await write).toBe(3);
    // Every op the cut-off node wrote, the local increment included, has reached the leader.
    const cutSeq = (await nodeStatus(url(cut)))?.vv[cut] ?? 0;
    await waitFor(`${leader} to apply ${cut}'s ops`, async () => ((await nodeStatus(url(leader)))?.vv[cut] ?? 0) >= cutSeq, 10_000);
    const check = createClient({ nodes: [url(leader)], causalToken: c.causalToken() as string });
    clients.push(check);
    expect(await check.counter("through-heal-count")).toBe(3);
  });
});
