// A pooled keep-alive connection must not be reused as the server closes it.
// A node closes an idle connection after --idle-timeout-ms and says so in
// every answer (`Keep-Alive: timeout=N`). A request written to a connection
// the server is closing is lost with a reset (ECONNRESET), and the window is
// as wide as the server's event-loop turn: a loaded node's timer fires
// before it reads what arrived meanwhile. Node 20's agent closes idle sockets
// a second before the hint only when it has a `timeout` of its own; these
// tests hold the two agents geokv makes (the SDK's https fetch, the node's
// forward pool) to it. The server is a child process that, right before its
// idle timer fires, holds its loop for a second in the check phase (a loaded
// node's long group commit); the second request is sent inside that window.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpRequest, type Agent } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpsFetch } from "../../src/client/https-fetch.js";
import { forwardAgent } from "../../src/node/doc-writer.js";
import { issueNodeCert, makeCa, type CertFiles } from "../support/tls-certs.js";

/** The server's idle timeout: its hint reads timeout=3, so a good agent drops the socket after 2 s. */
const IDLE_MS = 3000;
/**
 * After each answer the server holds its loop from HOLD_AT_MS for HOLD_MS:
 * across its idle timer, which fires at IDLE_MS, or a second later on a Node
 * that pads its own timer (20.20 does), so the timer is run before the
 * request that came during the hold is read.
 */
const HOLD_AT_MS = IDLE_MS - 600;
const HOLD_MS = 2000;
/** The client's second request goes this long after the first answer: inside the hold, after a good agent dropped the socket. */
const SECOND_AFTER_MS = IDLE_MS - 300;

const SERVER = `
  const tls = process.argv[1] === "tls";
  const mod = require(tls ? "node:https" : "node:http");
  const fs = require("node:fs");
  const handler = (req, res) => {
    req.resume();
    req.on("end", () => {
      // Held in the check phase (where a node's group commit runs): the next turn runs its expired timers, the idle one among them, before it reads the socket.
      res.on("finish", () => setTimeout(() => setImmediate(() => { const end = Date.now() + ${HOLD_MS}; while (Date.now() < end); }), ${HOLD_AT_MS}));
      res.end("ok");
    });
  };
  const server = tls ? mod.createServer({ key: fs.readFileSync(process.argv[2]), cert: fs.readFileSync(process.argv[3]) }, handler) : mod.createServer(handler);
  server.keepAliveTimeout = ${IDLE_MS};
  server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

let dir: string;
let ca: CertFiles;
let cert: CertFiles;
const children: ChildProcess[] = [];

/** Starts the holding server (plain or TLS) in a child process; resolves with its port. */
function startServer(tls: boolean): Promise<number> {
  const child = spawn(process.execPath, ["-e", SERVER, tls ? "tls" : "plain", cert.key, cert.cert], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout?.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "geokv-keepalive-"));
  ca = makeCa(dir, "keepalive-ca");
  cert = issueNodeCert(dir, ca, "server", "127.0.0.1");
});

afterAll(() => {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid);
  rmSync(dir, { recursive: true, force: true });
});

describe("keep-alive reuse against a server closing idle connections", () => {
  it("the SDK's https fetch opens a new connection instead of reusing one the server is closing", async () => {
    const port = await startServer(true);
    const f = createHttpsFetch({ ca: readFileSync(ca.cert) });
    const first = await f(`https://127.0.0.1:${port}/`, { method: "POST", body: "a" });
    expect(first.status).toBe(200);
    await pause(SECOND_AFTER_MS);
    const second = await f(`https://127.0.0.1:${port}/`, { method: "POST", body: "b" });
    expect(second.status).toBe(200);
    expect(await second.text()).toBe("ok");
  });

  it("the node's forward pool does the same, plain and over TLS", async () => {
    for (const tls of [false, true]) {
      const port = await startServer(tls);
      const agent: Agent = forwardAgent(tls ? { ca: readFileSync(ca.cert), cert: readFileSync(cert.cert), key: readFileSync(cert.key), peerMtls: false } : undefined);
      const post = (body: string) =>
        new Promise<number>((resolve, reject) => {
          const send = tls ? (httpsRequest as typeof httpRequest) : httpRequest;
          const req = send(`${tls ? "https" : "http"}://127.0.0.1:${port}/`, { method: "POST", agent, headers: { "content-length": String(body.length) } }, (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          });
          req.on("error", reject);
          req.end(body);
        });
      expect(await post("a")).toBe(200);
      await pause(SECOND_AFTER_MS);
      expect(await post("b")).toBe(200);
      agent.destroy();
    }
  });
});
