// Test support: a throwaway PKI made with the openssl CLI (node:crypto makes
// keys but cannot sign X.509 certificates). A CA, and node certificates it
// signs that name a node id the way --peer-mtls reads it (subjectAltName
// DNS:<id>) and are valid for 127.0.0.1, where test nodes listen. Without
// openssl on PATH the suite fails, saying so, rather than skip.

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

/** A certificate and its key, as files. */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

function openssl(args: readonly string[]): void {
  try {
    execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new Error("the TLS tests need the openssl command (apt-get install openssl): not found on PATH");
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`);
  }
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** A self-signed CA in `dir` as <name>.pem / <name>.key. */
export function makeCa(dir: string, name: string): CertFiles {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  openssl(["req", "-x509", ...EC_KEY, "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${name}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  return { cert, key };
}

/** A certificate signed by `ca` naming `nodeId` (DNS:<nodeId>) and valid for 127.0.0.1, as <file>.pem / <file>.key. */
export function issueNodeCert(dir: string, ca: CertFiles, file: string, nodeId: string): CertFiles {
  const cert = join(dir, `${file}.pem`);
  const key = join(dir, `${file}.key`);
  const csr = join(dir, `${file}.csr`);
  const ext = join(dir, `${file}.ext`);
  writeFileSync(ext, `subjectAltName=DNS:${nodeId},IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(["req", "-new", ...EC_KEY, "-keyout", key, "-out", csr, "-subj", `/CN=${nodeId}`]);
  openssl(["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext]);
  return { cert, key };
}

/** The environment that gives a node these files (GEOKV_TLS_*), with --peer-mtls on or off. */
export function tlsEnv(node: CertFiles, caCert: string, peerMtls: boolean): Record<string, string> {
  return { GEOKV_TLS_CERT: node.cert, GEOKV_TLS_KEY: node.key, GEOKV_TLS_CA: caCert, GEOKV_PEER_MTLS: peerMtls ? "1" : "0" };
}
