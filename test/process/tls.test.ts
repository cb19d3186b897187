// TLS end to end (DESIGN.md, Security): a 3-node region of real processes
// with https:// URLs and --peer-mtls, certificates made on the fly with the
// openssl CLI. It checks that election, replication and write forwarding
// work over TLS, that the SDK, the CLI, the Yjs endpoint and the dashboard
// work against https:// with the test CA, that plain HTTP to the port gets a
// clear answer, and that peers with a certificate from another CA, or one
// naming another node id, are refused with the reason in /status and the log;
// the refused node rejoins once it has the right certificate. A second region
// runs TLS without --peer-mtls, and bad TLS settings stop `geokv node`.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import * as Y from "yjs";
import { createClient } from "../../src/client/index.js";
import { createHttpsFetch } from "../../src/client/https-fetch.js";
import { makeTempCluster } from "../support/cluster-files.js";
import { call, regionLeader, startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";
import { issueNodeCert, makeCa, tlsEnv, type CertFiles } from "../support/tls-certs.js";
import { editor, synced } from "../yjs/support.js";
import { killChildren, runGeokv } from "./helpers.js";

const NODES = ["r-1", "r-2", "r-3"];

let pki: string;
let ca: CertFiles;
/** Another cluster's CA: a node with its certificate must be refused. */
let otherCa: CertFiles;
let caPem: Buffer;
let certs: Map<string, CertFiles>;
let c: ProcCluster;
let via: typeof fetch;

/** GET /status of a node, over TLS. */
async function status(node: string) {
  return (await call(`${c.urls.get(node)}/status`, "GET", undefined, {}, via)).body;
}

/** The reason `node` reports for refusing (or being refused by) `peer`, or undefined. */
async function refusal(node: string, peer: string): Promise<string | undefined> {
  const s = await status(node);
  return (s.refusedBy as { node: string; reason: string }[] | undefined)?.find((r) => r.node === peer)?.reason;
}

beforeAll(async () => {
  pki = mkdtempSync(join(tmpdir(), "geokv-pki-"));
  ca = makeCa(pki, "cluster-ca");
  caPem = readFileSync(ca.cert);
  otherCa = makeCa(pki, "other-ca");
  certs = new Map(NODES.map((n) => [n, issueNodeCert(pki, ca, n, n)]));
  // The test itself trusts both CAs, so it can watch the misconfigured node too; the nodes trust only theirs.
  via = createHttpsFetch({ ca: Buffer.concat([caPem, readFileSync(otherCa.cert)]) });
  c = await startProcCluster([{ region: "r", nodes: 3, scheme: "https" }], {
    nodeEnv: Object.fromEntries(NODES.map((n) => [n, tlsEnv(certs.get(n) as CertFiles, ca.cert, true)])),
    fetch: via,
  });
});

afterAll(async () => {
  await c?.close();
  await killChildren();
  if (pki) rmSync(pki, { recursive: true, force: true });
});

describe("a region over TLS with --peer-mtls", () => {
  it("elects a leader over wss:// links, forwards writes over https and converges", async () => {
    for (const n of NODES) expect(c.urls.get(n)).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const { leader, followers } = await regionLeader(c, "r");
    // Through a follower: the write is forwarded to the leader over https with the CA.
    const client = createClient({ nodes: [c.urls.get(followers[0] as string) as string], ca: caPem });
    try {
      for (let i = 0; i < 10; i++) await client.put(`k${i}`, { i });
      expect(await client.get("k3")).toMatchObject({ value: { i: 3 } });
    } finally {
      client.close();
    }
    for (const n of NODES) {
      await waitFor(`${n} to hold all 10 keys`, async () => {
        const r = await call(`${c.urls.get(n)}/kv/k9`, "GET", undefined, {}, via);
        return r.status === 200 && r.body.value.i === 9;
      }, 15_000);
    }
    const s = await status(leader);
    expect(s.peers.every((p: { state: string }) => p.state === "up")).toBe(true);
    expect(s.refusedBy).toBeUndefined();
  });

  it("fails over over TLS: the leader killed, another is elected and takes writes; the old one rejoins", async () => {
    const { leader, followers } = await regionLeader(c, "r");
    const before = (await status(leader)).epoch as number;
    await c.stop(leader);
    const next = await waitFor("a new leader among the survivors", async () => {
      for (const n of followers) {
        const s = await status(n).catch(() => null);
        if (s?.role === "leader" && s.epoch > before) return n;
      }
      return null;
    }, 15_000);
    const client = createClient({ nodes: followers.map((n) => c.urls.get(n) as string), ca: caPem });
    try {
      await client.put("after-failover", next);
    } finally {
      client.close();
    }
    await c.start(leader);
    await waitFor(`${leader} to catch up`, async () => (await call(`${c.urls.get(leader)}/kv/after-failover`, "GET", undefined, {}, via)).body?.value === next, 15_000);
    await regionLeader(c, "r");
  });

  it("answers plain HTTP on the HTTPS port with a clear 400", async () => {
    const https = c.urls.get("r-1") as string;
    const res = await fetch(`${https.replace(/^https:/, "http:")}/status`, { signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: "bad_request", message: `this port serves HTTPS only: use ${https}` } });
  });

  it("refuses an SDK without the CA with the certificate error", async () => {
    const client = createClient({ nodes: [c.urls.get("r-1") as string], timeoutMs: 1000 });
    try {
      await expect(client.get("k1")).rejects.toThrow(/certificate/);
    } finally {
      client.close();
    }
  });

  it("serves the CLI's remote commands over https with --ca", async () => {
    const url = c.urls.get("r-2") as string;
    const put = await runGeokv(["put", "cli-key", "42", "--node", url, "--ca", ca.cert]);
    expect(put.stderr).toBe("");
    expect(put.code).toBe(0);
    const get = await runGeokv(["get", "cli-key", "--node", url, "--ca", ca.cert]);
    expect(get.code).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({ key: "cli-key", value: 42 });
    const table = await runGeokv(["status", "--regions", c.files.regionsDir], { GEOKV_CA: ca.cert });
    expect(table.code).toBe(0);
    for (const n of NODES) expect(table.stdout).toMatch(new RegExp(`${n}\\s+(leader|follower)\\s`));
    expect(table.stdout).not.toMatch(/unreachable/);
    // Without the CA the node's certificate is not trusted: the command says so and exits 1.
    const untrusted = await runGeokv(["get", "cli-key", "--node", url]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/certificate/);
    const missing = await runGeokv(["get", "cli-key", "--node", url, "--ca", join(pki, "nope.pem")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--ca: cannot read .*nope\.pem \(ENOENT\)/);
  });

  it("serves /yjs over wss:// and the dashboard, whose controls call the other nodes over https", async () => {
    class TlsWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { ca: caPem });
      }
    }
    const webSocket = TlsWebSocket as unknown as typeof WebSocket;
    const { leader, followers } = await regionLeader(c, "r");
    /** The text "t" of the room as a node stores it (GET /docs over https). */
    const storedText = async (node: string): Promise<string> => {
      const r = await via(`${c.urls.get(node)}/docs/tls-room`);
      const doc = new Y.Doc();
      Y.applyUpdate(doc, new Uint8Array(await r.arrayBuffer()));
      return doc.getText("t").toString();
    };
    // An editor on a follower only: no room is open on the leader, so the edit
    // reaches it through the follower's doc writer, over https with the CA.
    const a = editor(c.urls.get(followers[0] as string) as string, "tls-room", { webSocket });
    try {
      await synced(a);
      a.text.insert(0, "over tls");
      await waitFor("the leader to store the follower's edit", async () => (await storedText(leader)) === "over tls", 15_000);
    } finally {
      a.destroy();
    }
    const b = editor(c.urls.get(followers[1] as string) as string, "tls-room", { webSocket });
    try {
      await synced(b);
      await waitFor("an editor on the other follower to get the text", () => b.text.toString() === "over tls", 15_000);
    } finally {
      b.destroy();
    }
    const page = await via(`${c.urls.get("r-2")}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    // The dashboard's key lookup asks the region's leader, over https with the cluster CA.
    const looked = await waitFor("the dashboard to read k1 from the leader", async () => {
      const r = await call(`${c.urls.get("r-2")}/dashboard/key/k1`, "GET", undefined, {}, via);
      return r.body.regions?.[0]?.ok === true ? r.body : null;
    }, 10_000);
    expect(looked.regions[0]).toMatchObject({ region: "r", status: 200, body: { key: "k1", value: { i: 1 } } });
  });

  it("refuses a peer whose certificate is from another CA, and says why", async () => {
    const foreign = issueNodeCert(pki, otherCa, "r-2-foreign", "r-2");
    await c.stop("r-2");
    await c.start("r-2", tlsEnv(foreign, otherCa.cert, true));
    // r-1 dials r-2 and does not trust its certificate; r-2 (trusting only the other CA) refuses r-3's.
    const seen = await waitFor("r-1 to refuse r-2's certificate", () => refusal("r-1", "r-2"), 15_000);
    expect(seen).toMatch(/^the TLS certificate of r-2 is not issued by this node's --tls-ca \(/);
    const back = await waitFor("r-2 to refuse r-3's certificate", () => refusal("r-2", "r-3"), 15_000);
    expect(back).toMatch(/^the TLS certificate of r-3 is not issued by this node's --tls-ca/);
    expect(readFileSync(c.logFile("r-1"), "utf8")).toMatch(/link with r-2 refused: the TLS certificate of r-2 is not issued by this node's --tls-ca/);
    expect((await status("r-1")).peers.find((p: { node: string }) => p.node === "r-2").state).toBe("down");
  });

  it("refuses a peer whose certificate names another node id, and lets it rejoin with the right one", async () => {
    const impostor = issueNodeCert(pki, ca, "r-2-as-r-9", "r-9");
    await c.stop("r-2");
    await c.start("r-2", tlsEnv(impostor, ca.cert, true));
    // r-1 dials r-2 and reads r-9 in its certificate; r-3 is dialed by r-2 and reads it in its client certificate.
    const byDialer = await waitFor("r-1 to refuse r-2 as r-9", async () => (await refusal("r-1", "r-2"))?.includes("r-9") && refusal("r-1", "r-2"), 15_000);
    expect(byDialer).toBe("the TLS certificate of r-2 names r-9, not r-2 (--peer-mtls needs subjectAltName DNS:r-2 or URI:geokv:node:r-2)");
    const byAcceptor = await waitFor("r-3 to refuse r-2 as r-9", async () => (await refusal("r-3", "r-2"))?.includes("r-9") && refusal("r-3", "r-2"), 15_000);
    expect(byAcceptor).toBe(byDialer);
    // r-2 reads r-3's close reason: the node with the wrong certificate learns why too.
    const told = await waitFor("r-2 to hear why r-3 refused it", () => refusal("r-2", "r-3"), 15_000);
    expect(told).toBe(byDialer);
    expect(readFileSync(c.logFile("r-3"), "utf8")).toMatch(/link with r-2 refused: the TLS certificate of r-2 names r-9/);

    // A write while r-2 is out, then r-2 with its own certificate: it rejoins and catches up.
    const client = createClient({ nodes: [c.urls.get("r-1") as string, c.urls.get("r-3") as string], ca: caPem });
    try {
      await client.put("while-refused", "yes");
    } finally {
      client.close();
    }
    await c.stop("r-2");
    await c.start("r-2");
    await waitFor("r-2 to catch up", async () => (await call(`${c.urls.get("r-2")}/kv/while-refused`, "GET", undefined, {}, via)).body?.value === "yes", 15_000);
    await waitFor("r-1 and r-3 to see r-2 up with no refusal", async () => {
      for (const n of ["r-1", "r-3"]) {
        const s = await status(n);
        if (s.refusedBy !== undefined || s.peers.find((p: { node: string }) => p.node === "r-2").state !== "up") return false;
      }
      return true;
    }, 15_000);
  });
});

describe("a region over TLS without --peer-mtls", () => {
  it("verifies peers against the CA only: a node whose certificate names another id still joins", async () => {
    const env = (file: string, names: string) => tlsEnv(issueNodeCert(pki, ca, file, names), ca.cert, false);
    const p = await startProcCluster([{ region: "p", nodes: 3, scheme: "https" }], {
      nodeEnv: { "p-1": env("p-1", "p-1"), "p-2": env("p-2-as-x", "x-9"), "p-3": env("p-3", "p-3") },
      fetch: via,
    });
    try {
      const { leader } = await regionLeader(p, "p");
      const client = createClient({ nodes: [p.urls.get("p-3") as string], ca: caPem });
      try {
        await client.put("plain-tls", leader);
      } finally {
        client.close();
      }
      for (const n of ["p-1", "p-2", "p-3"]) {
        await waitFor(`${n} to hold the write`, async () => (await call(`${p.urls.get(n)}/kv/plain-tls`, "GET", undefined, {}, via)).body?.value === leader, 15_000);
        expect((await call(`${p.urls.get(n)}/status`, "GET", undefined, {}, via)).body.refusedBy).toBeUndefined();
      }
    } finally {
      await p.close();
    }
  });
});

describe("bad TLS configuration stops geokv node with a message naming the flag or file", () => {
  it("refuses an https URL without a certificate, a certificate without its key, and a missing file", async () => {
    const files = await makeTempCluster([{ region: "b", nodes: 1, scheme: "https" }]);
    try {
      const node = ["node", "--node", "b-1", "--regions", files.regionsDir, "--data", files.dataDir];
      const noCert = await runGeokv(node);
      expect(noCert.code).toBe(2);
      expect(noCert.stderr).toMatch(/^geokv: bad setting: --tls-cert: node b-1's URL in .*b\.json is https:\/\/127\.0\.0\.1:\d+: serving https needs --tls-cert, --tls-key and --tls-ca/);
      const noKey = await runGeokv([...node, "--tls-cert", certs.get("r-1")?.cert as string, "--tls-ca", ca.cert]);
      expect(noKey.code).toBe(2);
      expect(noKey.stderr).toBe("geokv: bad setting: --tls-key: is missing: --tls-cert needs --tls-cert, --tls-key and --tls-ca together (or GEOKV_TLS_KEY)\n");
      const gone = join(pki, "gone.key");
      const unreadable = await runGeokv(node, { GEOKV_TLS_CERT: certs.get("r-1")?.cert as string, GEOKV_TLS_KEY: gone, GEOKV_TLS_CA: ca.cert });
      expect(unreadable.code).toBe(2);
      expect(unreadable.stderr).toBe(`geokv: bad setting: GEOKV_TLS_KEY: cannot read ${gone}: no such file\n`);
    } finally {
      files.cleanup();
    }
  });
});
