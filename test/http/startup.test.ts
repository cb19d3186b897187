// Starting and restarting a node over HTTP: a node that cannot bind its port
// must fail without keeping its SQLite database open (the test helpers retry
// a start on EADDRINUSE, and a CLI that exits on the error must not leave a
// half-open store behind), and a restarted node serves what it acknowledged,
// replays idempotent writes, and never reuses a token.

import { cpSync, existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { NodeId } from "../../src/core/ids.js";
import { isConfigError, loadCluster } from "../../src/node/config.js";
import { startNode } from "../../src/server.js";
import { isSettingsError, resolveSettings } from "../../src/node/settings.js";
import { makeTempCluster, waitFor, type TempCluster } from "../support/cluster-files.js";
import { call, callJson } from "./helpers.js";

const cleanups: Array<() => void | Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** File descriptors of this process that point into `dir`. */
function openFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(join("/proc/self/fd", fd));
      if (target.startsWith(dir)) out.push(target);
    } catch {
      // The fd closed while we looked (readdir's own fd, for one).
    }
  }
  return out;
}

function occupy(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(port, "127.0.0.1", () => resolve(s));
  });
}

describe("startNode", () => {
  it.skipIf(!existsSync("/proc/self/fd"))("closes its database when the port is taken, and starts once it is free", async () => {
    const tmp: TempCluster = await makeTempCluster([{ region: "t", nodes: 1 }]);
    cleanups.push(() => tmp.cleanup());
    const cluster = loadCluster(tmp.regionsDir);
    const settings = resolveSettings({}, { GEOKV_LOG_LEVEL: "silent" });
    if (isConfigError(cluster) || isSettingsError(settings)) throw new Error("bad test setup");
    const url = tmp.urls.get("t-1") as string;
    const blocker = await occupy(Number(new URL(url).port));

    await expect(startNode({ cluster, nodeId: "t-1" as NodeId, dataDir: tmp.dataDir, settings })).rejects.toMatchObject({ code: "EADDRINUSE" });
    expect(openFilesUnder(tmp.dataDir)).toEqual([]);

    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    const node = await startNode({ cluster, nodeId: "t-1" as NodeId, dataDir: tmp.dataDir, settings });
    cleanups.push(() => node.close());
    expect((await call(url, "GET", "/health")).status).toBe(200);
    expect(openFilesUnder(tmp.dataDir).length).toBeGreaterThan(0);
    await node.close();
    expect(openFilesUnder(tmp.dataDir)).toEqual([]);
  });

  it("keeps data, idempotency records and its seq across a restart", async () => {
    const tmp: TempCluster = await makeTempCluster([{ region: "t", nodes: 1 }]);
    cleanups.push(() => tmp.cleanup());
    const cluster = loadCluster(tmp.regionsDir);
    const settings = resolveSettings({}, { GEOKV_LOG_LEVEL: "silent" });
    if (isConfigError(cluster) || isSettingsError(settings)) throw new Error("bad test setup");
    const url = tmp.urls.get("t-1") as string;
    const start = () => startNode({ cluster, nodeId: "t-1" as NodeId, dataDir: tmp.dataDir, settings });

    let node = await start();
    const put = await callJson(url, "PUT", "/kv/durable", { v: 1 });
    const inc = await callJson(url, "POST", "/counters/durable", { delta: 4 }, { "idempotency-key": "restart-1" });
    expect(put.status).toBe(200);
    expect(inc.status).toBe(200);
    const lastSeq = Number((inc.json as { token: string }).token.split(":")[1]);
    await node.close();

    node = await start();
    cleanups.push(() => node.close());
    // fetch's pool may still hold a keep-alive socket the old server closed;
    // the first request on it fails, as with any server restart.
    await waitFor("the restarted node to answer", async () => (await fetch(`${url}/health`)).status === 200, 10_000);
    expect((await call(url, "GET", "/kv/durable")).json).toEqual({ key: "durable", value: { v: 1 }, version: (put.json as { version: unknown }).version });
    const retry = await callJson(url, "POST", "/counters/durable", { delta: 4 }, { "idempotency-key": "restart-1" });
    expect(retry.status).toBe(200);
    expect(retry.json).toEqual(inc.json);
    expect((await call(url, "GET", "/counters/durable")).json).toEqual({ key: "durable", value: 4 });
    const next = await callJson(url, "PUT", "/kv/durable", { v: 2 });
    expect(Number((next.json as { token: string }).token.split(":")[1])).toBe(lastSeq + 1);
    expect(((await call(url, "GET", "/status")).json as { vv: Record<string, number> }).vv).toEqual({ "t-1": lastSeq + 1 });
    // A read with a token from before the restart is served at once.
    expect((await call(url, "GET", "/kv/durable", { headers: { "x-geokv-token": (put.json as { token: string }).token } })).status).toBe(200);
  });
});

describe("a data directory copied from another node", () => {
  it("is refused with an error naming both nodes, and the copy is left as it was", async () => {
    const tmp: TempCluster = await makeTempCluster([{ region: "t", nodes: 2 }]);
    cleanups.push(() => tmp.cleanup());
    const cluster = loadCluster(tmp.regionsDir);
    const settings = resolveSettings({}, { GEOKV_LOG_LEVEL: "silent" });
    if (isConfigError(cluster) || isSettingsError(settings)) throw new Error("bad test setup");
    // t-1 writes its data directory, then stops.
    const first = await startNode({ cluster, nodeId: "t-1" as NodeId, dataDir: tmp.dataDir, settings });
    await first.close();
    // An operator restores t-2 from a file copy of t-1's directory: both would hand out t-1's dots.
    cpSync(join(tmp.dataDir, "t-1"), join(tmp.dataDir, "t-2"), { recursive: true });
    const copied = readFileSync(join(tmp.dataDir, "t-2", "geokv.db"));
    await expect(startNode({ cluster, nodeId: "t-2" as NodeId, dataDir: tmp.dataDir, settings })).rejects.toThrow(/holds the data of node t-1, not t-2; refusing to start/);
    expect(readFileSync(join(tmp.dataDir, "t-2", "geokv.db")).equals(copied)).toBe(true);
    expect(openFilesUnder(tmp.dataDir)).toEqual([]);
  });
});
