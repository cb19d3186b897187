// Scoped tokens on real processes: a three-node region started with
// `--tokens FILE` only (no token variables), the file written from what the
// built `geokv token hash` prints. Writes sent to a follower are forwarded
// with the client's token and pass the leader's check; a read token's write
// is refused where it lands and changes nothing anywhere; a live document
// edited on a follower reaches the leader with the client's token; no token
// appears in any node's log (debug logs every request). A bad tokens file
// stops the node with the file and the entry named.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as Y from "yjs";
import { afterAll, describe, expect, it } from "vitest";
import { call, regionLeader, startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";
import { editor, synced } from "../yjs/support.js";
import { CLI, runGeokv } from "./helpers.js";

const WRITER = "proc-writer-7f3a9c";
const READER = "proc-reader-2b8e41";
const OPS = "proc-ops-c55d07";
const KV_ONLY = "proc-kv-only-91ad3e";

const clusters: ProcCluster[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** `geokv token hash` with the token on stdin, as the help says to run it. */
function hashByCli(token: string): string {
  const r = spawnSync(process.execPath, [CLI, "token", "hash"], { input: `${token}\n`, encoding: "utf8", timeout: 20_000 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe("a region started with --tokens FILE", () => {
  it("enforces the file's scopes on every node, forwards with the client's token, and never logs a token", async () => {
    const hash = hashByCli(WRITER);
    expect(hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The argument form prints the same line.
    expect((await runGeokv(["token", "hash", WRITER])).stdout).toBe(`${hash}\n`);

    const dir = mkdtempSync(join(tmpdir(), "geokv-tokens-"));
    dirs.push(dir);
    const file = join(dir, "tokens.json");
    writeFileSync(
      file,
      JSON.stringify([
        { "token-hash": hash, scopes: ["read", "write"] },
        { "token-hash": hashByCli(READER), scopes: ["read"] },
        { "token-hash": hashByCli(OPS), scopes: ["admin"] },
        { "token-hash": hashByCli(KV_ONLY), scopes: ["read", "write"], namespaces: ["kv"] },
      ]),
    );
    const started = await startProcCluster([{ region: "p", nodes: 3 }], { env: { GEOKV_LOG_LEVEL: "debug" }, args: ["--tokens", file] });
    clusters.push(started);
    const nodes = started.regions.get("p") as string[];
    const url = (n: string) => started.urls.get(n) as string;
    const { leader, followers } = await regionLeader(started, "p");
    const follower = followers[0] as string;

    // Written through a follower (forwarded to the leader with the same token), read on every node.
    const put = await call(`${url(follower)}/kv/k?ack=region`, "PUT", "v1", bearer(WRITER));
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect((await call(`${url(leader)}/kv/k2`, "PUT", "v2", bearer(KV_ONLY))).status).toBe(200);
    expect((await call(`${url(follower)}/counters/c`, "POST", { delta: 1 }, bearer(KV_ONLY))).status).toBe(403);
    for (const n of nodes) {
      await waitFor(`${n} has k`, async () => (await call(`${url(n)}/kv/k`, "GET", undefined, bearer(READER))).body.value === "v1", 20_000);
    }

    // A read token's write is refused on the follower and on the leader, and changes nothing.
    const vvBefore = (await call(`${url(leader)}/status`)).body.vv;
    for (const n of [follower, leader]) {
      const r = await call(`${url(n)}/kv/k`, "PUT", "changed", bearer(READER));
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe("forbidden");
    }
    expect((await call(`${url(follower)}/kv/k`)).status).toBe(401);
    expect((await call(`${url(leader)}/status`)).body.vv).toEqual(vvBefore);
    for (const n of nodes) expect((await call(`${url(n)}/kv/k`, "GET", undefined, bearer(READER))).body.value).toBe("v1");

    // Admin and metrics follow the file too.
    expect((await call(`${url(follower)}/admin/faults`, "POST", { clear: true }, bearer(WRITER))).status).toBe(403);
    expect((await call(`${url(follower)}/admin/faults`, "POST", { clear: true }, bearer(OPS))).status).toBe(200);
    expect((await call(`${url(follower)}/metrics`)).status).toBe(401);
    expect((await call(`${url(follower)}/metrics`, "GET", undefined, bearer(READER))).status).toBe(200);

    // A live document edited on a follower: the follower has no token of its own, so it passes the client's.
    const e = editor(url(follower), "live", { params: { token: WRITER } });
    try {
      await synced(e);
      e.text.insert(0, "edited on a follower");
      await waitFor("the edit is stored on the leader", async () => {
        const r = await fetch(`${url(leader)}/docs/live`, { headers: bearer(READER) });
        const d = new Y.Doc();
        Y.applyUpdate(d, new Uint8Array(await r.arrayBuffer()));
        return d.getText("t").toString() === "edited on a follower";
      }, 20_000);
    } finally {
      e.destroy();
    }

    // Debug logs every request (and the yjs connection); no token is in any of them.
    for (const n of nodes) {
      const log = readFileSync(started.logFile(n), "utf8");
      expect(log).toMatch(/"path":"\/kv\/k"/);
      for (const t of [WRITER, READER, OPS, KV_ONLY]) expect(log, `${n}'s log`).not.toContain(t);
    }
  });
});

describe("a bad tokens file", () => {
  it("stops the node with a message naming the file and the entry", async () => {
    const c = await startProcCluster([{ region: "b", nodes: 1 }], { deferred: ["b-1"] });
    clusters.push(c);
    const file = join(c.files.root, "bad-tokens.json");
    const cases: Array<[string, RegExp]> = [
      ["{oops", /not JSON/],
      [JSON.stringify([{ "token-hash": hashByCli("a"), scopes: ["read"] }, { "token-hash": hashByCli("b"), scopes: ["superuser"] }]), /entry 2: "scopes" has "superuser"/],
      [JSON.stringify([{ "token-hash": "sha256:xyz", scopes: ["read"] }]), /entry 1: "token-hash" must be sha256:/],
      [JSON.stringify({ tokens: [] }), /must be a JSON list/],
    ];
    for (const [text, problem] of cases) {
      writeFileSync(file, text);
      const r = await runGeokv(["node", "--node", "b-1", "--regions", c.files.regionsDir, "--data", c.files.dataDir, "--tokens", file]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`tokens file ${file}`);
      expect(r.stderr).toMatch(problem);
    }
    // The same through the variable, and a file that is not there.
    const missing = await runGeokv(["node", "--node", "b-1", "--regions", c.files.regionsDir, "--data", c.files.dataDir], { GEOKV_TOKENS_FILE: join(c.files.root, "none.json") });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/tokens file .*none\.json: cannot be read \(ENOENT\)/);
  });
});
