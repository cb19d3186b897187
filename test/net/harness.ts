// Test support for the peer-link layer: real HTTP servers on free loopback
// ports with hubs behind their /peer upgrades, recorders for every callback
// and log line, and a hand-driven "raw peer" that speaks the handshake frame
// by frame, so tests can forge what a real hub would never send.

import { createServer, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { pino } from "pino";
import { WebSocket, type RawData } from "ws";
import { asNodeId, asRegionId, type NodeId, type RegionId } from "../../src/core/ids.js";
import type { VersionVector } from "../../src/core/version-vector.js";
import { proofFor } from "../../src/net/auth.js";
import { decodeFrame, encodeFrame, isCodecError, NONCE_BYTES, PROTOCOL_VERSION, type Frame, type HelloFrame, type Intro, type WelcomeFrame } from "../../src/net/frames.js";
import { createHub, peerWsUrl, type Hub, type HubOptions, type PeerInfo } from "../../src/net/hub.js";
import { waitFor } from "../support/cluster-files.js";

export { waitFor };

/** Every log line a hub wrote, parsed. */
export class LogCapture {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly logger = pino(
    { level: "debug" },
    {
      write: (s: string): void => {
        for (const line of s.split("\n")) if (line !== "") this.lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );

  /** Lines at `level` (pino numbers: 20 debug, 30 info, 40 warn, 50 error) whose JSON matches `re`. */
  find(level: number, re: RegExp): Array<Record<string, unknown>> {
    return this.lines.filter((l) => l.level === level && re.test(JSON.stringify(l)));
  }
}

/** Every callback a hub made, in order. */
export class Recorder {
  readonly ups: Array<{ peer: NodeId; intro: Intro }> = [];
  readonly downs: Array<{ peer: NodeId; reason: string }> = [];
  readonly frames: Array<{ peer: NodeId; frame: Frame }> = [];
  readonly refused: Array<{ peer: NodeId; reason: string }> = [];
  /** Peers whose links reported a sign of life (onAlive), one entry per report. */
  readonly alives: NodeId[] = [];

  upsFrom(peer: string): number {
    return this.ups.filter((u) => u.peer === peer).length;
  }
  downsFrom(peer: string): Array<{ peer: NodeId; reason: string }> {
    return this.downs.filter((d) => d.peer === peer);
  }
  refusedBy(peer: string, re: RegExp = /./): Array<{ peer: NodeId; reason: string }> {
    return this.refused.filter((r) => r.peer === peer && re.test(r.reason));
  }
  /** Control frames received from `peer`, as their json. */
  controlsFrom(peer: string): string[] {
    const out: string[] = [];
    for (const f of this.frames) if (f.peer === peer && f.frame.t === "control") out.push(f.frame.json);
    return out;
  }
}

export interface NodeSpec {
  readonly id: string;
  readonly region: string;
  /** One cluster secret, or a rotation's list (the first proves this node). */
  readonly secret?: string | readonly string[];
  readonly clusterId?: string;
  readonly epoch?: number;
  readonly vv?: VersionVector;
}

/** A node under test: its HTTP server, its hub, and what it recorded. */
export interface TestNode {
  readonly id: NodeId;
  readonly region: RegionId;
  readonly port: number;
  readonly url: string;
  readonly spec: NodeSpec;
  server: Server;
  hub: Hub;
  rec: Recorder;
  logs: LogCapture;
  /** The raw sockets of every upgrade the server routed to the hub. */
  upgrades: Duplex[];
}

/** Hub settings for tests: quick backoff and pings so reconnects take milliseconds. */
export const FAST: Partial<HubOptions> = { backoffMinMs: 20, backoffMaxMs: 200, handshakeTimeoutMs: 1500, pingIntervalMs: 200 };

export const CLUSTER = "geokv-test";

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const addr = server.address();
      resolve(typeof addr === "object" && addr !== null ? addr.port : 0);
    });
  });
}

function newServer(node: { hub?: Hub; upgrades: Duplex[] }): Server {
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on("upgrade", (req, socket, head) => {
    node.upgrades.push(socket);
    node.hub?.handleUpgrade(req, socket, head);
  });
  return server;
}

function makeHub(n: TestNode, peers: readonly PeerInfo[], extra: Partial<HubOptions>): Hub {
  const rec = n.rec;
  return createHub({
    self: { node: n.id, region: n.region, clusterId: n.spec.clusterId ?? CLUSTER },
    peers: peers.filter((p) => p.node !== n.id),
    secrets: typeof n.spec.secret === "string" ? [n.spec.secret] : n.spec.secret,
    intro: () => ({ epoch: n.spec.epoch ?? 1, vv: n.spec.vv ?? {} }),
    onLinkUp: (peer, intro) => rec.ups.push({ peer, intro }),
    onLinkDown: (peer, reason) => rec.downs.push({ peer, reason }),
    onFrame: (peer, frame) => rec.frames.push({ peer, frame }),
    onRefused: (peer, reason) => rec.refused.push({ peer, reason }),
    onAlive: (peer) => rec.alives.push(peer),
    logger: n.logs.logger,
    ...FAST,
    ...extra,
  });
}

/** A cluster of hubs on real loopback servers. */
export class TestCluster {
  readonly nodes = new Map<string, TestNode>();
  private peers: PeerInfo[] = [];

  private constructor(private readonly extra: (spec: NodeSpec) => Partial<HubOptions>) {}

  /** Starts one server and hub per spec; every hub knows every other node plus `extraPeers` (raw test peers). */
  static async start(specs: readonly NodeSpec[], o: { extra?: (spec: NodeSpec) => Partial<HubOptions>; extraPeers?: readonly PeerInfo[]; start?: boolean } = {}): Promise<TestCluster> {
    const c = new TestCluster(o.extra ?? (() => ({})));
    const partial: TestNode[] = [];
    for (const spec of specs) {
      const holder = { upgrades: [] as Duplex[] } as unknown as TestNode;
      const server = newServer(holder);
      const port = await listen(server, 0);
      Object.assign(holder, { id: asNodeId(spec.id), region: asRegionId(spec.region), port, url: `http://127.0.0.1:${port}`, spec, server, rec: new Recorder(), logs: new LogCapture() });
      partial.push(holder);
    }
    c.peers = [...partial.map((n) => ({ node: n.id, region: n.region, url: n.url })), ...(o.extraPeers ?? [])];
    for (const n of partial) {
      n.hub = makeHub(n, c.peers, c.extra(n.spec));
      c.nodes.set(n.id, n);
    }
    if (o.start !== false) for (const n of partial) n.hub.start();
    return c;
  }

  node(id: string): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no test node ${id}`);
    return n;
  }

  /** Simulates a crash: every socket cut without a close frame, the hub and server gone. */
  async kill(id: string): Promise<void> {
    const n = this.node(id);
    for (const s of n.upgrades) s.destroy();
    await n.hub.close();
    n.server.closeAllConnections();
    await new Promise<void>((resolve) => n.server.close(() => resolve()));
  }

  /** Brings a killed node back on the same port with a fresh hub (same recorder and logs). */
  async restart(id: string): Promise<void> {
    const n = this.node(id);
    n.upgrades = [];
    n.server = newServer(n);
    await listen(n.server, n.port);
    n.hub = makeHub(n, this.peers, this.extra(n.spec));
    n.hub.start();
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.nodes.values()].map(async (n) => {
        await n.hub.close();
        n.server.closeAllConnections();
        await new Promise<void>((resolve) => n.server.close(() => resolve()));
      }),
    );
  }
}

/** True when every pair of the given nodes has its link up on both sides. */
export function meshUp(c: TestCluster, ids: readonly string[]): boolean {
  for (const a of ids) for (const b of ids) if (a !== b && !c.node(a).hub.isUp(asNodeId(b))) return false;
  return true;
}

export interface RawPeerOptions {
  /** The hub's http base URL. */
  readonly url: string;
  readonly node: string;
  readonly region: string;
  /** The hub's node id (for the auth proof). */
  readonly target: string;
  readonly clusterId?: string;
  readonly secret?: string;
  /** Overrides of the hello it sends. */
  readonly hello?: Partial<HelloFrame>;
  /** Send the auth frame after the welcome (default true). */
  readonly authenticate?: boolean;
  /** Proof to send instead of the right one. */
  readonly proof?: Uint8Array;
  /** Answer ws pings (default true). */
  readonly autoPong?: boolean;
  /** Send nothing at all once open. */
  readonly silent?: boolean;
}

/** A hand-driven peer: speaks the handshake itself and records everything. */
export interface RawPeer {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly welcome: Promise<WelcomeFrame>;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Frames received after the welcome. */
  readonly frames: Frame[];
  /** ws-level pings received. */
  readonly pings: { count: number };
  /** Sends raw bytes as one binary message. */
  sendBytes(bytes: Uint8Array): void;
}

/** Connects to a hub's /peer as a fake node. */
export function rawPeer(o: RawPeerOptions): RawPeer {
  const ws = new WebSocket(peerWsUrl(o.url), { perMessageDeflate: false, autoPong: o.autoPong ?? true });
  const frames: Frame[] = [];
  const pings = { count: 0 };
  ws.on("ping", () => pings.count++);
  ws.on("error", () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString("utf8") })));
  const opened = new Promise<void>((resolve) => ws.on("open", () => resolve()));
  const nonce = new Uint8Array(NONCE_BYTES).map((_, i) => i * 7 + 1);
  const clusterId = o.clusterId ?? CLUSTER;
  let resolveWelcome: (f: WelcomeFrame) => void = () => {};
  const welcome = new Promise<WelcomeFrame>((resolve) => (resolveWelcome = resolve));
  let gotWelcome = false;
  ws.on("open", () => {
    if (o.silent) return;
    const hello: HelloFrame = { t: "hello", proto: PROTOCOL_VERSION, clusterId, node: o.node, region: o.region, epoch: 1, vv: {}, nonce, ...o.hello };
    ws.send(encodeFrame(hello));
  });
  ws.on("message", (data: RawData) => {
    const f = decodeFrame(data as Buffer);
    if (isCodecError(f)) throw new Error(`raw peer got a bad frame: ${f.reason}`);
    if (!gotWelcome && f.t === "welcome") {
      gotWelcome = true;
      if (o.authenticate ?? true) ws.send(encodeFrame({ t: "auth", proof: o.proof ?? proofFor(o.secret, clusterId, o.node, o.target, f.nonce) }));
      resolveWelcome(f);
      return;
    }
    frames.push(f);
  });
  return { ws, opened, welcome, closed, frames, pings, sendBytes: (bytes) => ws.send(bytes, { binary: true }) };
}

/** One unmasked server-to-client WebSocket frame (payload under 126 bytes), for writing straight onto an accepted socket. */
export function serverWsFrame(opcode: 1 | 2, payload: Uint8Array): Buffer {
  if (payload.length >= 126) throw new Error("short frames only");
  return Buffer.concat([Buffer.from([0x80 | opcode, payload.length]), payload]);
}

/** A control frame carrying `tag`, for send/receive checks. */
export function control(tag: string): Frame {
  return { t: "control", json: JSON.stringify({ tag }) };
}
