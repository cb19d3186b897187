// The `geokv` command as users run it: the built dist/cli/main.js in a child
// process. Help and mistakes (exit codes, one-line messages), configuration
// errors that name file, field and problem, a node serving the API, the data
// commands, clean shutdown on SIGTERM/SIGINT under write load (every
// acknowledged write survives, the database is closed cleanly), and
// `geokv up` (what `npm start` runs) starting and stopping a whole cluster.

import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, makeTempCluster, waitFor, type TempCluster } from "../support/cluster-files.js";
import {
  childPidsOf,
  dbPath,
  getJson,
  healthy,
  inspectDbReadonly,
  killChildren,
  pidAlive,
  runGeokv,
  sendJson,
  spawnGeokv,
  startNodeProcess,
  waitExit,
} from "./helpers.js";

const clusters: TempCluster[] = [];

async function tempCluster(specs: Parameters<typeof makeTempCluster>[0]): Promise<TempCluster> {
  const c = await makeTempCluster(specs);
  clusters.push(c);
  return c;
}

afterEach(async () => {
  await killChildren();
  for (const c of clusters.splice(0)) c.cleanup();
});

/** The lines of a stream's text, without the trailing empty one. */
function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

describe("geokv help and argument mistakes", () => {
  it("--help prints the overview and exits 0", async () => {
    const r = await runGeokv(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage:");
    expect(r.stdout).toContain("geokv node --node ID");
    expect(r.stderr).toBe("");
  });

  it("node --help and put --help print their usage and exit 0", async () => {
    const node = await runGeokv(["node", "--help"]);
    expect(node.code).toBe(0);
    expect(node.stdout).toContain("Usage: geokv node --node ID");
    expect(node.stdout).toContain("--listen HOST:PORT");
    const put = await runGeokv(["put", "--help"]);
    expect(put.code).toBe(0);
    expect(put.stdout).toContain("Usage: geokv put KEY VALUE");
  });

  it("an unknown flag exits 2 with one line naming it", async () => {
    for (const args of [["node", "--node", "x-1", "--bogus-flag"], ["put", "k", "v", "--bogus-flag"], ["--bogus-flag"]]) {
      const r = await runGeokv(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(lines(r.stderr), `${args.join(" ")}: one line`).toHaveLength(1);
      expect(r.stderr).toContain("--bogus-flag");
      expect(r.stdout).toBe("");
    }
  });

  it("an unknown command exits 2 with one line naming it", async () => {
    const r = await runGeokv(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain("frobnicate");
  });
});

describe("geokv node: configuration errors", () => {
  it("a bad region file stops the node with file, field and problem", async () => {
    const c = await tempCluster([{ region: "bad", nodes: 1 }]);
    const file = join(c.regionsDir, "bad.json");
    const region = JSON.parse(readFileSync(file, "utf8")) as { nodes: { priority: unknown }[] };
    (region.nodes[0] as { priority: unknown }).priority = "high";
    writeFileSync(file, JSON.stringify(region, null, 2));
    const r = await runGeokv(["node", "--node", "bad-1", "--regions", c.regionsDir, "--data", c.dataDir]);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain("nodes[0].priority");
    expect(r.stderr).toMatch(/must be an integer.*"high"/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("a node that is not in the configuration exits with a clear message", async () => {
    const c = await tempCluster([{ region: "r", nodes: 1 }]);
    const r = await runGeokv(["node", "--node", "nowhere-9", "--regions", c.regionsDir, "--data", c.dataDir]);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain("nowhere-9");
    expect(r.stderr).toContain("not in the configuration");
    expect(r.stderr).toContain(c.regionsDir);
  });
});

describe("geokv node and the data commands", () => {
  it("serves the API; put, get and del talk to it", async () => {
    const c = await tempCluster([{ region: "r", nodes: 1 }]);
    const url = c.urls.get("r-1") as string;
    await startNodeProcess("r-1", c.regionsDir, c.dataDir, url);

    const put = await sendJson<{ key: string; token: string }>("PUT", `${url}/kv/fetched`, { a: [1, 2] });
    expect(put.status).toBe(200);
    expect(put.body.key).toBe("fetched");
    const got = await getJson<{ value: unknown }>(`${url}/kv/fetched`);
    expect(got.status).toBe(200);
    expect(got.body.value).toEqual({ a: [1, 2] });

    const cliPut = await runGeokv(["put", "greeting", '{"hello":"world"}', "--node", url]);
    expect(cliPut.code, cliPut.stderr).toBe(0);
    expect(JSON.parse(cliPut.stdout)).toMatchObject({ key: "greeting", token: expect.stringMatching(/^r-1:\d+$/) });

    const cliGet = await runGeokv(["get", "greeting", "--node", url]);
    expect(cliGet.code, cliGet.stderr).toBe(0);
    expect(JSON.parse(cliGet.stdout)).toMatchObject({ key: "greeting", value: { hello: "world" }, version: { node: "r-1" } });

    const text = await runGeokv(["put", "plain", "just words", "--node", url]);
    expect(text.code, text.stderr).toBe(0);
    expect((await getJson<{ value: unknown }>(`${url}/kv/plain`)).body.value).toBe("just words");

    const del = await runGeokv(["del", "greeting", "--node", url]);
    expect(del.code, del.stderr).toBe(0);
    expect(JSON.parse(del.stdout)).toMatchObject({ key: "greeting" });

    const gone = await runGeokv(["get", "greeting", "--node", url]);
    expect(gone.code).toBe(1);
    expect(gone.stdout).toBe("");
    expect(gone.stderr).toContain("not_found");
  });

  it("a second process on the same data directory is refused; the first keeps its data", async () => {
    const c = await tempCluster([{ region: "r", nodes: 1 }]);
    const url = c.urls.get("r-1") as string;
    await startNodeProcess("r-1", c.regionsDir, c.dataDir, url);
    expect((await sendJson("PUT", `${url}/kv/first`, 1)).status).toBe(200);
    // --listen elsewhere, so the port cannot be what stops it.
    const other = await freePort();
    const r = await runGeokv(["node", "--node", "r-1", "--regions", c.regionsDir, "--data", c.dataDir, "--listen", `127.0.0.1:${other}`]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain(join(c.dataDir, "r-1"));
    expect(r.stderr).toContain("in use by another running geokv process");
    expect(await healthy(`http://127.0.0.1:${other}`)).toBe(false);
    expect((await getJson<{ value: unknown }>(`${url}/kv/first`)).body.value).toBe(1);
  });

  it("get against a node that is not running exits 1 saying so", async () => {
    const c = await tempCluster([{ region: "r", nodes: 1 }]);
    const url = c.urls.get("r-1") as string;
    const r = await runGeokv(["get", "k", "--node", url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach ${url}`);
  });
});

/**
 * Write load from `writers` loops (one kv key each, plus a shared counter)
 * until stopped. Records what was answered 200 and what was sent but never
 * answered (the node went away mid-request), which may or may not be stored.
 */
function writeLoad(url: string, writers: number) {
  const acked = new Map<string, string>();
  const lost = new Map<string, string>();
  const problems: string[] = [];
  let counterAcked = 0;
  let counterLost = 0;
  let stop = false;
  const send = async (path: string, method: string, body: unknown): Promise<number | "lost"> => {
    let res: Response;
    try {
      res = await fetch(`${url}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5_000),
      });
    } catch {
      return "lost";
    }
    await res.arrayBuffer().catch(() => undefined);
    return res.status;
  };
  const loops = Array.from({ length: writers }, async (_, w) => {
    for (let n = 0; !stop; n++) {
      const key = `k${w}`;
      const value = `w${w}-n${n}`;
      const put = await send(`/kv/${key}?ack=local`, "PUT", value);
      if (put === "lost") {
        lost.set(key, value);
        return; // the node is going away; this loop is done
      }
      if (put === 200) acked.set(key, value);
      else problems.push(`PUT ${key}: ${put}`);
      const inc = await send("/counters/c?ack=local", "POST", { delta: 1 });
      if (inc === "lost") {
        counterLost++;
        return;
      }
      if (inc === 200) counterAcked++;
      else problems.push(`POST /counters/c: ${inc}`);
    }
  });
  return {
    acked,
    lost,
    problems,
    counterAcked: () => counterAcked,
    counterLost: () => counterLost,
    async stop() {
      stop = true;
      await Promise.all(loops);
    },
  };
}

describe("geokv node: clean shutdown under load", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`${signal} while writes are in flight: exit 0, acknowledged writes kept, database closed cleanly`, async () => {
      const c = await tempCluster([{ region: "r", nodes: 1 }]);
      const url = c.urls.get("r-1") as string;
      const node = await startNodeProcess("r-1", c.regionsDir, c.dataDir, url);
      const load = writeLoad(url, 8);
      await waitFor("some acknowledged writes", () => load.acked.size >= 8 && load.counterAcked() >= 20, 10_000);

      node.proc.kill(signal);
      // Draining takes one commit; well under the node's 10 s grace, so busy keep-alive clients cannot stall it.
      const exit = await waitExit(node, 5_000);
      await load.stop();
      expect(exit, node.stderr()).toEqual({ code: 0, signal: null });
      // A write that got an answer while the node shut down must have been a 200, not a 500.
      expect(load.problems).toEqual([]);

      // Closed cleanly: the last connection checkpointed and removed the WAL.
      const path = dbPath(c.dataDir, "r-1");
      const wal = `${path}-wal`;
      expect(!existsSync(wal) || statSync(wal).size === 0, "WAL checkpointed on close").toBe(true);
      const db = inspectDbReadonly(path);
      expect(db.integrity).toBe("ok");
      expect(db.appliedVv).toEqual(db.opLogVv);

      await startNodeProcess("r-1", c.regionsDir, c.dataDir, url);
      expect(load.acked.size).toBe(8);
      for (const [key, value] of load.acked) {
        // One writer per key: its last acknowledged value, or a later one whose answer was lost.
        const r = await getJson<{ value: unknown }>(`${url}/kv/${key}`);
        expect(r.status).toBe(200);
        const allowed = [value, ...(load.lost.has(key) ? [load.lost.get(key)] : [])];
        expect(allowed, key).toContain(r.body.value);
      }
      const counter = await getJson<{ value: number }>(`${url}/counters/c`);
      expect(counter.body.value).toBeGreaterThanOrEqual(load.counterAcked());
      expect(counter.body.value).toBeLessThanOrEqual(load.counterAcked() + load.counterLost());
    });
  }
});

describe("geokv up (npm start)", () => {
  it("starts every node, prints their URLs, and SIGTERM stops them all", async () => {
    const c = await tempCluster([
      { region: "east", nodes: 1 },
      { region: "west", nodes: 1 },
    ]);
    const urls = [...c.urls.values()];
    const up = spawnGeokv(["up", "--regions", c.regionsDir, "--data", c.dataDir]);

    await waitFor("the URL table", () => urls.every((u) => up.stdout().includes(u)) || up.hasExited(), 15_000);
    expect(up.hasExited(), up.stderr()).toBe(false);
    for (const [id, u] of c.urls) {
      expect(up.stdout(), id).toMatch(new RegExp(`${id}\\s+${u.replace(/\./g, "\\.")}`));
    }
    for (const u of urls) await waitFor(`${u}/health`, () => healthy(u), 15_000);

    const children = childPidsOf(up.pid);
    expect(children, "one child process per node").toHaveLength(c.urls.size);

    try {
      up.proc.kill("SIGTERM");
      const exit = await waitExit(up, 15_000);
      expect(exit.code, up.stderr()).toBe(0);
      for (const pid of children) expect(pidAlive(pid), `child ${pid} stopped`).toBe(false);
      for (const u of urls) await waitFor(`${u} to stop answering`, async () => !(await healthy(u)), 5_000);
    } finally {
      // Only if the test failed: the grandchildren must not outlive it.
      for (const pid of children) if (pidAlive(pid)) process.kill(pid, "SIGKILL");
    }
  });
});
