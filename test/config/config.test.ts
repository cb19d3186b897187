// Region files are what an operator edits by hand, so every mistake must come
// back as one value naming the file, the field and the problem. These tests
// build throwaway region folders in a temp dir and check all three parts.

import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { NodeId } from "../../src/core/ids.js";
import {
  clusterId,
  findNode,
  formatConfigError,
  isConfigError,
  loadCluster,
  parseRegion,
  peersInRegion,
  regionOf,
  type ClusterConfig,
  type ConfigError,
} from "../../src/node/config.js";

const SHIPPED = join(import.meta.dirname, "../../regions");

const tempDirs: string[] = [];
afterEach(() => {
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh region folder; string contents are written verbatim, others as JSON. */
function folder(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), "geokv-config-"));
  tempDirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === "string" ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

function region(name: string, basePort: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    region: name,
    failover: "auto",
    nodes: [1, 2, 3].map((i) => ({ id: `${name}-${i}`, url: `http://127.0.0.1:${basePort + i}`, priority: 4 - i })),
    ...extra,
  };
}

function ok(result: ClusterConfig | ConfigError): ClusterConfig {
  if (isConfigError(result)) throw new Error(`unexpected config error: ${formatConfigError(result)}`);
  return result;
}

function err(result: ClusterConfig | ConfigError): ConfigError {
  if (!isConfigError(result)) throw new Error("expected a config error, got a cluster");
  return result;
}

const id = (s: string) => s as NodeId;

describe("the shipped regions/", () => {
  it("loads three regions of three nodes", () => {
    const cluster = ok(loadCluster(SHIPPED));
    expect(cluster.regions.map((r) => r.region)).toEqual(["ap-south", "eu-west", "us-east"]);
    expect(cluster.nodes.size).toBe(9);
    const ports: Record<string, number> = { "us-east": 7100, "eu-west": 7200, "ap-south": 7300 };
    for (const r of cluster.regions) {
      expect(r.failover).toBe("auto");
      expect(r.preempt).toBe(false);
      expect(r.nodes.map((n) => n.id)).toEqual([1, 2, 3].map((i) => `${r.region}-${i}`));
      expect(r.nodes.map((n) => n.priority)).toEqual([3, 2, 1]);
      expect(r.nodes.map((n) => n.port)).toEqual([1, 2, 3].map((i) => (ports[r.region] ?? 0) + i));
      for (const n of r.nodes) {
        expect(n.host).toBe("127.0.0.1");
        expect(n.url).toBe(`http://127.0.0.1:${n.port}`);
        expect(n.region).toBe(r.region);
      }
    }
  });

  it("answers node, region and peer lookups", () => {
    const cluster = ok(loadCluster(SHIPPED));
    expect(findNode(cluster, "eu-west-2")).toMatchObject({ id: "eu-west-2", region: "eu-west", port: 7202, priority: 2 });
    expect(findNode(cluster, "nope")).toBeUndefined();
    expect(regionOf(cluster, id("ap-south-3"))?.region).toBe("ap-south");
    expect(regionOf(cluster, id("nope"))).toBeUndefined();
    expect(peersInRegion(cluster, id("us-east-1")).map((n) => n.id)).toEqual(["us-east-2", "us-east-3"]);
    expect(peersInRegion(cluster, id("nope"))).toEqual([]);
  });
});

describe("clusterId", () => {
  it("is a short stable hash of the region and node ids", () => {
    const a = clusterId(ok(loadCluster(SHIPPED)));
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(clusterId(ok(loadCluster(SHIPPED)))).toBe(a);
  });

  it("ignores file names, URLs and node order, but not membership", () => {
    const base = clusterId(ok(loadCluster(folder({ "a.json": region("r1", 7000), "b.json": region("r2", 7100) }))));
    const renamed = folder({ "z.json": region("r1", 7000), "y.json": region("r2", 7100) });
    expect(clusterId(ok(loadCluster(renamed)))).toBe(base);
    const moved = folder({ "a.json": region("r1", 9000), "b.json": region("r2", 9100) });
    expect(clusterId(ok(loadCluster(moved)))).toBe(base);
    const r1 = region("r1", 7000);
    const reordered = { ...r1, nodes: [...(r1.nodes as unknown[])].reverse() };
    expect(clusterId(ok(loadCluster(folder({ "a.json": reordered, "b.json": region("r2", 7100) }))))).toBe(base);
    const bigger = region("r2", 7100);
    (bigger.nodes as unknown[]).push({ id: "r2-4", url: "http://127.0.0.1:7104" });
    expect(clusterId(ok(loadCluster(folder({ "a.json": region("r1", 7000), "b.json": bigger }))))).not.toBe(base);
  });
});

describe("loadCluster accepts", () => {
  it("defaults failover to auto, preempt to false and priority to 0", () => {
    const dir = folder({ "x.json": { region: "r", nodes: [{ id: "n1", url: "http://h:1" }] } });
    const r = ok(loadCluster(dir)).regions[0];
    expect(r).toMatchObject({ region: "r", failover: "auto", preempt: false, file: join(dir, "x.json") });
    expect(r?.nodes[0]).toMatchObject({ id: "n1", priority: 0, host: "h", port: 1 });
  });

  it("manual failover, preempt and negative priorities", () => {
    const dir = folder({ "x.json": region("r", 7000, { failover: "manual", preempt: true }) });
    expect(ok(loadCluster(dir)).regions[0]).toMatchObject({ failover: "manual", preempt: true });
    const neg = folder({ "x.json": { region: "r", nodes: [{ id: "n", url: "http://h:1", priority: -2 }] } });
    expect(ok(loadCluster(neg)).regions[0]?.nodes[0]?.priority).toBe(-2);
  });

  it("region names independent of file names", () => {
    const cluster = ok(loadCluster(folder({ "zzz.json": region("us-east", 7100) })));
    expect(cluster.regions[0]?.region).toBe("us-east");
  });

  it("the same port on different hosts, https, IPv6 and an explicit default port", () => {
    const dir = folder({
      "x.json": {
        region: "r",
        nodes: [
          { id: "a", url: "http://node-a:7000" },
          { id: "b", url: "http://node-b:7000/" },
          { id: "c", url: "https://[::1]:443" },
          { id: "d", url: "http://10.0.0.1:80" },
        ],
      },
    });
    const nodes = [...ok(loadCluster(dir)).nodes.values()];
    expect(nodes.map((n) => [n.url, n.host, n.port])).toEqual([
      ["http://node-a:7000", "node-a", 7000],
      ["http://node-b:7000", "node-b", 7000],
      ["https://[::1]:443", "::1", 443],
      ["http://10.0.0.1:80", "10.0.0.1", 80],
    ]);
  });

  it("only *.json files, skipping dotfiles, folders and other files", () => {
    const dir = folder({ "r.json": region("r", 7000), ".r.json": "{ broken", "README.md": "# not a region", "notes.json.bak": "x" });
    mkdirSync(join(dir, "sub.json"));
    symlinkSync(join(dir, "missing"), join(dir, "dangling.json"));
    expect(ok(loadCluster(dir)).regions.map((r) => r.region)).toEqual(["r"]);
  });

  it("a byte-order mark", () => {
    expect(ok(loadCluster(folder({ "r.json": `\ufeff${JSON.stringify(region("r", 7000))}` }))).nodes.size).toBe(3);
  });
});

/** A bad-file case: the files, then the expected file name, field and problem. */
interface BadCase {
  readonly name: string;
  readonly files: Record<string, unknown>;
  readonly file: string;
  readonly field: string;
  readonly problem: RegExp;
}

const good = region("good", 7900);
const nodeList = (nodes: unknown[]) => ({ region: "r", nodes });

const BAD: readonly BadCase[] = [
  {
    name: "invalid JSON (trailing comma)",
    files: { "a.json": good, "b.json": '{\n  "region": "r",\n  "nodes": [],\n}\n' },
    file: "b.json",
    field: "line 4, column 1",
    problem: /^invalid JSON: expected a property name in double quotes, got '}'$/,
  },
  {
    name: "invalid JSON (missing comma)",
    files: { "b.json": '{\n  "region": "r"\n  "nodes": []\n}' },
    file: "b.json",
    field: "line 3, column 3",
    problem: /^invalid JSON: expected ',' or '}', got '"'$/,
  },
  {
    name: "invalid JSON (truncated)",
    files: { "b.json": '{"region": "r", "nodes": [' },
    file: "b.json",
    field: "line 1, column 27",
    problem: /^invalid JSON: expected a value, got the end of the file$/,
  },
  { name: "an empty file", files: { "b.json": "  \n" }, file: "b.json", field: "(root)", problem: /file is empty/ },
  { name: "an array at the root", files: { "b.json": [] }, file: "b.json", field: "(root)", problem: /must be a JSON object, got an array/ },
  {
    name: "a missing region",
    files: { "b.json": { nodes: [{ id: "n", url: "http://h:1" }] } },
    file: "b.json",
    field: "region",
    problem: /^is required$/,
  },
  {
    name: "a region that is not a string",
    files: { "b.json": { region: 7, nodes: [{ id: "n", url: "http://h:1" }] } },
    file: "b.json",
    field: "region",
    problem: /^must be a string, got 7$/,
  },
  {
    name: "an invalid region id",
    files: { "b.json": { region: "us east", nodes: [{ id: "n", url: "http://h:1" }] } },
    file: "b.json",
    field: "region",
    problem: /"us east" is not a valid id/,
  },
  {
    name: "a bad failover value",
    files: { "a.json": region("r", 7000, { failover: "sometimes" }) },
    file: "a.json",
    field: "failover",
    problem: /^must be "auto" or "manual", got "sometimes"$/,
  },
  {
    name: "a non-boolean preempt",
    files: { "a.json": region("r", 7000, { preempt: "yes" }) },
    file: "a.json",
    field: "preempt",
    problem: /^must be true or false, got "yes"$/,
  },
  { name: "empty nodes", files: { "a.json": nodeList([]) }, file: "a.json", field: "nodes", problem: /^must list at least one node$/ },
  { name: "missing nodes", files: { "a.json": { region: "r" } }, file: "a.json", field: "nodes", problem: /^is required$/ },
  { name: "nodes not an array", files: { "a.json": { region: "r", nodes: {} } }, file: "a.json", field: "nodes", problem: /^must be an array, got \{\}$/ },
  {
    name: "a missing node id",
    files: { "a.json": nodeList([{ id: "n", url: "http://h:1" }, { url: "http://h:2" }]) },
    file: "a.json",
    field: "nodes[1].id",
    problem: /^is required$/,
  },
  {
    name: "an invalid node id",
    files: { "a.json": nodeList([{ id: "-n", url: "http://h:1" }]) },
    file: "a.json",
    field: "nodes[0].id",
    problem: /"-n" is not a valid id/,
  },
  {
    name: "a duplicate node id across files",
    files: { "a.json": region("r1", 7000), "b.json": nodeList([{ id: "x", url: "http://h:1" }, { id: "r1-2", url: "http://h:2" }]) },
    file: "b.json",
    field: "nodes[1].id",
    problem: /^duplicate node id "r1-2" \(also in .*a\.json nodes\[1\]\)$/,
  },
  {
    name: "a duplicate node id in one file",
    files: { "a.json": nodeList([{ id: "x", url: "http://h:1" }, { id: "x", url: "http://h:2" }]) },
    file: "a.json",
    field: "nodes[1].id",
    problem: /^duplicate node id "x"/,
  },
  {
    name: "a url without a port",
    files: { "a.json": nodeList([{ id: "a", url: "http://h:1" }, { id: "b", url: "http://h" }]) },
    file: "a.json",
    field: "nodes[1].url",
    problem: /^"http:\/\/h" has no port/,
  },
  {
    name: "a url that is not a URL",
    files: { "a.json": nodeList([{ id: "a", url: "127.0.0.1:7101" }]) },
    file: "a.json",
    field: "nodes[0].url",
    problem: /http:\/\/ or https:\/\/|is not a URL/,
  },
  {
    name: "a url with another scheme",
    files: { "a.json": nodeList([{ id: "a", url: "ws://h:1" }]) },
    file: "a.json",
    field: "nodes[0].url",
    problem: /must start with http:\/\/ or https:\/\//,
  },
  {
    name: "a url with a path",
    files: { "a.json": nodeList([{ id: "a", url: "http://h:1/api" }]) },
    file: "a.json",
    field: "nodes[0].url",
    problem: /without a path/,
  },
  {
    name: "a url with an out-of-range port",
    files: { "a.json": nodeList([{ id: "a", url: "http://h:70000" }]) },
    file: "a.json",
    field: "nodes[0].url",
    problem: /is not a URL/,
  },
  {
    name: "a url with port 0",
    files: { "a.json": nodeList([{ id: "a", url: "http://h:0" }]) },
    file: "a.json",
    field: "nodes[0].url",
    problem: /has port 0; expected 1 to 65535/,
  },
  {
    name: "a listen-all url",
    files: { "a.json": nodeList([{ id: "a", url: "http://0.0.0.0:7101" }]) },
    file: "a.json",
    field: "nodes[0].url",
    problem: /listen-all address/,
  },
  {
    name: "a non-string url",
    files: { "a.json": nodeList([{ id: "a", url: 7101 }]) },
    file: "a.json",
    field: "nodes[0].url",
    problem: /^must be a string, got 7101$/,
  },
  {
    name: "a non-integer priority",
    files: { "a.json": nodeList([{ id: "a", url: "http://h:1", priority: 1.5 }]) },
    file: "a.json",
    field: "nodes[0].priority",
    problem: /^must be an integer, got 1\.5$/,
  },
  {
    name: "a priority given as a string",
    files: { "a.json": nodeList([{ id: "a", url: "http://h:1", priority: "3" }]) },
    file: "a.json",
    field: "nodes[0].priority",
    problem: /^must be an integer, got "3"$/,
  },
  {
    name: "a duplicate port across files",
    files: { "a.json": region("r1", 7000), "b.json": nodeList([{ id: "x", url: "http://h:1" }, { id: "y", url: "http://127.0.0.1:7002/" }]) },
    file: "b.json",
    field: "nodes[1].url",
    problem: /^duplicate address 127\.0\.0\.1:7002 \(also used by "r1-2" in .*a\.json nodes\[1\]\)$/,
  },
  {
    name: "a duplicate address spelled with a different host case",
    files: { "a.json": nodeList([{ id: "a", url: "http://Node-A:1" }, { id: "b", url: "http://node-a:1" }]) },
    file: "a.json",
    field: "nodes[1].url",
    problem: /^duplicate address node-a:1/,
  },
  {
    name: "a duplicate region name",
    files: { "a.json": region("r", 7000), "b.json": { region: "r", nodes: [{ id: "z", url: "http://h:1" }] } },
    file: "b.json",
    field: "region",
    problem: /^duplicate region "r" \(also in .*a\.json\)$/,
  },
  {
    name: "an unknown field in a region (a typo must not pass silently)",
    files: { "a.json": region("r", 7000, { preemt: true }) },
    file: "a.json",
    field: "preemt",
    problem: /^unknown field \(expected region, failover, preempt, nodes\)$/,
  },
  {
    name: "an unknown field in a node",
    files: { "a.json": nodeList([{ id: "a", url: "http://h:1", prio: 3 }]) },
    file: "a.json",
    field: "nodes[0].prio",
    problem: /^unknown field \(expected id, url, priority\)$/,
  },
];

describe("loadCluster refuses", () => {
  it.each(BAD)("$name, naming the file, the field and the problem", (c) => {
    const dir = folder(c.files);
    const e = err(loadCluster(dir));
    expect(e.type).toBe("ConfigError");
    expect(e.file).toBe(join(dir, c.file));
    expect(e.field).toBe(c.field);
    expect(e.problem).toMatch(c.problem);
    expect(formatConfigError(e)).toBe(`${join(dir, c.file)}: ${c.field}: ${e.problem}`);
    expect(formatConfigError(e)).not.toContain("\n");
  });

  it("a missing folder", () => {
    const dir = join(folder({}), "nope");
    expect(err(loadCluster(dir))).toEqual({ type: "ConfigError", file: dir, field: "(folder)", problem: "folder does not exist" });
  });

  it("an empty folder", () => {
    const dir = folder({ "README.md": "no regions here" });
    expect(err(loadCluster(dir))).toEqual({ type: "ConfigError", file: dir, field: "(folder)", problem: "contains no *.json region files" });
  });

  it("a file where a folder should be", () => {
    const dir = folder({ "r.json": region("r", 7000) });
    const file = join(dir, "r.json");
    expect(err(loadCluster(file))).toEqual({ type: "ConfigError", file, field: "(folder)", problem: "is not a folder" });
  });

  it("and reports the first bad file in name order", () => {
    const dir = folder({ "b.json": "{", "a.json": { region: "r" }, "c.json": good });
    expect(err(loadCluster(dir))).toMatchObject({ file: join(dir, "a.json"), field: "nodes" });
  });
});

describe("parseRegion", () => {
  it("validates text without touching the disk", () => {
    const r = parseRegion("mem.json", JSON.stringify(region("m", 7000)));
    expect(isConfigError(r)).toBe(false);
    expect(parseRegion("mem.json", "{")).toMatchObject({ file: "mem.json", field: "line 1, column 2" });
  });
});
