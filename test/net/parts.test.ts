// The pure pieces of the peer-link layer, without sockets: reconnect backoff,
// the HMAC proofs, the handshake's refusal rules and the fault set. The hub
// tests show them working together; these pin each rule down on its own.
import fc from "fast-check";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { asNodeId, asRegionId, type NodeId, type RegionId } from "../../src/core/ids.js";
import { acceptedProofs, checkProof, checkProofAmong, newNonce, proofFor } from "../../src/net/auth.js";
import { backoffDelayMs } from "../../src/net/backoff.js";
import { Faults } from "../../src/net/faults.js";
import { NONCE_BYTES, PROTOCOL_VERSION, type Intro } from "../../src/net/frames.js";
import { CloseCode, checkHello, checkPeerProof, checkWelcome, isPeerCloseCode, type HandshakeContext } from "../../src/net/handshake.js";
import { createHub, peerWsUrl } from "../../src/net/hub.js";

describe("backoffDelayMs", () => {
  it("stays within [minMs, maxMs] and within [cap/2, cap] of its exponential cap", () => {
    fc.assert(
      fc.property(fc.nat(100), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 100_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, minMs, extraMs, r) => {
        const maxMs = minMs + extraMs;
        const d = backoffDelayMs(attempt, minMs, maxMs, () => r);
        const capMs = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
        expect(d).toBeGreaterThanOrEqual(minMs);
        expect(d).toBeLessThanOrEqual(maxMs);
        expect(d).toBeGreaterThanOrEqual(Math.min(Math.floor(capMs / 2), maxMs));
        expect(d).toBeLessThanOrEqual(Math.ceil(capMs));
      }),
    );
  });

  it("grows exponentially to the cap, with jitter from the random source", () => {
    const top = (a: number): number => backoffDelayMs(a, 50, 2000, () => 0.999999);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(top)).toEqual([50, 100, 200, 400, 800, 1600, 2000, 2000]);
    expect(backoffDelayMs(3, 50, 2000, () => 0)).toBe(200);
    expect(backoffDelayMs(1000, 50, 2000, () => 0.5)).toBe(1500);
  });

  it("rejects nonsense bounds", () => {
    expect(() => backoffDelayMs(0, 10, 5, Math.random)).toThrow(/minMs <= maxMs/);
  });
});

describe("proofs", () => {
  const n1 = newNonce();
  it("makes fresh 16-byte nonces", () => {
    expect(n1.length).toBe(NONCE_BYTES);
    expect(Buffer.from(newNonce()).equals(Buffer.from(n1))).toBe(false);
  });

  it("binds the secret, cluster, both roles and the nonce", () => {
    const base = proofFor("s", "c", "a", "b", n1);
    expect(base.length).toBe(32);
    expect(checkProof(base, proofFor("s", "c", "a", "b", n1))).toBeNull();
    expect(checkProof(base, proofFor("t", "c", "a", "b", n1))).toBe("wrong cluster secret");
    expect(checkProof(base, proofFor("s", "d", "a", "b", n1))).toBe("wrong cluster secret");
    // Roles swapped: the acceptor's proof cannot be reflected as the dialer's.
    expect(checkProof(base, proofFor("s", "c", "b", "a", n1))).toBe("wrong cluster secret");
    expect(checkProof(base, proofFor("s", "c", "a", "b", newNonce()))).toBe("wrong cluster secret");
  });

  it("is empty without a secret and refuses a secret on one side only", () => {
    expect(proofFor(undefined, "c", "a", "b", n1).length).toBe(0);
    expect(proofFor("", "c", "a", "b", n1).length).toBe(0);
    expect(checkProof(new Uint8Array(0), new Uint8Array(0))).toBeNull();
    expect(checkProof(proofFor("s", "c", "a", "b", n1), new Uint8Array(0))).toBe("peer did not authenticate");
    expect(checkProof(new Uint8Array(0), proofFor("s", "c", "a", "b", n1))).toBe("peer sent an unexpected proof");
    expect(checkProof(proofFor("s", "c", "a", "b", n1), new Uint8Array(5))).toBe("wrong cluster secret");
  });

  it("maps each proof failure to an auth close code and a reason", () => {
    const p = proofFor("s", "c", "a", "b", n1);
    expect(checkPeerProof([p], p)).toBeNull();
    expect(checkPeerProof([p], new Uint8Array(0))).toEqual({ code: CloseCode.authFailed, reason: "peer did not authenticate: this node requires a cluster secret" });
    expect(checkPeerProof([], p)).toEqual({ code: CloseCode.authFailed, reason: "peer sent an unexpected proof: this node has no cluster secret" });
    expect(checkPeerProof([p], new Uint8Array(32))).toEqual({ code: CloseCode.authFailed, reason: "wrong cluster secret" });
  });

  it("accepts a proof made with any listed secret, and only those (rotation)", () => {
    const accepted = acceptedProofs(["new", "old"], "c", "a", "b", n1);
    expect(accepted).toHaveLength(2);
    expect(checkProofAmong(accepted, proofFor("new", "c", "a", "b", n1))).toBeNull();
    expect(checkProofAmong(accepted, proofFor("old", "c", "a", "b", n1))).toBeNull();
    expect(checkProofAmong(accepted, proofFor("other", "c", "a", "b", n1))).toBe("wrong cluster secret");
    // Every listed secret still binds the roles and the nonce.
    expect(checkProofAmong(accepted, proofFor("old", "c", "b", "a", n1))).toBe("wrong cluster secret");
    expect(checkProofAmong(accepted, proofFor("old", "c", "a", "b", newNonce()))).toBe("wrong cluster secret");
    expect(checkProofAmong(accepted, new Uint8Array(0))).toBe("peer did not authenticate");
    expect(acceptedProofs(undefined, "c", "a", "b", n1)).toEqual([]);
    expect(checkPeerProof(accepted, proofFor("old", "c", "a", "b", n1))).toBeNull();
    expect(checkPeerProof(accepted, proofFor("gone", "c", "a", "b", n1))).toEqual({ code: CloseCode.authFailed, reason: "wrong cluster secret" });
  });
});

describe("handshake checks", () => {
  const regions: Record<string, RegionId> = { a: asRegionId("east"), c: asRegionId("south") };
  const ctx: HandshakeContext = { self: { node: asNodeId("b"), region: asRegionId("west"), clusterId: "k" }, regionOf: (n) => regions[n] };
  const intro = (o: Partial<Intro> = {}): Intro => ({ proto: PROTOCOL_VERSION, clusterId: "k", node: "a", region: "east", epoch: 1, vv: {}, nonce: new Uint8Array(NONCE_BYTES), ...o });
  const never = (): boolean => false;

  it("accepts a known, lower peer in its region", () => {
    expect(checkHello(ctx, intro(), never)).toBeNull();
  });

  it("refuses, in order: version, cluster, self, unknown, region, direction, blocked", () => {
    expect(checkHello(ctx, intro({ proto: 9, clusterId: "x" }), never)?.code).toBe(CloseCode.protocolVersion);
    expect(checkHello(ctx, intro({ clusterId: "x" }), never)).toEqual({ code: CloseCode.clusterMismatch, reason: 'cluster id mismatch: this node is in "k", peer claims "x"' });
    expect(checkHello(ctx, intro({ node: "b", region: "west" }), never)?.code).toBe(CloseCode.unknownNode);
    expect(checkHello(ctx, intro({ node: "q" }), never)).toEqual({ code: CloseCode.unknownNode, reason: "unknown node q" });
    expect(checkHello(ctx, intro({ region: "west" }), never)).toEqual({ code: CloseCode.regionMismatch, reason: "region mismatch for node a: configured east, claims west" });
    expect(checkHello(ctx, intro({ node: "c", region: "south" }), never)?.code).toBe(CloseCode.wrongDirection);
    expect(checkHello(ctx, intro(), (n: NodeId) => n === "a")).toEqual({ code: CloseCode.blocked, reason: "blocked by fault injection" });
  });

  it("checks that a welcome comes from the node the dialer meant", () => {
    const expected = { node: asNodeId("c"), region: asRegionId("south"), url: "http://h:1" };
    expect(checkWelcome(ctx, intro({ node: "c", region: "south" }), expected)).toBeNull();
    expect(checkWelcome(ctx, intro({ node: "a" }), expected)).toEqual({ code: CloseCode.unexpectedNode, reason: "expected node c at http://h:1, but node a answered" });
    expect(checkWelcome(ctx, intro({ node: "c", region: "east" }), expected)?.code).toBe(CloseCode.regionMismatch);
    expect(checkWelcome(ctx, intro({ node: "c", region: "south", proto: 0 }), expected)?.code).toBe(CloseCode.protocolVersion);
  });

  it("uses only the private 4000-4099 range", () => {
    for (const code of Object.values(CloseCode)) expect(isPeerCloseCode(code)).toBe(true);
    expect(isPeerCloseCode(1000)).toBe(false);
    expect(isPeerCloseCode(4100)).toBe(false);
  });
});

describe("faults", () => {
  const regionOf = (n: NodeId): RegionId | undefined => ({ a: asRegionId("east"), b: asRegionId("west") })[n as "a" | "b"];
  const A = asNodeId("a");
  const B = asNodeId("b");

  it("expands region names to their nodes, per direction", () => {
    const f = new Faults(regionOf);
    f.add(["east"], "out");
    expect([f.blocksLink(A), f.blocksIn(A), f.blocksOut(A), f.blocksOut(B)]).toEqual([false, false, true, false]);
    f.add(["b"], "in");
    expect([f.blocksLink(B), f.blocksIn(B), f.blocksOut(B)]).toEqual([false, true, false]);
    f.add(["west"], "both");
    expect([f.blocksLink(B), f.blocksIn(B), f.blocksOut(B)]).toEqual([true, true, true]);
    expect(f.view()).toEqual({ blocked: ["b", "east", "west"], both: ["west"], in: ["b"], out: ["east"] });
    f.clear();
    expect([f.blocksLink(B), f.blocksIn(A), f.blocksOut(A)]).toEqual([false, false, false]);
    expect(f.view().blocked).toEqual([]);
  });
});

describe("peerWsUrl", () => {
  it("derives the /peer WebSocket URL from an http base URL", () => {
    expect(peerWsUrl("http://127.0.0.1:7101")).toBe("ws://127.0.0.1:7101/peer");
    expect(peerWsUrl("http://h:1/")).toBe("ws://h:1/peer");
    expect(peerWsUrl("https://h/base/?x=1")).toBe("wss://h/base/peer");
    expect(() => peerWsUrl("ftp://h")).toThrow(/http/);
  });
});

describe("createHub", () => {
  const base = {
    self: { node: asNodeId("a"), region: asRegionId("east"), clusterId: "k" },
    peers: [{ node: asNodeId("b"), region: asRegionId("west"), url: "http://127.0.0.1:1" }],
    intro: () => ({ epoch: 0, vv: {} }),
    onLinkUp: () => {},
    onLinkDown: () => {},
    onFrame: () => {},
    logger: pino({ level: "silent" }),
  };
  it("refuses configuration the wire format cannot carry, at startup", () => {
    expect(() => createHub({ ...base, self: { ...base.self, clusterId: "x".repeat(65) } })).toThrow(/cluster id/);
    expect(() => createHub({ ...base, peers: [...base.peers, ...base.peers] })).toThrow(/twice/);
    expect(() => createHub({ ...base, peers: [{ ...base.peers[0]!, node: asNodeId("a") }] })).toThrow(/must not include/);
    expect(() => createHub({ ...base, peers: [{ ...base.peers[0]!, url: "ftp://x" }] })).toThrow(/http/);
  });
});
