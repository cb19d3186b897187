// The HMAC challenge-response of the peer handshake. Each side proves it
// knows the cluster secret by MACing the other side's fresh nonce, so a
// recorded handshake cannot be replayed; the prover's and verifier's ids are
// in the MACed string in that order, so the acceptor's proof can never be
// reflected back as the dialer's. A node may hold several secrets during a
// rotation: it proves with the first and accepts a proof made with any.

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { NONCE_BYTES } from "./frames.js";

/** Domain separation: a MAC made for this purpose is useless anywhere else. */
const PROOF_CONTEXT = "geokv-peer-v1";

/** A fresh challenge for one handshake. */
export function newNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_BYTES));
}

/**
 * The proof that `proverId` knows `secret`, over `verifierId`'s nonce:
 * HMAC-SHA256(secret, "geokv-peer-v1|cluster|prover|verifier|hex(nonce)").
 * Empty when there is no secret (an open cluster).
 */
export function proofFor(secret: string | undefined, clusterId: string, proverId: string, verifierId: string, verifierNonce: Uint8Array): Uint8Array {
  if (secret === undefined || secret === "") return new Uint8Array(0);
  const msg = `${PROOF_CONTEXT}|${clusterId}|${proverId}|${verifierId}|${Buffer.from(verifierNonce).toString("hex")}`;
  return new Uint8Array(createHmac("sha256", secret).update(msg).digest());
}

/** Why a proof was not accepted; the reasons are the close reasons peers see. */
export type ProofError = "peer did not authenticate" | "peer sent an unexpected proof" | "wrong cluster secret";

/**
 * The proofs this node accepts from `proverId` over its own nonce: one per
 * listed secret (none for an open cluster).
 */
export function acceptedProofs(secrets: readonly string[] | undefined, clusterId: string, proverId: string, verifierId: string, verifierNonce: Uint8Array): Uint8Array[] {
  return (secrets ?? []).filter((s) => s !== "").map((s) => proofFor(s, clusterId, proverId, verifierId, verifierNonce));
}

/**
 * Checks a peer's proof against the ones we accept (`acceptedProofs`). None
 * accepted and none sent means neither side has a secret. A secret on one
 * side only is refused, as is a proof that matches no accepted one. Every
 * accepted proof is compared, in constant time, so the time taken does not
 * tell which secret matched.
 */
export function checkProofAmong(accepted: readonly Uint8Array[], got: Uint8Array): ProofError | null {
  if (accepted.length > 0 && got.length === 0) return "peer did not authenticate";
  if (accepted.length === 0 && got.length > 0) return "peer sent an unexpected proof";
  if (accepted.length === 0) return null;
  let matched = false;
  for (const expected of accepted) {
    const same = got.length === expected.length && timingSafeEqual(got, expected);
    matched = matched || same;
  }
  return matched ? null : "wrong cluster secret";
}

/** `checkProofAmong` with one expected proof (empty: no secret here). */
export function checkProof(expected: Uint8Array, got: Uint8Array): ProofError | null {
  return checkProofAmong(expected.length === 0 ? [] : [expected], got);
}
