// Test support: free loopback ports and throwaway region folders, so every
// test file can start real nodes without colliding with another file's ports
// or with a cluster a developer is running on the shipped ports.

import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface TempRegionSpec {
  readonly region: string;
  readonly nodes: number;
  readonly failover?: "auto" | "manual";
  readonly preempt?: boolean;
  /** "https" for a TLS cluster (default "http"). */
  readonly scheme?: "http" | "https";
}

/** A temp folder with regions/ (one file per region, free ports) and data/. */
export interface TempCluster {
  readonly root: string;
  readonly regionsDir: string;
  readonly dataDir: string;
  /** node id -> base URL */
  readonly urls: Map<string, string>;
  /** Node ids per region, highest priority first. */
  readonly regions: Map<string, string[]>;
  cleanup(): void;
}

/** Writes region files for `specs` with free loopback ports; node ids are "<region>-<i>". */
export async function makeTempCluster(specs: readonly TempRegionSpec[]): Promise<TempCluster> {
  const root = mkdtempSync(join(tmpdir(), "geokv-test-"));
  const regionsDir = join(root, "regions");
  const dataDir = join(root, "data");
  mkdirSync(regionsDir);
  mkdirSync(dataDir);
  const urls = new Map<string, string>();
  const regions = new Map<string, string[]>();
  const taken = new Set<number>();
  for (const spec of specs) {
    const nodes = [];
    for (let i = 1; i <= spec.nodes; i++) {
      const id = `${spec.region}-${i}`;
      // The OS may hand out a port it just gave: two nodes on one port is a configuration the node refuses (exit 2).
      let port = await freePort();
      while (taken.has(port)) port = await freePort();
      taken.add(port);
      const url = `${spec.scheme ?? "http"}://127.0.0.1:${port}`;
      urls.set(id, url);
      nodes.push({ id, url, priority: spec.nodes - i + 1 });
    }
    regions.set(spec.region, nodes.map((n) => n.id));
    const file = { region: spec.region, failover: spec.failover ?? "auto", preempt: spec.preempt ?? false, nodes };
    writeFileSync(join(regionsDir, `${spec.region}.json`), JSON.stringify(file, null, 2));
  }
  return { root, regionsDir, dataDir, urls, regions, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
