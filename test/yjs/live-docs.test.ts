// Live documents on real processes: two regions of three nodes on loopback,
// stock y-websocket providers (the real client package, `ws` as its
// WebSocket) connected to followers and leaders of both regions. Concurrent
// edits converge, also across a partition between the regions; a client
// whose node is SIGKILLed reconnects by itself and no edit is lost; presence
// crosses regions and leaves with its client; an idle doc leaves memory and
// is served whole afterwards.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";
import { editor, httpText, metric, synced, type Editor } from "./support.js";

let c: ProcCluster;
const editors: Editor[] = [];
const url = (node: string) => c.urls.get(node) as string;
const all = () => [...c.urls.keys()];

function open(node: string, room: string): Editor {
  const e = editor(url(node), room);
  editors.push(e);
  return e;
}

async function faults(node: string, body: unknown) {
  const r = await call(`${url(node)}/admin/faults`, "POST", body);
  expect(r.status).toBe(200);
}

/** Waits until every node serves `expected` for the room over HTTP. */
async function everyNodeServes(room: string, expected: string, timeoutMs = 20_000) {
  await waitFor(`every node serves ${room}`, async () => {
    const texts = await Promise.all(all().filter((n) => c.running(n)).map((n) => httpText(url(n), room)));
    return texts.every((t) => t === expected);
  }, timeoutMs);
}

beforeAll(async () => {
  // A small doc budget, so an idle doc is evicted from the cache as well as from the live rooms.
  c = await startProcCluster([{ region: "us", nodes: 3 }, { region: "eu", nodes: 3 }], { env: { GEOKV_DOC_CACHE_BYTES: "1" } });
  await waitFor("leaders", async () => {
    const s = await Promise.all(all().map(async (n) => (await call(`${url(n)}/status`)).body.leader));
    return s.every((l) => l !== null);
  }, 30_000);
}, 90_000);

afterAll(async () => {
  for (const e of editors) e.destroy();
  await c?.close();
});

describe("GET /yjs/:room with stock y-websocket providers", () => {
  it("two providers in different regions edit one Y.Text concurrently and converge; GET /docs/:room on every node agrees", async () => {
    const a = open("us-2", "shared");
    const b = open("eu-3", "shared");
    await Promise.all([synced(a), synced(b)]);
    for (let i = 0; i < 20; i++) {
      a.text.insert(a.text.length, `a${i} `);
      b.text.insert(0, `b${i} `);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor("providers converge", () => a.text.length === b.text.length && a.text.toString() === b.text.toString(), 20_000);
    const text = a.text.toString();
    for (let i = 0; i < 20; i++) {
      expect(text).toContain(`a${i} `);
      expect(text).toContain(`b${i} `);
    }
    await everyNodeServes("shared", text);
    // The edits were written in batches, not one op per keystroke everywhere: fewer writes than updates.
    const updates = (await metric(url("us-2"), "geokv_yjs_updates_total")) + (await metric(url("eu-3"), "geokv_yjs_updates_total"));
    const writes = (await metric(url("us-2"), "geokv_yjs_writes_total")) + (await metric(url("eu-3"), "geokv_yjs_writes_total"));
    expect(updates).toBeGreaterThanOrEqual(40);
    expect(writes).toBeGreaterThan(0);
    expect(writes).toBeLessThan(updates);
  });

  it("a partition between the regions: both sides keep editing, and after the heal the texts are identical", async () => {
    const a = open("us-1", "split");
    const b = open("eu-2", "split");
    await Promise.all([synced(a), synced(b)]);
    a.text.insert(0, "start ");
    await waitFor("b sees start", () => b.text.toString() === "start ");

    try {
      for (const n of c.regions.get("us") as string[]) await faults(n, { block: ["eu"] });
      for (const n of c.regions.get("eu") as string[]) await faults(n, { block: ["us"] });
      for (let i = 0; i < 10; i++) {
        a.text.insert(a.text.length, `us${i} `);
        b.text.insert(b.text.length, `eu${i} `);
      }
      // Each side's edits are written in its own region while the other cannot see them.
      await waitFor("us writes its side", async () => (await httpText(url("us-3"), "split")).includes("us9 "), 30_000);
      await waitFor("eu writes its side", async () => (await httpText(url("eu-1"), "split")).includes("eu9 "), 30_000);
      expect(await httpText(url("us-3"), "split")).not.toContain("eu0");
      expect(b.text.toString()).not.toContain("us0");
    } finally {
      // Healed whatever happened, so a failure here does not cut the regions for the tests after it.
      for (const n of all()) await faults(n, { clear: true });
    }
    await waitFor("providers converge after the heal", () => a.text.toString() === b.text.toString() && a.text.toString().includes("eu9 ") && a.text.toString().includes("us9 "), 30_000);
    await everyNodeServes("split", a.text.toString(), 30_000);
  });

  it("the node a client is connected to is SIGKILLed and restarted: the client reconnects by itself and no edit is lost", async () => {
    const a = open("us-3", "crash");
    const b = open("eu-1", "crash");
    await Promise.all([synced(a), synced(b)]);
    for (let i = 0; i < 10; i++) a.text.insert(a.text.length, `before${i} `);
    // Acknowledged: written and replicated to the other region.
    await waitFor("eu holds the first edits", async () => (await httpText(url("eu-2"), "crash")).includes("before9 "), 30_000);

    await c.stop("us-3", "SIGKILL");
    // Edits made while its node is down stay in the client and are synced when it is back.
    for (let i = 0; i < 5; i++) a.text.insert(a.text.length, `offline${i} `);
    await c.start("us-3");
    await waitFor("the provider reconnected by itself", () => a.provider.synced && a.provider.wsconnected, 30_000);
    await waitFor("b has every edit", () => {
      const t = b.text.toString();
      return [...Array(10).keys()].every((i) => t.includes(`before${i} `)) && [...Array(5).keys()].every((i) => t.includes(`offline${i} `));
    }, 30_000);
    await waitFor("a and b agree", () => a.text.toString() === b.text.toString());
    await everyNodeServes("crash", a.text.toString(), 30_000);
  });

  it("presence appears at the other region's client and disappears when the first client disconnects", async () => {
    const a = open("us-2", "presence");
    const b = open("eu-2", "presence");
    await Promise.all([synced(a), synced(b)]);
    a.provider.awareness.setLocalStateField("user", { name: "ada" });
    const aId = a.doc.clientID;
    await waitFor("b sees a's presence", () => (b.provider.awareness.getStates().get(aId) as { user?: { name?: string } } | undefined)?.user?.name === "ada", 15_000);
    a.provider.disconnect();
    await waitFor("a's presence left b", () => !b.provider.awareness.getStates().has(aId), 15_000);
  });

  it("presence leaves with a partition between the regions and comes back with the heal, without waiting for the client's renewal", async () => {
    const a = open("us-3", "presence-split");
    const b = open("eu-3", "presence-split");
    await Promise.all([synced(a), synced(b)]);
    // a never renews its presence (y-protocols renews every 15 s): after the heal only the nodes can bring it back.
    clearInterval((a.provider.awareness as unknown as { _checkInterval: ReturnType<typeof setInterval> })._checkInterval);
    a.provider.awareness.setLocalStateField("user", { name: "linus" });
    const aId = a.doc.clientID;
    await waitFor("b sees a", () => b.provider.awareness.getStates().has(aId), 15_000);
    try {
      for (const n of c.regions.get("us") as string[]) await faults(n, { block: ["eu"] });
      for (const n of c.regions.get("eu") as string[]) await faults(n, { block: ["us"] });
      await waitFor("a left b with the links", () => !b.provider.awareness.getStates().has(aId), 15_000);
    } finally {
      for (const n of all()) await faults(n, { clear: true });
    }
    await waitFor("a is back at b", () => (b.provider.awareness.getStates().get(aId) as { user?: { name?: string } } | undefined)?.user?.name === "linus", 15_000);
  });

  it("presence leaves the other region's client when the node that relayed it dies, well before the awareness timeout", async () => {
    const a = open("us-2", "presence-crash");
    const b = open("eu-2", "presence-crash");
    await Promise.all([synced(a), synced(b)]);
    a.provider.awareness.setLocalStateField("user", { name: "grace" });
    const aId = a.doc.clientID;
    await waitFor("b sees a's presence", () => b.provider.awareness.getStates().has(aId), 15_000);
    const killedAt = Date.now();
    await c.stop("us-2", "SIGKILL");
    await waitFor("a's presence left b", () => !b.provider.awareness.getStates().has(aId), 25_000);
    // The awareness timeout is 30 s; the dead link took it away sooner.
    expect(Date.now() - killedAt).toBeLessThan(25_000);
    a.destroy();
    editors.splice(editors.indexOf(a), 1);
    await c.start("us-2");
  });

  it("an idle doc is evicted from memory and served correctly afterwards", async () => {
    const a = open("eu-1", "idle");
    await synced(a);
    a.text.insert(0, "kept while idle");
    await everyNodeServes("idle", "kept while idle");
    const liveBefore = await metric(url("eu-1"), "geokv_yjs_docs", '{state="live"}');
    expect(liveBefore).toBeGreaterThanOrEqual(1);
    a.destroy();
    editors.splice(editors.indexOf(a), 1);
    // No client and nothing to write: the room leaves memory, and the 1-byte budget keeps no cached copy.
    await waitFor("the doc left eu-1's memory", async () => {
      const live = await metric(url("eu-1"), "geokv_yjs_docs", '{state="live"}');
      const cached = await metric(url("eu-1"), "geokv_yjs_docs", '{state="cached"}');
      return live === liveBefore - 1 && cached === 0;
    });
    const back = open("eu-1", "idle");
    await synced(back);
    expect(back.text.toString()).toBe("kept while idle");
  });
});
