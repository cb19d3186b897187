// The dashboard's routes on one real node, without a browser: the page and
// its assets come from the node (no CDN, a CSP that forbids any other
// origin), the snapshot has what the page renders (role changes with
// reasons, write rate, regions), the event stream sends more than two
// snapshots a second and ends at once when its client leaves (its slot is
// freed) or the node shuts down (the drain must not wait for it), and the
// controls are guarded
// by the admin and client tokens like the routes they call.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_STREAMS_MAX, EVENTS_PERIOD_MS } from "../../src/http/dashboard-events.js";
import { call, callJson, enc, errorCode, startTestNode, type TestNode } from "../http/helpers.js";
import { waitFor } from "../support/cluster-files.js";

const ADMIN = "dash-admin-token";
const CLIENT = "dash-client-token";

/** The snapshot fields these tests read. */
interface State {
  node: string;
  region: string;
  regions: { region: string; leader: string | null; nodes: { id: string; link: string; role: string }[] }[];
  writeRate: { fromS: number; regions: Record<string, number[]> };
  roleChanges: { role: string; reason: string; epoch: number }[];
  auth: { admin: boolean; client: boolean };
  faults: { blocked: string[] };
}

/** Reads Server-Sent Events from `url` until `count` snapshots came; returns them with their arrival times. */
async function readEvents(url: string, count: number, signal: AbortSignal): Promise<{ at: number; state: State }[]> {
  const res = await fetch(url, { signal });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const out: { at: number; state: State }[] = [];
  let buf = "";
  while (out.length < count) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = event.split("\n").find((l) => l.startsWith("data: "));
      if (data !== undefined) out.push({ at: performance.now(), state: JSON.parse(data.slice(6)) as State });
    }
  }
  await reader.cancel().catch(() => {});
  return out;
}

describe("the dashboard on a node without tokens", () => {
  let n: TestNode;
  beforeAll(async () => {
    n = await startTestNode();
  });
  afterAll(async () => {
    await n?.close();
  });

  it("serves the page and every asset it loads from the node itself, with a CSP that allows no other origin", async () => {
    const page = await call(n.url, "GET", "/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
    const refs = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string).filter((r) => !r.startsWith("data:"));
    expect(refs.length).toBeGreaterThanOrEqual(4);
    for (const ref of refs) {
      expect(ref.startsWith("/"), `${ref} is served by the node`).toBe(true);
      const a = await call(n.url, "GET", ref);
      expect(a.status, ref).toBe(200);
      expect(a.headers.get("content-type"), ref).toMatch(ref.endsWith(".css") ? /^text\/css/ : /^text\/javascript/);
      expect(a.bytes.length, ref).toBeGreaterThan(100);
    }
    const missing = await call(n.url, "GET", "/dashboard/assets/..%2Fpackage.json");
    expect(missing.status).toBe(404);
    expect(errorCode(missing)).toBe("not_found");
  });

  it("has a snapshot with this node's region, its role changes with reasons, and the writes it took per second", async () => {
    const first = (await call(n.url, "GET", "/dashboard/state")).json as State;
    expect(first.node).toBe("t-1");
    expect(first.auth).toEqual({ admin: false, client: false });
    expect(first.regions.map((r) => r.region)).toEqual(["t"]);
    expect(first.regions[0]?.nodes).toEqual([expect.objectContaining({ id: "t-1", link: "self", role: "leader" })]);
    expect(first.roleChanges[0]).toEqual(expect.objectContaining({ role: "leader" }));
    expect(first.roleChanges[0]?.reason.length).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) expect((await callJson(n.url, "PUT", `/kv/rate-${i}`, i)).status).toBe(200);
    // The series holds complete seconds only: the writes show once their second is over.
    const counted = await waitFor("the three writes in the write-rate series", async () => {
      const s = (await call(n.url, "GET", "/dashboard/state")).json as State;
      const total = (s.writeRate.regions.t ?? []).reduce((a, b) => a + b, 0);
      return total >= 3 ? s : null;
    }, 5000);
    expect(counted.writeRate.regions.t).toHaveLength(60);
  });

  it("reads a key from one node per region (GET /dashboard/key/:key)", async () => {
    const put = await callJson(n.url, "PUT", `/kv/${enc("a/b")}`, { x: 1 });
    expect(put.status).toBe(200);
    const a = await call(n.url, "GET", `/dashboard/key/${enc("a/b")}`);
    expect(a.status).toBe(200);
    expect(a.json).toEqual({ key: "a/b", regions: [expect.objectContaining({ region: "t", node: "t-1", ok: true, status: 200, body: expect.objectContaining({ value: { x: 1 } }) })] });
    const bad = await call(n.url, "GET", "/dashboard/key/%FF");
    expect(errorCode(bad)).toBe("invalid_key");
  });

  it("refuses malformed control bodies and unknown regions with bad_request", async () => {
    for (const body of [{}, { region: "t" }, { region: "t", action: "explode" }, { region: "nowhere", action: "cut" }, [1]]) {
      const a = await callJson(n.url, "POST", "/dashboard/partition", body);
      expect(a.status, JSON.stringify(body)).toBe(400);
      expect(errorCode(a)).toBe("bad_request");
    }
    const s = await callJson(n.url, "POST", "/dashboard/stepdown", { region: "nowhere" });
    expect(errorCode(s)).toBe("bad_request");
  });

  it("streams snapshots at least twice a second and stops when the client leaves", async () => {
    const stop = new AbortController();
    const events = await readEvents(`${n.url}/dashboard/events`, 5, stop.signal);
    stop.abort();
    expect(events).toHaveLength(5);
    // The first comes at once; four periods later the fifth.
    const spanMs = (events[4] as { at: number }).at - (events[0] as { at: number }).at;
    expect(spanMs).toBeLessThan(4 * EVENTS_PERIOD_MS + 1000);
    expect(spanMs / 4).toBeLessThan(500);
    expect(events[0]?.state.node).toBe("t-1");
  });

  it("frees a stream's slot when its client leaves: more clients than EVENT_STREAMS_MAX, one after another, all get a stream", async () => {
    for (let i = 0; i < EVENT_STREAMS_MAX + 6; i++) {
      // A slot is freed once the node sees the socket close, a moment after the client left.
      await waitFor(`event stream ${i} to open`, async () => {
        const stop = new AbortController();
        const res = await fetch(`${n.url}/dashboard/events`, { signal: stop.signal });
        const ok = res.status === 200 && !(await (res.body as ReadableStream<Uint8Array>).getReader().read()).done;
        stop.abort();
        return ok;
      }, 5000);
    }
  });
});

describe("the dashboard's controls with GEOKV_ADMIN_TOKEN and GEOKV_CLIENT_TOKEN set", () => {
  let n: TestNode;
  beforeAll(async () => {
    n = await startTestNode({ env: { GEOKV_ADMIN_TOKEN: ADMIN, GEOKV_CLIENT_TOKEN: CLIENT } });
  });
  afterAll(async () => {
    await n?.close();
  });

  it("tells the page which tokens the controls need, and refuses the controls without them", async () => {
    const s = (await call(n.url, "GET", "/dashboard/state")).json as State;
    expect(s.auth).toEqual({ admin: true, client: true });
    const none = await callJson(n.url, "POST", "/dashboard/partition", { region: "t", action: "cut" });
    expect(none.status).toBe(401);
    const wrong = await callJson(n.url, "POST", "/dashboard/stepdown", { region: "t" }, { authorization: "Bearer nope" });
    expect(wrong.status).toBe(403);
    const read = await call(n.url, "GET", "/dashboard/key/k");
    expect(read.status).toBe(401);
  });

  it("passes the caller's token on to the nodes it acts on", async () => {
    const cut = await callJson(n.url, "POST", "/dashboard/partition", { region: "t", action: "cut" }, { authorization: `Bearer ${ADMIN}` });
    expect(cut.status).toBe(200);
    expect(cut.json).toEqual({ region: "t", action: "cut", ok: true, nodes: [expect.objectContaining({ node: "t-1", ok: true, status: 200 })] });
    const heal = await callJson(n.url, "POST", "/dashboard/partition", { region: "t", action: "heal" }, { authorization: `Bearer ${ADMIN}` });
    expect(heal.json).toEqual(expect.objectContaining({ ok: true }));
    const read = await call(n.url, "GET", "/dashboard/key/k", { headers: { authorization: `Bearer ${CLIENT}` } });
    expect(read.json).toEqual({ key: "k", regions: [expect.objectContaining({ region: "t", status: 404 })] });
  });
});

describe("shutdown with a dashboard open", () => {
  it("ends the event streams and does not wait for them in the drain", async () => {
    const n = await startTestNode();
    try {
      const res = await fetch(`${n.url}/dashboard/events`);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      const started = performance.now();
      await n.node.close();
      const closedMs = performance.now() - started;
      // The drain's grace period is 10 s; an SSE stream holding it would show here.
      expect(closedMs).toBeLessThan(3000);
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
      }
    } finally {
      await n.close();
    }
  });
});
