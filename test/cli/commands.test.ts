// The `geokv` commands beyond put/get/del, as users run them (the built
// dist/cli/main.js in a child process) against one real node: counters, sets,
// docs, conflicts, stepdown and watch, each in its human form and with
// --json, the exit codes (0 ok, 1 the node refused, 2 usage), and the help
// texts that list them.

import * as Y from "yjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTempCluster, waitFor, type TempCluster } from "../support/cluster-files.js";
import { getJson, killChildren, runGeokv, spawnGeokv, startNodeProcess, waitExit } from "../process/helpers.js";

const ADMIN_TOKEN = "admin-secret";
let cluster: TempCluster;
let url: string;

beforeAll(async () => {
  cluster = await makeTempCluster([{ region: "r", nodes: 1 }]);
  url = cluster.urls.get("r-1") as string;
  await startNodeProcess("r-1", cluster.regionsDir, cluster.dataDir, url, { GEOKV_ADMIN_TOKEN: ADMIN_TOKEN });
  await waitFor("r-1 to lead its region", async () => (await fetch(`${url}/ready`)).status === 200, 15_000);
});

afterAll(async () => {
  await killChildren();
  cluster?.cleanup();
});

/** `geokv ...args --node <the node>`. */
const geokv = (...args: string[]) => runGeokv([...args, "--node", url]);

describe("help lists the commands and the exit codes", () => {
  it("geokv --help", async () => {
    const r = await runGeokv(["--help"]);
    expect(r.code).toBe(0);
    for (const c of ["incr KEY [DELTA]", "sadd|srem KEY MEMBER...", "smembers KEY", "doc get KEY", "conflicts", "stepdown --region R", "watch", "--json"]) {
      expect(r.stdout, c).toContain(c);
    }
    expect(r.stdout).toContain("Exit codes: 0 ok, 1 error from the node");
  });

  it("every command's --help gives its usage and the exit codes", async () => {
    const topics = ["incr", "sadd", "srem", "smembers", "doc", "conflicts", "stepdown", "put", "get", "del"];
    const answers = await Promise.all(topics.map((t) => runGeokv([t, "--help"])));
    topics.forEach((t, i) => {
      const r = answers[i] as Awaited<ReturnType<typeof runGeokv>>;
      expect(r.code, t).toBe(0);
      expect(r.stdout, t).toContain(`Usage: geokv ${t}`);
      expect(r.stdout, t).toContain("Exit codes: 0 ok, 1 error from the node");
      expect(r.stdout, t).toContain("--json");
    });
    const watch = await runGeokv(["watch", "--help"]);
    expect(watch.code).toBe(0);
    expect(watch.stdout).toContain("Usage: geokv watch");
  });

  it("usage mistakes exit 2 with one line and touch no node", async () => {
    const cases: [string[], string][] = [
      [["incr"], "needs KEY"],
      [["incr", "k", "one"], "DELTA must be an integer"],
      [["sadd", "s"], "at least one MEMBER"],
      [["smembers", "s", "extra"], "unexpected argument"],
      [["doc", "put", "d"], "unknown action"],
      [["conflicts", "--limit", "0"], "--limit must be an integer from 1 to 1000"],
      [["stepdown"], "needs --region R"],
      [["watch", "--interval-ms", "5"], "--interval-ms"],
      [["incr", "k", "--bogus"], "--bogus"],
    ];
    const answers = await Promise.all(cases.map(([args]) => runGeokv(args)));
    cases.forEach(([args, message], i) => {
      const r = answers[i] as Awaited<ReturnType<typeof runGeokv>>;
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.trimEnd(), `${args.join(" ")}: one line`).not.toContain("\n");
      expect(r.stderr, args.join(" ")).toContain(message);
      expect(r.stdout).toBe("");
    });
  });

  it("stepdown of a region that is not in the region files is a usage error", async () => {
    const r = await runGeokv(["stepdown", "--region", "nowhere", "--regions", cluster.regionsDir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no region "nowhere"');
  });
});

describe("data commands against a node", () => {
  it("incr: default delta 1, negative deltas, --json", async () => {
    const one = await geokv("incr", "hits");
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toBe("1\n");
    const down = await geokv("incr", "hits", "-5");
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toBe("-4\n");
    const json = await geokv("incr", "hits", "10", "--json");
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ key: "hits", value: 6 });
    expect((await getJson<{ value: number }>(`${url}/counters/hits`)).body.value).toBe(6);
  });

  it("sadd, srem and smembers: one member per line, or JSON", async () => {
    const add = await geokv("sadd", "colors", "red", "green", "blue");
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toBe("blue\ngreen\nred\n");
    const rem = await geokv("srem", "colors", "green", "--json");
    expect(rem.code, rem.stderr).toBe(0);
    expect(JSON.parse(rem.stdout)).toEqual({ key: "colors", members: ["blue", "red"] });
    const members = await geokv("smembers", "colors");
    expect(members.code, members.stderr).toBe(0);
    expect(members.stdout).toBe("blue\nred\n");
    const empty = await geokv("smembers", "never-written", "--json");
    expect(JSON.parse(empty.stdout)).toEqual({ key: "never-written", members: [] });
  });

  it("doc get: the doc's shared types as JSON, or the update as base64 with --json", async () => {
    const doc = new Y.Doc();
    doc.getText("title").insert(0, "hello");
    doc.getMap("meta").set("n", 1);
    const res = await fetch(`${url}/docs/notes/updates`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: Y.encodeStateAsUpdate(doc),
    });
    expect(res.status).toBe(200);

    const human = await geokv("doc", "get", "notes");
    expect(human.code, human.stderr).toBe(0);
    expect(JSON.parse(human.stdout)).toEqual({ meta: { n: 1 }, title: "hello" });

    const json = await geokv("doc", "get", "notes", "--json");
    expect(json.code, json.stderr).toBe(0);
    const body = JSON.parse(json.stdout) as { key: string; update: string; content: unknown };
    expect(body.key).toBe("notes");
    expect(body.content).toEqual({ meta: { n: 1 }, title: "hello" });
    const copy = new Y.Doc();
    Y.applyUpdate(copy, Buffer.from(body.update, "base64"));
    expect(copy.getText("title").toString()).toBe("hello");
  });

  it("conflicts: none recorded on a single node, in words and in JSON", async () => {
    const human = await geokv("conflicts");
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toBe("no conflicts recorded\n");
    const json = await geokv("conflicts", "--limit", "5", "--json");
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ items: [] });
  });

  it("an error from the node exits 1 with its code, as JSON on stderr with --json", async () => {
    const r = await geokv("get", "missing");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("404 not_found");
    const j = await geokv("get", "missing", "--json");
    expect(j.code).toBe(1);
    expect(j.stdout).toBe("");
    expect(JSON.parse(j.stderr)).toMatchObject({ error: { code: "not_found", status: 404 } });
  });
});

describe("stepdown", () => {
  it("refused without the admin token: exit 1 with the node's code", async () => {
    const r = await runGeokv(["stepdown", "--region", "r", "--regions", cluster.regionsDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("401 unauthorized");
    const wrong = await runGeokv(["stepdown", "--region", "r", "--regions", cluster.regionsDir, "--admin-token", "nope", "--json"]);
    expect(wrong.code).toBe(1);
    expect(JSON.parse(wrong.stderr)).toMatchObject({ error: { code: "forbidden", status: 403, node: "r-1" } });
  });

  it("finds the region's leader from the region files and steps it down (token from GEOKV_ADMIN_TOKEN)", async () => {
    const r = await runGeokv(["stepdown", "--region", "r", "--regions", cluster.regionsDir, "--json"], { GEOKV_ADMIN_TOKEN: ADMIN_TOKEN });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ region: "r", steppedDown: "r-1" });
    // A one-node region elects its only node again once it stops abstaining.
    await waitFor("r-1 to lead again", async () => (await fetch(`${url}/ready`)).status === 200, 15_000);
    const again = await runGeokv(["stepdown", "--region", "r", "--node", url, "--admin-token", ADMIN_TOKEN]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe("r-1 stepped down; region r is electing another leader\n");
    await waitFor("r-1 to lead again", async () => (await fetch(`${url}/ready`)).status === 200, 15_000);
  });
});

describe("watch", () => {
  it("without a TTY prints one plain table per second; SIGINT exits 0", async () => {
    const w = spawnGeokv(["watch", "--regions", cluster.regionsDir]);
    await waitFor("two tables", () => w.stdout().split("geokv watch").length - 1 >= 2 || w.hasExited(), 10_000);
    expect(w.hasExited(), w.stderr()).toBe(false);
    w.proc.kill("SIGINT");
    const exit = await waitExit(w, 5_000);
    expect(exit).toEqual({ code: 0, signal: null });
    const out = w.stdout();
    expect(out).not.toContain("\x1b");
    const tables = out.split("\n\n").filter((t) => t.trim() !== "");
    expect(tables.length).toBeGreaterThanOrEqual(2);
    for (const t of tables) {
      const [head, columns, row] = t.split("\n");
      expect(head).toMatch(/^geokv watch {2}\d{4}-\d\d-\d\dT/);
      expect(columns).toMatch(/^REGION\s+NODE\s+ROLE\s+LEADER/);
      expect(row).toMatch(/^r\s+r-1\s+(leader|follower|candidate)/);
    }
  });
});
