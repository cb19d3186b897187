// The checks each side of a peer handshake makes, as plain functions that
// return a refusal (close code and reason) or null. Keeping them apart from
// the socket code makes every refusal reason testable and keeps the reasons
// operators read in logs and /status in one place.

import type { NodeId, RegionId } from "../core/ids.js";
import { checkProofAmong } from "./auth.js";
import { PROTOCOL_VERSION, type Intro } from "./frames.js";

/**
 * WebSocket close codes of the peer protocol (the 4000-4099 private range).
 * The reason string says the details; the code lets a program tell them apart.
 */
export const CloseCode = {
  protocolVersion: 4001,
  badFrame: 4002,
  authFailed: 4003,
  unknownNode: 4004,
  clusterMismatch: 4005,
  regionMismatch: 4006,
  blocked: 4007,
  handshakeTimeout: 4008,
  replaced: 4009,
  wrongDirection: 4010,
  unexpectedNode: 4011,
} as const;

/** A normal shutdown: the node is going away (RFC 6455 1001), not refusing anyone. */
export const CLOSE_GOING_AWAY = 1001;

/** True for the codes peers use to refuse or drop a link (4000-4099). */
export function isPeerCloseCode(code: number): boolean {
  return code >= 4000 && code <= 4099;
}

/** Why a handshake was refused. */
export interface Refusal {
  readonly code: number;
  readonly reason: string;
}

/** What a node knows about itself and its peers, to judge an intro. */
export interface HandshakeContext {
  readonly self: { readonly node: NodeId; readonly region: RegionId; readonly clusterId: string };
  /** The configured region of a peer, or undefined for a node not in the cluster. */
  readonly regionOf: (node: string) => RegionId | undefined;
}

function checkCommon(ctx: HandshakeContext, intro: Intro): Refusal | null {
  if (intro.proto !== PROTOCOL_VERSION) {
    return { code: CloseCode.protocolVersion, reason: `protocol version ${intro.proto} not supported (this node speaks ${PROTOCOL_VERSION})` };
  }
  if (intro.clusterId !== ctx.self.clusterId) {
    return { code: CloseCode.clusterMismatch, reason: `cluster id mismatch: this node is in ${JSON.stringify(ctx.self.clusterId)}, peer claims ${JSON.stringify(intro.clusterId)}` };
  }
  return null;
}

function checkRegion(ctx: HandshakeContext, intro: Intro, configured: RegionId): Refusal | null {
  if (intro.region === configured) return null;
  return { code: CloseCode.regionMismatch, reason: `region mismatch for node ${intro.node}: configured ${configured}, claims ${intro.region}` };
}

/**
 * The acceptor's checks on a hello: same protocol and cluster, a known peer
 * in its configured region, dialing in the agreed direction (the lower id
 * dials: one link per pair), and not blocked by fault injection.
 */
export function checkHello(ctx: HandshakeContext, hello: Intro, isBlocked: (node: NodeId) => boolean): Refusal | null {
  const common = checkCommon(ctx, hello);
  if (common) return common;
  if (hello.node === ctx.self.node) return { code: CloseCode.unknownNode, reason: `unknown node ${hello.node}: that is this node's own id` };
  const configured = ctx.regionOf(hello.node);
  if (configured === undefined) return { code: CloseCode.unknownNode, reason: `unknown node ${hello.node}` };
  const region = checkRegion(ctx, hello, configured);
  if (region) return region;
  if (!(hello.node < ctx.self.node)) {
    return { code: CloseCode.wrongDirection, reason: `node ${hello.node} must not dial ${ctx.self.node}: the node with the lower id dials` };
  }
  if (isBlocked(hello.node as NodeId)) return { code: CloseCode.blocked, reason: "blocked by fault injection" };
  return null;
}

/** The dialer's checks on a welcome: same protocol and cluster, and the node it meant to reach, in its configured region. */
export function checkWelcome(ctx: HandshakeContext, welcome: Intro, expected: { readonly node: NodeId; readonly region: RegionId; readonly url: string }): Refusal | null {
  const common = checkCommon(ctx, welcome);
  if (common) return common;
  if (welcome.node !== expected.node) {
    return { code: CloseCode.unexpectedNode, reason: `expected node ${expected.node} at ${expected.url}, but node ${welcome.node} answered` };
  }
  return checkRegion(ctx, welcome, expected.region);
}

/**
 * A peer's proof checked against the ones we accept (one per listed cluster
 * secret; none when this node has no secret). The reasons say which side
 * lacks what, so an operator reading either node's log can fix it.
 */
export function checkPeerProof(accepted: readonly Uint8Array[], got: Uint8Array): Refusal | null {
  const err = checkProofAmong(accepted, got);
  switch (err) {
    case null:
      return null;
    case "peer did not authenticate":
      return { code: CloseCode.authFailed, reason: "peer did not authenticate: this node requires a cluster secret" };
    case "peer sent an unexpected proof":
      return { code: CloseCode.authFailed, reason: "peer sent an unexpected proof: this node has no cluster secret" };
    case "wrong cluster secret":
      return { code: CloseCode.authFailed, reason: "wrong cluster secret" };
    default: {
      const never: never = err;
      throw new Error(`unknown proof error ${String(never)}`);
    }
  }
}
