// The peer certificate checks (src/net/peer-cert.ts): which subjectAltName
// entries name a node, and the refusal reasons operators read in logs and
// /status for each way a peer's certificate can be wrong, on either end.

import { describe, expect, it } from "vitest";
import { CloseCode } from "../../src/net/handshake.js";
import { certNodeNames, checkPeerCert, type PeerCertFacts } from "../../src/net/peer-cert.js";

const good: PeerCertFacts = { authorized: true, authorizationError: undefined, presented: true, subjectAltName: "DNS:n2, IP Address:127.0.0.1" };

describe("certNodeNames", () => {
  it("reads DNS and geokv URI entries, nothing else", () => {
    expect(certNodeNames("DNS:n1, IP Address:127.0.0.1, URI:geokv:node:n2, URI:https://n3, email:n4@x")).toEqual(["n1", "n2"]);
    expect(certNodeNames(undefined)).toEqual([]);
    expect(certNodeNames("")).toEqual([]);
  });
});

describe("checkPeerCert", () => {
  it("accepts a trusted certificate that names the peer", () => {
    expect(checkPeerCert(good, "n2", true, "server")).toBeNull();
    expect(checkPeerCert({ ...good, subjectAltName: "URI:geokv:node:n2" }, "n2", true, "client")).toBeNull();
  });

  it("refuses a certificate from another CA, on both ends", () => {
    const foreign = { ...good, authorized: false, authorizationError: "SELF_SIGNED_CERT_IN_CHAIN" };
    expect(checkPeerCert(foreign, "n2", false, "server")).toEqual({ code: CloseCode.authFailed, reason: "the TLS certificate of n2 is not issued by this node's --tls-ca (SELF_SIGNED_CERT_IN_CHAIN)" });
    expect(checkPeerCert(foreign, "n2", true, "client")?.reason).toBe("the TLS certificate of n2 is not issued by this node's --tls-ca (SELF_SIGNED_CERT_IN_CHAIN)");
    expect(checkPeerCert({ ...good, authorized: false, authorizationError: "CERT_HAS_EXPIRED" }, "n2", false, "server")?.reason).toBe("the TLS certificate of n2 is expired (CERT_HAS_EXPIRED)");
    expect(checkPeerCert({ ...good, authorized: false, authorizationError: "ERR_TLS_CERT_ALTNAME_INVALID" }, "n2", false, "server")?.reason).toMatch(/not valid for the host in its URL/);
  });

  it("under --peer-mtls refuses a certificate naming another node, or none", () => {
    expect(checkPeerCert({ ...good, subjectAltName: "DNS:n9, IP Address:127.0.0.1" }, "n2", true, "server")?.reason).toBe(
      "the TLS certificate of n2 names n9, not n2 (--peer-mtls needs subjectAltName DNS:n2 or URI:geokv:node:n2)",
    );
    expect(checkPeerCert({ ...good, subjectAltName: "IP Address:127.0.0.1" }, "n2", true, "client")?.reason).toMatch(/^the TLS certificate of n2 names no node id, not n2/);
    expect(checkPeerCert({ ...good, presented: false, subjectAltName: undefined }, "n2", true, "client")?.reason).toBe("n2 presented no TLS certificate (this node requires --peer-mtls)");
  });

  it("without --peer-mtls asks nothing of a dialer's certificate, nor of the names", () => {
    expect(checkPeerCert({ ...good, presented: false, authorized: false, subjectAltName: undefined }, "n2", false, "client")).toBeNull();
    expect(checkPeerCert({ ...good, authorized: false, authorizationError: "UNABLE_TO_GET_ISSUER_CERT" }, "n2", false, "client")).toBeNull();
    expect(checkPeerCert({ ...good, subjectAltName: "DNS:n9" }, "n2", false, "server")).toBeNull();
  });

  it("refuses a server that presents no certificate", () => {
    expect(checkPeerCert({ ...good, presented: false, authorized: false, subjectAltName: undefined }, "n2", false, "server")?.reason).toBe("n2 presented no TLS certificate");
  });
});
