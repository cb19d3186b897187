// TLS on the peer links (DESIGN.md, Security): what a node checks about the
// certificate the other end of a peer link presented. Both ends verify the
// chain against --tls-ca; under --peer-mtls the certificate must also name
// the node id the link is for, so a node holding any certificate of the CA
// cannot pose as another node. The checks are plain functions over facts read
// from the socket, returning a refusal (close code and reason) or null, like
// the handshake's checks, so the reasons operators read in logs and /status
// live in one place and are testable without sockets.

import type { PeerCertificate, TLSSocket } from "node:tls";
import { CloseCode, type Refusal } from "./handshake.js";

/** The TLS material and policy of a node's peer links. */
export interface PeerTls {
  /** PEM: this node's certificate (chain), its key, and the CA peers must chain to. */
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
  /** --peer-mtls: peers present certificates, and a certificate must name its node id. */
  readonly peerMtls: boolean;
}

/** The URI SAN form that names a node: `URI:geokv:node:<node-id>` (as is `DNS:<node-id>`). */
export const NODE_URI_PREFIX = "geokv:node:";

/** What a socket says about the certificate its other end presented. */
export interface PeerCertFacts {
  /** The chain verified against our CA (and, on the dialing side, the URL's host). */
  readonly authorized: boolean;
  /** OpenSSL's or Node's reason when not authorized ("UNABLE_TO_VERIFY_LEAF_SIGNATURE"). */
  readonly authorizationError: string | undefined;
  /** False when the other end sent no certificate at all. */
  readonly presented: boolean;
  /** The certificate's subjectAltName, as Node renders it ("DNS:n1, IP Address:127.0.0.1"). */
  readonly subjectAltName: string | undefined;
}

/** Reads the facts from a TLS socket (the dialer's WebSocket socket, or the acceptor's request socket). */
export function peerCertFacts(socket: TLSSocket): PeerCertFacts {
  const cert: PeerCertificate | Record<string, never> = socket.getPeerCertificate();
  const presented = Object.keys(cert).length > 0;
  const authorizationError = socket.authorizationError === undefined || socket.authorizationError === null ? undefined : String(socket.authorizationError);
  return { authorized: socket.authorized, authorizationError, presented, subjectAltName: presented ? (cert as PeerCertificate).subjectaltname : undefined };
}

/** The node ids a certificate names: its `DNS:<id>` and `URI:geokv:node:<id>` subjectAltName entries. */
export function certNodeNames(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined || subjectAltName === "") return [];
  const names: string[] = [];
  for (const entry of subjectAltName.split(/,\s*/)) {
    // Node quotes a value that needs it (DNS:"a,b"); ids never need quoting, so a quoted value names no id.
    if (entry.startsWith("DNS:")) names.push(entry.slice("DNS:".length));
    else if (entry.startsWith(`URI:${NODE_URI_PREFIX}`)) names.push(entry.slice(`URI:${NODE_URI_PREFIX}`.length));
  }
  return names;
}

/** Human words for the chain errors an operator meets when a certificate is from another CA. */
function untrustedWhy(error: string | undefined): string {
  switch (error) {
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "UNABLE_TO_GET_ISSUER_CERT":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
      return `not issued by this node's --tls-ca (${error})`;
    case "CERT_HAS_EXPIRED":
      return "expired (CERT_HAS_EXPIRED)";
    case "CERT_NOT_YET_VALID":
      return "not valid yet (CERT_NOT_YET_VALID)";
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return "not valid for the host in its URL (ERR_TLS_CERT_ALTNAME_INVALID)";
    default:
      return `not trusted (${error ?? "unknown reason"})`;
  }
}

/**
 * Judges the certificate of `peer`: refused when the chain does not verify,
 * and under --peer-mtls also when none was presented or it does not name the
 * peer's node id. `side` says which end presented it, for the reason's words.
 */
export function checkPeerCert(facts: PeerCertFacts, peer: string, peerMtls: boolean, side: "server" | "client"): Refusal | null {
  const whose = `the TLS certificate of ${peer}`;
  if (!facts.presented) {
    // A server always presents one; a dialer only has to under --peer-mtls.
    if (side === "client" && !peerMtls) return null;
    return { code: CloseCode.authFailed, reason: `${peer} presented no TLS certificate${side === "client" ? " (this node requires --peer-mtls)" : ""}` };
  }
  if (!facts.authorized) {
    // Without --peer-mtls the acceptor does not ask for a client certificate, so an unverified one is not used for anything.
    if (side === "client" && !peerMtls) return null;
    return { code: CloseCode.authFailed, reason: `${whose} is ${untrustedWhy(facts.authorizationError)}` };
  }
  if (!peerMtls) return null;
  const names = certNodeNames(facts.subjectAltName);
  if (names.includes(peer)) return null;
  const named = names.length === 0 ? "names no node id" : `names ${names.join(", ")}`;
  return { code: CloseCode.authFailed, reason: `${whose} ${named}, not ${peer} (--peer-mtls needs subjectAltName DNS:${peer} or URI:${NODE_URI_PREFIX}${peer})` };
}
