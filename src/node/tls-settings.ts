// TLS settings (DESIGN.md, Security): --tls-cert, --tls-key, --tls-ca and
// --peer-mtls, or GEOKV_TLS_CERT, GEOKV_TLS_KEY, GEOKV_TLS_CA and
// GEOKV_PEER_MTLS. Like the other settings they are resolved and checked
// once at startup, files read and parsed included, so a missing key, an
// unreadable file, a key that is not the certificate's, or an https:// URL
// without a certificate stops the node with one line naming the flag or file
// and the problem, instead of surfacing later as peers that never connect.

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { PeerTls } from "../net/peer-cert.js";
import type { ClusterConfig, ConfigError } from "./config.js";
import { isSettingsError, type SettingsError } from "./settings.js";
import type { NodeId } from "../core/ids.js";

/** The TLS files a node was given, read and checked. */
export interface TlsSettings extends PeerTls {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/** One TLS file setting: its flag (without "--") and variable. */
interface FileSpec {
  readonly key: "cert" | "key" | "ca";
  readonly flag: string;
  readonly env: string;
  readonly help: string;
}

const FILE_SPECS: readonly FileSpec[] = [
  { key: "cert", flag: "tls-cert", env: "GEOKV_TLS_CERT", help: "this node's certificate (PEM); serves https and wss" },
  { key: "key", flag: "tls-key", env: "GEOKV_TLS_KEY", help: "the certificate's private key (PEM)" },
  { key: "ca", flag: "tls-ca", env: "GEOKV_TLS_CA", help: "the CA (PEM) peers' certificates must chain to" },
];

/** The --peer-mtls switch. */
export const PEER_MTLS_SETTING = { flag: "peer-mtls", env: "GEOKV_PEER_MTLS", help: "peers present certificates naming their node id" } as const;

/** The TLS flags that take a file, without "--" (the CLI declares these as strings; peer-mtls is a switch). */
export const TLS_FILE_FLAGS: readonly string[] = FILE_SPECS.map((s) => s.flag);

/** Help lines for `geokv node --help`. */
export function tlsHelp(): string {
  const rows = FILE_SPECS.map((s) => `  --${s.flag} FILE`.padEnd(32) + `${s.help} (${s.env})`);
  rows.push(`  --${PEER_MTLS_SETTING.flag}`.padEnd(32) + `${PEER_MTLS_SETTING.help} (${PEER_MTLS_SETTING.env}=1)`);
  return rows.join("\n");
}

function settingsError(source: string, problem: string): SettingsError {
  return { type: "SettingsError", source, problem };
}

/** The flag if given, else the variable if set and not empty, with where it came from. */
function pick(flags: Record<string, string | boolean>, env: NodeJS.ProcessEnv, flag: string, name: string): { value: string; source: string } | undefined {
  const v = flags[flag];
  if (typeof v === "string") return { value: v, source: `--${flag}` };
  const e = env[name];
  return e === undefined || e === "" ? undefined : { value: e, source: name };
}

/** --peer-mtls given (any value but "false"), else GEOKV_PEER_MTLS as a boolean word. */
function peerMtlsOf(flags: Record<string, string | boolean>, env: NodeJS.ProcessEnv): { on: boolean; source: string } | SettingsError {
  const flag = flags[PEER_MTLS_SETTING.flag];
  if (flag !== undefined) return { on: flag !== "false" && flag !== false, source: `--${PEER_MTLS_SETTING.flag}` };
  const raw = env[PEER_MTLS_SETTING.env];
  if (raw === undefined || raw === "") return { on: false, source: PEER_MTLS_SETTING.env };
  const word = raw.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(word)) return { on: true, source: PEER_MTLS_SETTING.env };
  if (["0", "false", "no", "off"].includes(word)) return { on: false, source: PEER_MTLS_SETTING.env };
  return settingsError(PEER_MTLS_SETTING.env, `must be 1, true, 0 or false, got ${JSON.stringify(raw)}`);
}

/** The file's bytes, or an error naming the setting, the path and the system's reason. */
function readSettingFile(source: string, path: string, read: (path: string) => Buffer): Buffer | SettingsError {
  try {
    return read(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a folder" : (code ?? String(e));
    return settingsError(source, `cannot read ${path}: ${why}`);
  }
}

/** The first certificate of a PEM file, or why it is not one. */
function parseCert(source: string, path: string, pem: Buffer, now: number): X509Certificate | SettingsError {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return settingsError(source, `${path} is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)`);
  }
  if (Date.parse(cert.validTo) < now) return settingsError(source, `the certificate in ${path} expired on ${cert.validTo}`);
  if (Date.parse(cert.validFrom) > now) return settingsError(source, `the certificate in ${path} is not valid before ${cert.validFrom}`);
  return cert;
}

/**
 * Resolves the TLS settings: undefined when none is given; all three files
 * together otherwise (a certificate without its key, or without the CA that
 * peers are checked against, is refused), each read and parsed.
 */
export function resolveTls(
  flags: Record<string, string | boolean>,
  env: NodeJS.ProcessEnv,
  read: (path: string) => Buffer = readFileSync,
  now: number = Date.now(),
): TlsSettings | undefined | SettingsError {
  const mtls = peerMtlsOf(flags, env);
  if (isSettingsError(mtls)) return mtls;
  const given = FILE_SPECS.map((spec) => ({ spec, raw: pick(flags, env, spec.flag, spec.env) }));
  const first = given.find((g) => g.raw !== undefined);
  if (first === undefined) {
    if (mtls.on) return settingsError(mtls.source, "needs TLS: give --tls-cert, --tls-key and --tls-ca (or GEOKV_TLS_CERT, GEOKV_TLS_KEY, GEOKV_TLS_CA)");
    return undefined;
  }
  const missing = given.find((g) => g.raw === undefined);
  if (missing !== undefined) {
    return settingsError(`--${missing.spec.flag}`, `is missing: ${first.raw?.source} needs --tls-cert, --tls-key and --tls-ca together (or ${missing.spec.env})`);
  }
  const files: Record<"cert" | "key" | "ca", { path: string; source: string; bytes: Buffer }> = {} as never;
  for (const { spec, raw } of given) {
    if (raw === undefined) continue;
    const bytes = readSettingFile(raw.source, raw.value, read);
    if (isSettingsError(bytes)) return bytes;
    files[spec.key] = { path: raw.value, source: raw.source, bytes };
  }
  const cert = parseCert(files.cert.source, files.cert.path, files.cert.bytes, now);
  if (isSettingsError(cert)) return cert;
  const ca = parseCert(files.ca.source, files.ca.path, files.ca.bytes, now);
  if (isSettingsError(ca)) return ca;
  let key;
  try {
    key = createPrivateKey(files.key.bytes);
  } catch {
    return settingsError(files.key.source, `${files.key.path} is not a PEM private key (or it is encrypted; geokv takes an unencrypted key)`);
  }
  if (!cert.checkPrivateKey(key)) return settingsError(files.key.source, `${files.key.path} is not the private key of the certificate in ${files.cert.path}`);
  return {
    cert: files.cert.bytes,
    key: files.key.bytes,
    ca: files.ca.bytes,
    peerMtls: mtls.on,
    certFile: files.cert.path,
    keyFile: files.key.path,
    caFile: files.ca.path,
  };
}

/**
 * What TLS the cluster's URLs ask of this node: an https:// URL needs a
 * certificate, a certificate needs an https:// URL, and one cluster speaks
 * one scheme (a plain node could neither dial nor be dialed by a TLS one).
 */
export function checkTlsForCluster(cluster: ClusterConfig, nodeId: NodeId, tls: TlsSettings | undefined): SettingsError | ConfigError | null {
  const me = cluster.nodes.get(nodeId);
  if (me === undefined) return null;
  const file = cluster.regions.find((r) => r.region === me.region)?.file ?? "(regions)";
  const secure = me.url.startsWith("https:");
  if (secure && tls === undefined) return settingsError("--tls-cert", `node ${nodeId}'s URL in ${file} is ${me.url}: serving https needs --tls-cert, --tls-key and --tls-ca (or GEOKV_TLS_CERT, GEOKV_TLS_KEY, GEOKV_TLS_CA)`);
  if (!secure && tls !== undefined) return settingsError("--tls-cert", `node ${nodeId}'s URL in ${file} is ${me.url}: TLS needs an https:// URL there`);
  for (const r of cluster.regions) {
    for (const [i, n] of r.nodes.entries()) {
      if (n.url.startsWith("https:") === secure) continue;
      return { type: "ConfigError", file: r.file, field: `nodes[${i}].url`, problem: `${n.url} is ${secure ? "plain http" : "https"} but ${nodeId} is ${me.url}: every node of a cluster must use the same scheme` };
    }
  }
  return null;
}
