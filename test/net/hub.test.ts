// The peer-link hub on real sockets: hubs on loopback HTTP servers form a
// mesh, authenticate with the cluster secret, refuse what they must with
// reasons an operator can act on, survive garbage and crashes by reconnecting,
// obey fault injection, and never buffer without bound.
import { afterEach, describe, expect, it } from "vitest";
import { asNodeId, asRegionId } from "../../src/core/ids.js";
import { encodeFrame, PROTOCOL_VERSION, type Frame } from "../../src/net/frames.js";
import { CloseCode } from "../../src/net/handshake.js";
import { TestCluster, control, meshUp, rawPeer, serverWsFrame, waitFor, type NodeSpec, type RawPeer } from "./harness.js";

const A = asNodeId("a");
const B = asNodeId("b");
const C = asNodeId("c");

/** A ws frame header is at most 14 bytes; allow a few queued pings too. */
const WS_OVERHEAD_BYTES = 64;

const MESH: readonly NodeSpec[] = [
  { id: "a", region: "east", epoch: 3, vv: { a: 5 } },
  { id: "b", region: "west", epoch: 4, vv: { b: 1 } },
  { id: "c", region: "south", epoch: 5, vv: {} },
];

let cluster: TestCluster | undefined;
const raws: RawPeer[] = [];

afterEach(async () => {
  for (const r of raws.splice(0)) r.ws.terminate();
  await cluster?.close();
  cluster = undefined;
});

/** Sends a tagged control frame from `from` to `to` and waits for it to arrive. */
async function roundTrip(c: TestCluster, from: string, to: string, tag: string): Promise<void> {
  expect(c.node(from).hub.send(asNodeId(to), control(tag))).toBe(true);
  await waitFor(`${tag} from ${from} at ${to}`, () => c.node(to).rec.controlsFrom(from).includes(JSON.stringify({ tag })));
}

describe("hub: mesh", () => {
  it("connects three hubs in a full mesh and carries frames both ways", async () => {
    cluster = await TestCluster.start(MESH);
    const c = cluster;
    await waitFor("full mesh", () => meshUp(c, ["a", "b", "c"]));
    for (const spec of MESH) {
      for (const other of MESH) {
        if (other.id === spec.id) continue;
        const up = c.node(spec.id).rec.ups.find((u) => u.peer === other.id);
        expect(up, `${spec.id} saw ${other.id} come up`).toBeDefined();
        expect(up?.intro).toMatchObject({ proto: PROTOCOL_VERSION, clusterId: "geokv-test", node: other.id, region: other.region, epoch: other.epoch, vv: other.vv });
        expect(up?.intro.nonce.length).toBe(16);
      }
    }
    for (const from of ["a", "b", "c"]) for (const to of ["a", "b", "c"]) if (from !== to) await roundTrip(c, from, to, `${from}->${to}`);
    // One link per pair: the lower id dials, so "a" (the lowest) never accepts anything.
    expect(c.node("a").upgrades.length).toBe(0);
    expect(c.node("b").upgrades.length).toBeGreaterThanOrEqual(1);
    expect(c.node("c").upgrades.length).toBeGreaterThanOrEqual(2);
    expect(c.node("a").rec.downs).toEqual([]);
  });

  it("carries every frame type unchanged", async () => {
    cluster = await TestCluster.start(MESH.slice(0, 2));
    const c = cluster;
    await waitFor("link a-b", () => meshUp(c, ["a", "b"]));
    const frames: Frame[] = [
      { t: "ops", batch: 7, fence: "east:3", ops: [{ ns: "kv", origin: A, seq: 1, hlc: { wallMs: 10, logical: 1 }, key: "k", valueJson: "1", vv: { a: 1 } }] },
      { t: "ack", batch: 7, vv: { a: 1 } },
      { t: "ping", wallMs: 123, hlc: { wallMs: 5, logical: 0 }, role: "leader", leader: "a", epoch: 3, vv: { a: 1 } },
      { t: "pong", echoWallMs: 123, wallMs: 124, vv: {} },
      control("x"),
    ];
    for (const f of frames) expect(c.node("a").hub.send(B, f)).toBe(true);
    await waitFor("all frames at b", () => c.node("b").rec.frames.length === frames.length);
    expect(c.node("b").rec.frames.map((f) => f.frame)).toEqual(frames);
    expect(c.node("b").rec.frames.every((f) => f.peer === "a")).toBe(true);
  });

  it("refuses to send handshake frames for the runtime, and reports down links and unknown peers as false", async () => {
    cluster = await TestCluster.start(MESH.slice(0, 2), { start: false });
    const hub = cluster.node("a").hub;
    expect(hub.send(B, control("early"))).toBe(false);
    expect(hub.send(asNodeId("nobody"), control("x"))).toBe(false);
    expect(hub.isUp(B)).toBe(false);
    expect(hub.queuedBytes(B)).toBe(0);
    expect(() => hub.send(B, { t: "auth", proof: new Uint8Array(0) })).toThrow(/itself/);
  });
});

describe("hub: authentication", () => {
  it("links nodes that share the cluster secret", async () => {
    cluster = await TestCluster.start(MESH.map((s) => ({ ...s, secret: "s3cret" })));
    const c = cluster;
    await waitFor("full mesh with a secret", () => meshUp(c, ["a", "b", "c"]));
    await roundTrip(c, "a", "c", "authed");
    await roundTrip(c, "c", "a", "authed-back");
    for (const n of c.nodes.values()) expect(n.rec.refused).toEqual([]);
  });

  it("refuses a wrong secret on both sides, with the reason in onRefused and the log", async () => {
    cluster = await TestCluster.start([
      { id: "a", region: "east", secret: "one" },
      { id: "b", region: "west", secret: "two" },
    ]);
    const a = cluster.node("a");
    const b = cluster.node("b");
    await waitFor("a refused b", () => a.rec.refusedBy("b", /^wrong cluster secret$/).length > 0);
    await waitFor("b refused by a", () => b.rec.refusedBy("a", /^wrong cluster secret$/).length > 0);
    await waitFor("a logs it", () => a.logs.find(40, /wrong cluster secret/).length > 0);
    await waitFor("b logs it", () => b.logs.find(40, /wrong cluster secret/).length > 0);
    expect(a.logs.find(40, /wrong cluster secret/)[0]).toMatchObject({ peer: "b", reason: "wrong cluster secret" });
    expect(b.logs.find(40, /wrong cluster secret/)[0]).toMatchObject({ peer: "a", reason: "wrong cluster secret" });
    expect(a.rec.ups).toEqual([]);
    expect(b.rec.ups).toEqual([]);
    expect(a.hub.isUp(B) || b.hub.isUp(A)).toBe(false);
    // The dialer keeps trying (a fixed secret heals without a restart).
    await waitFor("a retries", () => b.rec.refusedBy("a").length >= 3);
  });

  it("links nodes mid-rotation: each proves with its first secret and accepts any it lists", async () => {
    // a dials b. a still proves with old, b already proves with new; each lists both.
    cluster = await TestCluster.start([
      { id: "a", region: "east", secret: ["old", "new"] },
      { id: "b", region: "west", secret: ["new", "old"] },
    ]);
    const c = cluster;
    await waitFor("a and b linked", () => meshUp(c, ["a", "b"]));
    await roundTrip(c, "a", "b", "rotating");
    for (const n of c.nodes.values()) expect(n.rec.refused).toEqual([]);
  });

  it("refuses a proof made with a secret the verifier does not list (rotation steps out of order)", async () => {
    // b proves with new, but a lists only old: a refuses b (and says so), the link stays down.
    cluster = await TestCluster.start([
      { id: "a", region: "east", secret: ["old"] },
      { id: "b", region: "west", secret: ["new", "old"] },
    ]);
    const a = cluster.node("a");
    const b = cluster.node("b");
    await waitFor("a refuses b's proof", () => a.logs.find(40, /wrong cluster secret/).length > 0);
    await waitFor("a learns b refused it", () => a.rec.refusedBy("b", /^wrong cluster secret$/).length > 0);
    expect(a.rec.ups.length + b.rec.ups.length).toBe(0);
  });

  it("refuses a secret on the acceptor only", async () => {
    cluster = await TestCluster.start([
      { id: "a", region: "east" },
      { id: "b", region: "west", secret: "s" },
    ]);
    const a = cluster.node("a");
    const b = cluster.node("b");
    await waitFor("b told", () => b.rec.refusedBy("a", /peer sent an unexpected proof/).length > 0);
    await waitFor("a logs", () => a.logs.find(40, /peer sent an unexpected proof: this node has no cluster secret/).length > 0);
    await waitFor("b logs", () => b.logs.find(40, /peer sent an unexpected proof/).length > 0);
    expect(a.rec.ups.length + b.rec.ups.length).toBe(0);
  });

  it("refuses a secret on the dialer only", async () => {
    cluster = await TestCluster.start([
      { id: "a", region: "east", secret: "s" },
      { id: "b", region: "west" },
    ]);
    const a = cluster.node("a");
    const b = cluster.node("b");
    await waitFor("b told", () => b.rec.refusedBy("a", /peer did not authenticate/).length > 0);
    await waitFor("a logs", () => a.logs.find(40, /peer did not authenticate: this node requires a cluster secret/).length > 0);
    expect(a.rec.refusedBy("b", /peer did not authenticate/).length).toBeGreaterThan(0);
    expect(a.rec.ups.length + b.rec.ups.length).toBe(0);
  });
});

describe("hub: refusals of hand-made hellos", () => {
  // Hub "m" (region mid) knows "k" (region kr, dials m) and "z" (region zr, m dials z).
  const PEERS = [
    { node: asNodeId("k"), region: asRegionId("kr"), url: "http://127.0.0.1:9" },
    { node: asNodeId("z"), region: asRegionId("zr"), url: "http://127.0.0.1:9" },
  ];

  async function hubM(secret?: string): Promise<TestCluster> {
    cluster = await TestCluster.start([{ id: "m", region: "mid", ...(secret ? { secret } : {}) }], {
      extraPeers: PEERS,
      // Not started: m would dial "z", which does not exist here.
      start: false,
    });
    return cluster;
  }

  const cases: Array<{ name: string; node: string; region: string; hello?: Record<string, unknown>; clusterId?: string; code: number; reason: RegExp }> = [
    { name: "an unknown node", node: "us-east-9", region: "kr", code: CloseCode.unknownNode, reason: /^unknown node us-east-9$/ },
    { name: "its own id", node: "m", region: "mid", code: CloseCode.unknownNode, reason: /^unknown node m: that is this node's own id$/ },
    { name: "another cluster", node: "k", region: "kr", clusterId: "other", code: CloseCode.clusterMismatch, reason: /^cluster id mismatch/ },
    { name: "another protocol version", node: "k", region: "kr", hello: { proto: 3 }, code: CloseCode.protocolVersion, reason: /^protocol version 3 not supported \(this node speaks 4\)$/ },
    { name: "a wrong region", node: "k", region: "eu-west", code: CloseCode.regionMismatch, reason: /^region mismatch for node k: configured kr, claims eu-west$/ },
    { name: "the wrong dial direction", node: "z", region: "zr", code: CloseCode.wrongDirection, reason: /^node z must not dial m: the node with the lower id dials$/ },
  ];

  for (const tc of cases) {
    it(`refuses ${tc.name} with a clear reason`, async () => {
      const c = await hubM();
      const m = c.node("m");
      const raw = rawPeer({ url: m.url, node: tc.node, region: tc.region, target: "m", ...(tc.clusterId ? { clusterId: tc.clusterId } : {}), hello: tc.hello as never });
      raws.push(raw);
      const closed = await raw.closed;
      expect(closed.code).toBe(tc.code);
      expect(closed.reason).toMatch(tc.reason);
      const line = await waitFor("a warn line naming the reason", () => m.logs.lines.find((l) => l.level === 40 && typeof l.reason === "string" && tc.reason.test(l.reason)));
      expect(line.peer).toBe(tc.node);
      expect(m.rec.ups).toEqual([]);
    });
  }

  it("refuses a blocked peer at the handshake", async () => {
    const c = await hubM();
    const m = c.node("m");
    m.hub.block(["kr"]);
    const raw = rawPeer({ url: m.url, node: "k", region: "kr", target: "m" });
    raws.push(raw);
    expect(await raw.closed).toEqual({ code: CloseCode.blocked, reason: "blocked by fault injection" });
  });

  it("refuses a missing proof when it has a secret, and tells the runtime", async () => {
    const c = await hubM("s");
    const m = c.node("m");
    const raw = rawPeer({ url: m.url, node: "k", region: "kr", target: "m" });
    raws.push(raw);
    expect(await raw.closed).toEqual({ code: CloseCode.authFailed, reason: "peer did not authenticate: this node requires a cluster secret" });
    await waitFor("onRefused", () => m.rec.refusedBy("k", /did not authenticate/).length === 1);
  });

  it("refuses a forged proof", async () => {
    const c = await hubM("s");
    const raw = rawPeer({ url: c.node("m").url, node: "k", region: "kr", target: "m", proof: new Uint8Array(32).fill(9) });
    raws.push(raw);
    expect(await raw.closed).toEqual({ code: CloseCode.authFailed, reason: "wrong cluster secret" });
  });

  it("accepts the right proof from a hand-made peer", async () => {
    const c = await hubM("s");
    const m = c.node("m");
    const raw = rawPeer({ url: m.url, node: "k", region: "kr", target: "m", secret: "s" });
    raws.push(raw);
    await waitFor("k up at m", () => m.hub.isUp(asNodeId("k")));
    expect((await raw.welcome).proof.length).toBe(32);
  });

  it("closes a text message or a non-hello during the handshake as a bad frame", async () => {
    const c = await hubM();
    const m = c.node("m");
    const text = rawPeer({ url: m.url, node: "k", region: "kr", target: "m", silent: true });
    raws.push(text);
    await text.opened;
    text.ws.send("hello?");
    expect(await text.closed).toMatchObject({ code: CloseCode.badFrame, reason: "bad frame: text message during the handshake" });
    const early = rawPeer({ url: m.url, node: "k", region: "kr", target: "m", silent: true });
    raws.push(early);
    await early.opened;
    early.sendBytes(encodeFrame(control("too early")));
    expect(await early.closed).toMatchObject({ code: CloseCode.badFrame, reason: "bad frame: expected hello, got control" });
  });

  it("times out a peer that never says hello", async () => {
    cluster = await TestCluster.start([{ id: "m", region: "mid" }], { extraPeers: PEERS.slice(0, 1), extra: () => ({ handshakeTimeoutMs: 200 }), start: false });
    const raw = rawPeer({ url: cluster.node("m").url, node: "k", region: "kr", target: "m", silent: true });
    raws.push(raw);
    expect(await raw.closed).toEqual({ code: CloseCode.handshakeTimeout, reason: "handshake timeout: no hello within 200 ms" });
  });

  it("answers a non-/peer upgrade with 404", async () => {
    const c = await hubM();
    const { WebSocket } = await import("ws");
    const ws = new WebSocket(`${c.node("m").url.replace("http", "ws")}/elsewhere`);
    const status = await new Promise<number>((resolve) => {
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.on("error", () => {});
    });
    expect(status).toBe(404);
  });
});

describe("hub: after the handshake", () => {
  const K = asNodeId("k");

  async function hubWithK(extra: Record<string, unknown> = {}, onFrame?: (f: Frame) => void): Promise<{ c: TestCluster; raw: RawPeer }> {
    cluster = await TestCluster.start([{ id: "m", region: "mid" }], {
      extraPeers: [{ node: K, region: asRegionId("kr"), url: "http://127.0.0.1:9" }],
      extra: () => ({ ...extra, ...(onFrame ? { onFrame: (_p: unknown, f: Frame) => onFrame(f) } : {}) }),
      start: false,
    });
    const c = cluster;
    const raw = rawPeer({ url: c.node("m").url, node: "k", region: "kr", target: "m", autoPong: (extra.autoPong as boolean | undefined) ?? true });
    raws.push(raw);
    await waitFor("k up at m", () => c.node("m").hub.isUp(K));
    return { c, raw };
  }

  it("closes the link on random bytes with 4002 and logs it", async () => {
    const { c, raw } = await hubWithK();
    const m = c.node("m");
    raw.sendBytes(new Uint8Array([0xff, 1, 2, 3]));
    const closed = await raw.closed;
    expect(closed.code).toBe(CloseCode.badFrame);
    expect(closed.reason).toMatch(/^bad frame: unknown frame type 255/);
    await waitFor("link down", () => m.rec.downsFrom("k").length === 1);
    expect(m.rec.downsFrom("k")[0]?.reason).toMatch(/^bad frame: unknown frame type 255/);
    expect(m.logs.find(40, /bad frame: unknown frame type 255/).length).toBeGreaterThan(0);
    expect(m.hub.isUp(K)).toBe(false);
  });

  it("closes the link on a handshake frame after the handshake", async () => {
    const { c, raw } = await hubWithK();
    raw.sendBytes(encodeFrame({ t: "auth", proof: new Uint8Array(0) }));
    expect(await raw.closed).toEqual({ code: CloseCode.badFrame, reason: "bad frame: unexpected auth after the handshake" });
    await waitFor("link down", () => c.node("m").rec.downsFrom("k").length === 1);
  });

  it("closes the link on a text message", async () => {
    const { raw } = await hubWithK();
    raw.ws.send("{}");
    expect(await raw.closed).toEqual({ code: CloseCode.badFrame, reason: "bad frame: text message" });
  });

  it("replaces the first connection when the same peer connects again", async () => {
    const { c, raw } = await hubWithK();
    const m = c.node("m");
    const second = rawPeer({ url: m.url, node: "k", region: "kr", target: "m" });
    raws.push(second);
    await waitFor("second up", () => m.rec.upsFrom("k") === 2);
    expect(await raw.closed).toEqual({ code: CloseCode.replaced, reason: "replaced by a newer connection" });
    expect(m.rec.downsFrom("k")).toEqual([{ peer: "k", reason: "replaced by a newer connection" }]);
    expect(m.hub.isUp(K)).toBe(true);
    // The new link is the one in use.
    expect(m.hub.send(K, control("to second"))).toBe(true);
    await waitFor("second got it", () => second.frames.some((f) => f.t === "control"));
    expect(raw.frames).toEqual([]);
    // The old socket's close must not take the new link down.
    expect(m.hub.isUp(K)).toBe(true);
  });

  it("reports a peer's pongs as signs of life", async () => {
    const { c } = await hubWithK({ pingIntervalMs: 50 });
    const m = c.node("m");
    await waitFor("pongs reported", () => m.rec.alives.filter((p) => p === K).length >= 3);
    expect(m.rec.downsFrom("k")).toEqual([]);
  });

  it("keeps a link that stops answering ws pings: the runtime, not the link, decides it is dead", async () => {
    const { c, raw } = await hubWithK({ pingIntervalMs: 20, autoPong: false });
    const m = c.node("m");
    // 25 unanswered pings, more than the 10 that used to cut it.
    await waitFor("25 unanswered pings", () => raw.pings.count >= 25);
    expect(m.hub.isUp(K)).toBe(true);
    expect(m.rec.downsFrom("k")).toEqual([]);
    expect(m.rec.alives).toEqual([]);
  });

  it("closeLink cuts the socket with the reason given", async () => {
    const { c, raw } = await hubWithK();
    const m = c.node("m");
    m.hub.closeLink(K, "connection presumed dead (test)");
    expect(m.rec.downsFrom("k")).toEqual([{ peer: "k", reason: "connection presumed dead (test)" }]);
    expect(m.hub.isUp(K)).toBe(false);
    expect((await raw.closed).code).toBe(1006);
  });

  it("keeps the link when onFrame throws (a runtime bug, not the peer's)", async () => {
    const { c, raw } = await hubWithK({}, (f) => {
      if (f.t === "control") throw new Error("runtime bug");
    });
    const m = c.node("m");
    raw.sendBytes(encodeFrame(control("boom")));
    await waitFor("error logged", () => m.logs.find(50, /onFrame/).length === 1);
    expect(m.hub.isUp(K)).toBe(true);
  });

  it("refuses to buffer without bound: send() turns false when the peer stops reading", async () => {
    const { c, raw } = await hubWithK({ sendQueueBytesMax: 1 });
    const m = c.node("m");
    raw.ws.pause();
    const big = control("x".repeat(60_000));
    const frameBytes = encodeFrame(big).length;
    let refusedAt = -1;
    // Loopback socket buffers hold a few MB; 5000 frames (300 MB) is far beyond them.
    for (let i = 0; i < 5000; i++) {
      if (!m.hub.send(K, big)) {
        refusedAt = i;
        break;
      }
    }
    expect(refusedAt, "send() returned false").toBeGreaterThan(0);
    expect(m.hub.queuedBytes(K)).toBeGreaterThan(0);
    // The bound plus the one frame an empty queue always takes, plus ws framing (header, pings).
    expect(m.hub.queuedBytes(K)).toBeLessThanOrEqual(1 + frameBytes + WS_OVERHEAD_BYTES);
    expect(m.hub.isUp(K)).toBe(true);
    raw.ws.resume();
    await waitFor("queue drains and send works again", () => m.hub.send(K, control("after")));
  });
});

describe("hub: garbage between two hubs", () => {
  it("closes only the link that carried garbage, and that link comes back", async () => {
    cluster = await TestCluster.start(MESH);
    const c = cluster;
    await waitFor("full mesh", () => meshUp(c, ["a", "b", "c"]));
    const a = c.node("a");
    const b = c.node("b");
    // b accepts only from a; its latest socket carries the a-b link. Write a
    // forged binary frame onto it, as if b had sent it.
    const socket = b.upgrades.at(-1);
    expect(socket).toBeDefined();
    socket?.write(serverWsFrame(2, new Uint8Array([0xff, 0x00, 0x13])));
    await waitFor("a dropped the link to b", () => a.rec.downsFrom("b").length === 1);
    expect(a.rec.downsFrom("b")[0]?.reason).toMatch(/^bad frame: unknown frame type 255/);
    expect(a.logs.find(40, /bad frame/).length).toBeGreaterThan(0);
    await waitFor("b saw it close", () => b.rec.downsFrom("a").length === 1);
    expect(b.rec.downsFrom("a")[0]?.reason).toMatch(/^closed by peer \(4002\): bad frame/);
    // Nothing else was touched.
    expect(a.rec.downsFrom("c")).toEqual([]);
    expect(b.rec.downsFrom("c")).toEqual([]);
    await roundTrip(c, "a", "c", "still-a-c");
    await roundTrip(c, "b", "c", "still-b-c");
    // The dialer reconnects.
    await waitFor("a-b back", () => a.rec.upsFrom("b") === 2 && b.rec.upsFrom("a") === 2 && meshUp(c, ["a", "b"]));
    await roundTrip(c, "a", "b", "back-a-b");

    // A text message on the new link: same story.
    const socket2 = b.upgrades.at(-1);
    socket2?.write(serverWsFrame(1, Buffer.from("not a frame")));
    await waitFor("a dropped it again", () => a.rec.downsFrom("b").length === 2);
    expect(a.rec.downsFrom("b")[1]?.reason).toBe("bad frame: text message");
    await waitFor("a-b back again", () => a.rec.upsFrom("b") === 3 && meshUp(c, ["a", "b"]));
    await roundTrip(c, "b", "a", "back-b-a");
    expect(a.rec.downsFrom("c")).toEqual([]);
  });
});

describe("hub: reconnecting", () => {
  it("redials a link closed with closeLink, from either end", async () => {
    cluster = await TestCluster.start(MESH.slice(0, 2));
    const c = cluster;
    const a = c.node("a");
    const b = c.node("b");
    await waitFor("link a-b", () => meshUp(c, ["a", "b"]));
    // The dialer closes it: it redials with its backoff.
    a.hub.closeLink(B, "connection presumed dead (test)");
    expect(a.rec.downsFrom("b")).toEqual([{ peer: "b", reason: "connection presumed dead (test)" }]);
    await waitFor("b saw it go", () => b.rec.downsFrom("a").length === 1);
    await waitFor("a-b back", () => a.rec.upsFrom("b") === 2 && b.rec.upsFrom("a") === 2 && meshUp(c, ["a", "b"]));
    await roundTrip(c, "a", "b", "after-dialer-close");
    // The acceptor closes it: the dialer sees the connection lost and redials.
    b.hub.closeLink(A, "connection presumed dead (test)");
    expect(b.rec.downsFrom("a")[1]).toEqual({ peer: "a", reason: "connection presumed dead (test)" });
    await waitFor("a-b back again", () => a.rec.upsFrom("b") === 3 && b.rec.upsFrom("a") === 3 && meshUp(c, ["a", "b"]));
    await roundTrip(c, "b", "a", "after-acceptor-close");
  });

  it("redials an acceptor that crashed and came back on the same port", async () => {
    cluster = await TestCluster.start(MESH.slice(0, 2));
    const c = cluster;
    const a = c.node("a");
    await waitFor("link a-b", () => meshUp(c, ["a", "b"]));
    await c.kill("b");
    await waitFor("a saw b go", () => a.rec.downsFrom("b").length === 1);
    expect(a.hub.isUp(B)).toBe(false);
    // While b is away, a keeps trying (and failing) with backoff.
    await waitFor("a retried", () => a.logs.find(20, /dial failed/).length >= 3);
    await c.restart("b");
    await waitFor("a-b back", () => a.rec.upsFrom("b") === 2 && meshUp(c, ["a", "b"]));
    await roundTrip(c, "a", "b", "after-restart");
    await roundTrip(c, "b", "a", "after-restart-back");
  });

  it("tells peers it is going away on close(), and stays quiet afterwards", async () => {
    cluster = await TestCluster.start(MESH.slice(0, 2));
    const c = cluster;
    await waitFor("link a-b", () => meshUp(c, ["a", "b"]));
    const b = c.node("b");
    const before = b.rec.downs.length;
    await b.hub.close();
    await waitFor("a saw b leave", () => c.node("a").rec.downsFrom("b").length === 1);
    expect(c.node("a").rec.downsFrom("b")[0]?.reason).toBe("closed by peer (1001): node shutting down");
    expect(b.rec.downs.length).toBe(before);
    expect(b.hub.isUp(A)).toBe(false);
  });
});

describe("hub: fault injection", () => {
  it("blocks a region both ways: the link drops and stays down until clearFaults()", async () => {
    cluster = await TestCluster.start(MESH);
    const c = cluster;
    await waitFor("full mesh", () => meshUp(c, ["a", "b", "c"]));
    const a = c.node("a");
    const b = c.node("b");
    const cc = c.node("c");
    // a dials b: blocking b's region on a closes the link and stops a dialing.
    expect(a.hub.block(["west"])).toEqual({ blocked: ["west"] });
    // c accepts a: blocking a on c closes the link and makes c refuse a's redials.
    expect(cc.hub.block(["a"], "both")).toEqual({ blocked: ["a"] });
    await waitFor("a-b down both sides", () => a.rec.downsFrom("b").length === 1 && b.rec.downsFrom("a").length === 1);
    expect(a.rec.downsFrom("b")[0]?.reason).toBe("blocked by fault injection");
    expect(b.rec.downsFrom("a")[0]?.reason).toBe("closed by peer (4007): blocked by fault injection");
    await waitFor("a-c down", () => !a.hub.isUp(C) && !cc.hub.isUp(A));
    const upgradesAtB = b.upgrades.length;
    // Several refused redials of c by a: all that time a-b must stay down and a must not dial b.
    await waitFor("a refused by c thrice", () => a.rec.refusedBy("c", /^blocked by fault injection$/).length >= 3);
    expect(a.hub.isUp(B) || b.hub.isUp(A) || a.hub.isUp(C)).toBe(false);
    expect(b.upgrades.length).toBe(upgradesAtB);
    expect(a.rec.upsFrom("b")).toBe(1);
    // b-c is untouched.
    await roundTrip(c, "b", "c", "b-c fine");
    expect(a.hub.faults()).toEqual({ blocked: ["west"], both: ["west"], in: [], out: [] });

    expect(a.hub.clearFaults()).toEqual({ blocked: [] });
    expect(cc.hub.clearFaults()).toEqual({ blocked: [] });
    await waitFor("mesh healed", () => meshUp(c, ["a", "b", "c"]));
    await roundTrip(c, "a", "b", "healed a-b");
    await roundTrip(c, "c", "a", "healed c-a");
    expect(a.hub.faults()).toEqual({ blocked: [], both: [], in: [], out: [] });
  });

  it("blocks out: send() is false while frames still arrive the other way", async () => {
    cluster = await TestCluster.start(MESH.slice(0, 2));
    const c = cluster;
    await waitFor("link a-b", () => meshUp(c, ["a", "b"]));
    const a = c.node("a");
    expect(a.hub.block(["b"], "out")).toEqual({ blocked: ["b"] });
    expect(a.hub.send(B, control("dropped"))).toBe(false);
    expect(a.hub.isUp(B)).toBe(true);
    await roundTrip(c, "b", "a", "still arrives");
    expect(a.hub.faults()).toEqual({ blocked: ["b"], both: [], in: [], out: ["b"] });
    a.hub.clearFaults();
    await roundTrip(c, "a", "b", "after clear");
    expect(c.node("b").rec.controlsFrom("a")).toEqual([JSON.stringify({ tag: "after clear" })]);
  });

  it("blocks in: frames from the peer are dropped, the link stays up", async () => {
    cluster = await TestCluster.start(MESH.slice(0, 2));
    const c = cluster;
    await waitFor("link a-b", () => meshUp(c, ["a", "b"]));
    const a = c.node("a");
    const b = c.node("b");
    a.hub.block(["west"], "in");
    expect(b.hub.send(A, control("lost"))).toBe(true);
    await waitFor("a dropped it", () => a.logs.find(20, /dropping a frame/).length === 1);
    expect(a.rec.controlsFrom("b")).toEqual([]);
    // a can still talk to b.
    await roundTrip(c, "a", "b", "a still sends");
    a.hub.clearFaults();
    await roundTrip(c, "b", "a", "arrives after clear");
    expect(a.rec.controlsFrom("b")).toEqual([JSON.stringify({ tag: "arrives after clear" })]);
    expect(a.rec.downs).toEqual([]);
  });

  it("adds faults up and lists them", async () => {
    cluster = await TestCluster.start(MESH, { start: false });
    const hub = cluster.node("a").hub;
    hub.block(["west"]);
    hub.block(["c"], "in");
    expect(hub.block(["south", "c"], "out")).toEqual({ blocked: ["c", "south", "west"] });
    expect(hub.faults()).toEqual({ blocked: ["c", "south", "west"], both: ["west"], in: ["c"], out: ["c", "south"] });
  });
});
