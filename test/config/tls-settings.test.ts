// TLS settings: the three files come together or not at all, each is read and
// parsed at startup, the key must be the certificate's, and the region files'
// schemes must agree with whether a certificate was given. Every refusal names
// the flag, variable or file to fix. Files are real, made by the openssl CLI.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterFromRegions, isConfigError, parseRegion, type ClusterConfig, type RegionConfig } from "../../src/node/config.js";
import { formatSettingsError, isSettingsError, type SettingsError } from "../../src/node/settings.js";
import { checkTlsForCluster, resolveTls, type TlsSettings } from "../../src/node/tls-settings.js";
import type { NodeId } from "../../src/core/ids.js";
import { issueNodeCert, makeCa, type CertFiles } from "../support/tls-certs.js";

let dir: string;
let ca: CertFiles;
let node: CertFiles;
let other: CertFiles;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "geokv-tls-settings-"));
  ca = makeCa(dir, "ca");
  node = issueNodeCert(dir, ca, "n1", "n1");
  other = issueNodeCert(dir, ca, "n2", "n2");
  writeFileSync(join(dir, "garbage.pem"), "not a certificate\n");
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function flags(o: { cert?: string; key?: string; ca?: string; mtls?: boolean }): Record<string, string> {
  return {
    ...(o.cert ? { "tls-cert": o.cert } : {}),
    ...(o.key ? { "tls-key": o.key } : {}),
    ...(o.ca ? { "tls-ca": o.ca } : {}),
    ...(o.mtls ? { "peer-mtls": "true" } : {}),
  };
}

function err(r: TlsSettings | SettingsError | undefined): string {
  if (!isSettingsError(r)) throw new Error(`expected a settings error, got ${r === undefined ? "no TLS" : "TLS settings"}`);
  return formatSettingsError(r);
}

function ok(r: TlsSettings | SettingsError | undefined): TlsSettings {
  if (r === undefined || isSettingsError(r)) throw new Error(`expected TLS settings, got ${r === undefined ? "none" : formatSettingsError(r)}`);
  return r;
}

describe("resolveTls", () => {
  it("is off when nothing is given", () => {
    expect(resolveTls({}, {})).toBeUndefined();
    expect(resolveTls({}, { GEOKV_PEER_MTLS: "0" })).toBeUndefined();
  });

  it("reads all three files from flags or variables, a flag winning", () => {
    const t = ok(resolveTls(flags({ cert: node.cert, key: node.key, ca: ca.cert }), {}));
    expect(t).toMatchObject({ certFile: node.cert, keyFile: node.key, caFile: ca.cert, peerMtls: false });
    expect(t.cert.toString()).toMatch(/BEGIN CERTIFICATE/);
    const fromEnv = ok(resolveTls({}, { GEOKV_TLS_CERT: other.cert, GEOKV_TLS_KEY: other.key, GEOKV_TLS_CA: ca.cert, GEOKV_PEER_MTLS: "true" }));
    expect(fromEnv).toMatchObject({ certFile: other.cert, peerMtls: true });
    const mixed = ok(resolveTls(flags({ cert: node.cert, key: node.key, mtls: true }), { GEOKV_TLS_CERT: other.cert, GEOKV_TLS_CA: ca.cert }));
    expect(mixed).toMatchObject({ certFile: node.cert, caFile: ca.cert, peerMtls: true });
  });

  it("refuses a certificate without its key, or without the CA", () => {
    expect(err(resolveTls(flags({ cert: node.cert, ca: ca.cert }), {}))).toBe("--tls-key: is missing: --tls-cert needs --tls-cert, --tls-key and --tls-ca together (or GEOKV_TLS_KEY)");
    expect(err(resolveTls({}, { GEOKV_TLS_CERT: node.cert, GEOKV_TLS_KEY: node.key }))).toBe("--tls-ca: is missing: GEOKV_TLS_CERT needs --tls-cert, --tls-key and --tls-ca together (or GEOKV_TLS_CA)");
  });

  it("refuses --peer-mtls without TLS, and a GEOKV_PEER_MTLS that is not a boolean", () => {
    expect(err(resolveTls(flags({ mtls: true }), {}))).toMatch(/^--peer-mtls: needs TLS: give --tls-cert, --tls-key and --tls-ca/);
    expect(err(resolveTls({}, { GEOKV_PEER_MTLS: "maybe" }))).toBe('GEOKV_PEER_MTLS: must be 1, true, 0 or false, got "maybe"');
  });

  it("names the unreadable file and why", () => {
    const missing = join(dir, "missing.pem");
    expect(err(resolveTls(flags({ cert: missing, key: node.key, ca: ca.cert }), {}))).toBe(`--tls-cert: cannot read ${missing}: no such file`);
    expect(err(resolveTls({}, { GEOKV_TLS_CERT: node.cert, GEOKV_TLS_KEY: node.key, GEOKV_TLS_CA: dir }))).toBe(`GEOKV_TLS_CA: cannot read ${dir}: is a folder`);
  });

  it("refuses files that are not what they should be", () => {
    const garbage = join(dir, "garbage.pem");
    expect(err(resolveTls(flags({ cert: garbage, key: node.key, ca: ca.cert }), {}))).toBe(`--tls-cert: ${garbage} is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)`);
    expect(err(resolveTls(flags({ cert: node.cert, key: node.key, ca: garbage }), {}))).toBe(`--tls-ca: ${garbage} is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)`);
    expect(err(resolveTls(flags({ cert: node.cert, key: node.cert, ca: ca.cert }), {}))).toMatch(/^--tls-key: .*n1\.pem is not a PEM private key/);
    expect(err(resolveTls(flags({ cert: node.cert, key: other.key, ca: ca.cert }), {}))).toBe(`--tls-key: ${other.key} is not the private key of the certificate in ${node.cert}`);
  });

  it("refuses an expired certificate", () => {
    // The test certificates are valid for two days: three days on, they are not.
    const later = Date.now() + 3 * 24 * 3_600_000;
    expect(err(resolveTls(flags({ cert: node.cert, key: node.key, ca: ca.cert }), {}, undefined, later))).toMatch(/^--tls-cert: the certificate in .*n1\.pem expired on /);
  });
});

function cluster(urls: readonly string[]): ClusterConfig {
  const text = JSON.stringify({ region: "r", nodes: urls.map((url, i) => ({ id: `n${i + 1}`, url })) });
  const region = parseRegion("regions/r.json", text);
  if (isConfigError(region)) throw new Error(region.problem);
  const c = clusterFromRegions([region as RegionConfig]);
  if (isConfigError(c)) throw new Error(c.problem);
  return c;
}

describe("checkTlsForCluster", () => {
  const n1 = "n1" as NodeId;

  it("accepts https with TLS and http without", () => {
    const tls = ok(resolveTls(flags({ cert: node.cert, key: node.key, ca: ca.cert }), {}));
    expect(checkTlsForCluster(cluster(["https://127.0.0.1:7001", "https://127.0.0.1:7002"]), n1, tls)).toBeNull();
    expect(checkTlsForCluster(cluster(["http://127.0.0.1:7001", "http://127.0.0.1:7002"]), n1, undefined)).toBeNull();
  });

  it("refuses an https URL without a certificate, and a certificate with an http URL", () => {
    const tls = ok(resolveTls(flags({ cert: node.cert, key: node.key, ca: ca.cert }), {}));
    expect(checkTlsForCluster(cluster(["https://127.0.0.1:7001"]), n1, undefined)).toEqual({
      type: "SettingsError",
      source: "--tls-cert",
      problem: "node n1's URL in regions/r.json is https://127.0.0.1:7001: serving https needs --tls-cert, --tls-key and --tls-ca (or GEOKV_TLS_CERT, GEOKV_TLS_KEY, GEOKV_TLS_CA)",
    });
    expect(checkTlsForCluster(cluster(["http://127.0.0.1:7001"]), n1, tls)).toMatchObject({ source: "--tls-cert", problem: "node n1's URL in regions/r.json is http://127.0.0.1:7001: TLS needs an https:// URL there" });
  });

  it("refuses a cluster that mixes http and https, naming the node entry", () => {
    const tls = ok(resolveTls(flags({ cert: node.cert, key: node.key, ca: ca.cert }), {}));
    expect(checkTlsForCluster(cluster(["https://127.0.0.1:7001", "http://127.0.0.1:7002"]), n1, tls)).toEqual({
      type: "ConfigError",
      file: "regions/r.json",
      field: "nodes[1].url",
      problem: "http://127.0.0.1:7002 is plain http but n1 is https://127.0.0.1:7001: every node of a cluster must use the same scheme",
    });
  });
});
