// POST /admin/compact and /status's storage figures on a real one-node
// cluster (SQLite file, HTTP server): the op log is cut to the retention
// bound once its ops are stable, the floor and the frontier are reported and
// persisted, replication state is untouched, and the admin token guards it.

import { afterEach, describe, expect, it } from "vitest";
import type { StatusView } from "../../src/api/types.js";
import { call, callJson, metricValue, startTestNode, type TestNode } from "./helpers.js";

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

async function status(url: string): Promise<StatusView> {
  return (await call(url, "GET", "/status")).json as StatusView;
}

async function putMany(url: string, n: number, prefix: string): Promise<void> {
  for (let i = 0; i < n; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, n - i) }, async (_, j) => {
      const a = await callJson(url, "PUT", `/kv/${prefix}${(i + j) % 50}`, { v: i + j });
      expect(a.status).toBe(200);
    }));
  }
}

describe("op-log compaction over HTTP", () => {
  it("cuts the log to --op-log-retain-ops on POST /admin/compact and reports it in /status", async () => {
    node = await startTestNode({ flags: { "op-log-retain-ops": "40" } });
    await putMany(node.url, 300, "k");
    const before = await status(node.url);
    // The background pass (every second) may have run already: what is logged plus what was compacted is every op.
    const compactedBefore = before.storage?.compactedVv["t-1"] ?? 0;
    expect((before.storage?.opLogOps ?? 0) + compactedBefore).toBe(300);
    expect(before.storage?.opLogBytes).toBeGreaterThan(40 * 5);
    // A one-node cluster: everything it committed is stable.
    expect(before.storage?.stableVv).toEqual(before.vv);

    const r = await call(node.url, "POST", "/admin/compact");
    expect(r.status).toBe(200);
    const report = r.json as { compactedOps: number; opLogOps: number; compactedVv: Record<string, number>; stableVv: Record<string, number> };
    // What the background had not taken yet (it may run between /status and this call).
    expect(report.compactedOps).toBeLessThanOrEqual(260 - compactedBefore);
    expect(report.opLogOps).toBe(40);
    expect(report.compactedVv).toEqual({ "t-1": 260 });

    const after = await status(node.url);
    expect(after.storage?.opLogOps).toBe(40);
    expect(after.storage?.opLogBytes).toBeLessThanOrEqual(before.storage?.opLogBytes ?? 0);
    expect(after.storage?.compactedVv).toEqual({ "t-1": 260 });
    expect(after.vv).toEqual(before.vv);
    expect(after.storage?.dbBytes).toBeGreaterThan(0);
    // The data is all there, and new writes carry on after the floor.
    expect((await call(node.url, "GET", "/kv/k7")).json).toMatchObject({ value: { v: 257 } });
    await putMany(node.url, 10, "n");
    expect((await status(node.url)).vv).toEqual({ "t-1": 310 });
    // A second pass leaves the bound again (the background may have taken the new excess first).
    const again = (await call(node.url, "POST", "/admin/compact")).json as { compactedOps: number; opLogOps: number; compactedVv: Record<string, number> };
    expect(again).toMatchObject({ opLogOps: 40, compactedVv: { "t-1": 270 } });
  });

  it("compacts in the background too, and the frontier survives a restart", async () => {
    node = await startTestNode({ flags: { "op-log-retain-ops": "10" } });
    await putMany(node.url, 100, "k");
    const deadline = Date.now() + 15_000;
    let s = await status(node.url);
    while ((s.storage?.opLogOps ?? Infinity) > 10 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      s = await status(node.url);
    }
    expect(s.storage?.opLogOps).toBe(10);
    expect(node.node.storage.getMeta("stableVv")).toEqual({ "t-1": 100 });
    // /metrics shows the log and the in-memory caches with their budgets.
    const text = (await call(node.url, "GET", "/metrics")).text;
    expect(metricValue(text, "geokv_op_log_ops")).toBe(10);
    expect(metricValue(text, "geokv_op_log_bytes")).toBe(s.storage?.opLogBytes);
    expect(metricValue(text, "geokv_kv_cache_bytes")).toBeGreaterThan(0);
    expect(metricValue(text, "geokv_kv_cache_budget_bytes")).toBe(128 * 1024 * 1024);
    expect(metricValue(text, "geokv_page_cache_budget_bytes")).toBe(32 * 1024 * 1024);
  });

  it("drops stable kv tombstones, and a deleted key written again is live again", async () => {
    node = await startTestNode({ flags: { "op-log-retain-ops": "5" } });
    await putMany(node.url, 50, "k");
    for (let i = 0; i < 20; i++) expect((await call(node.url, "DELETE", `/kv/k${i}`)).status).toBe(200);
    const storage = node.node.storage;
    expect(storage.listTombstones("", 100).length).toBe(20);
    // The first pass that sees every member takes a horizon; a later one sweeps under it (the background may have done either).
    let dropped = 0;
    for (let i = 0; i < 3 && storage.listTombstones("", 100).length > 5; i++) {
      dropped += ((await call(node.url, "POST", "/admin/compact")).json as { droppedTombstones: number }).droppedTombstones;
    }
    // Tombstones go with the part of the log that was compacted (up to seq 65): the 5 deletes still in the log stay.
    expect(storage.listTombstones("", 100).map((r) => r.key)).toEqual(["k15", "k16", "k17", "k18", "k19"]);
    expect(dropped).toBeLessThanOrEqual(15);
    expect(storage.getMeta("sweptVv")).toEqual({ "t-1": 65 });
    expect((await call(node.url, "GET", "/kv/k3")).status).toBe(404);
    expect((await call(node.url, "GET", "/kv/k30")).json).toMatchObject({ value: { v: 30 } });
    // Written again, the key carries the swept context and reads back.
    expect((await callJson(node.url, "PUT", "/kv/k3", "again")).status).toBe(200);
    expect((await call(node.url, "GET", "/kv/k3")).json).toMatchObject({ value: "again" });
    expect(storage.getKv("k3")?.siblings[0]?.vv).toEqual({ "t-1": 71 });
  });

  it("needs the admin token when one is set", async () => {
    node = await startTestNode({ env: { GEOKV_ADMIN_TOKEN: "adm-secret-1" }, flags: { "op-log-retain-ops": "5" } });
    expect((await call(node.url, "POST", "/admin/compact")).status).toBe(401);
    const ok = await call(node.url, "POST", "/admin/compact", { headers: { authorization: "Bearer adm-secret-1" } });
    expect(ok.status).toBe(200);
  });
});
