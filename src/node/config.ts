// The cluster's shape comes from a folder of region files (DESIGN.md,
// "Configuration: regions/"). This is the edge where that untrusted text
// becomes branded, validated types, so nothing inside has to doubt a node id,
// a URL or a priority again. A bad file must stop a node with one line that
// names the file, the field and the problem, so failures are values
// (ConfigError), never exceptions with a stack trace.

import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { isValidId, type NodeId, type RegionId } from "../core/ids.js";

/** Failover policy of a region: elect automatically, or wait for an operator. */
export type FailoverMode = "auto" | "manual";

/** One node as its region file names it, with its URL already taken apart. */
export interface NodeConfig {
  readonly id: NodeId;
  /** Normalized origin, "http://127.0.0.1:7101" (no path, no trailing slash). */
  readonly url: string;
  /** Host to connect to or listen on, without IPv6 brackets ("::1"). */
  readonly host: string;
  readonly port: number;
  /** Bully rank: higher wins; ties broken by id. */
  readonly priority: number;
}

/** A node together with the region it belongs to. */
export type ClusterNode = NodeConfig & { readonly region: RegionId };

/** One region file after validation. */
export interface RegionConfig {
  readonly region: RegionId;
  readonly failover: FailoverMode;
  /** Whether a recovered higher-ranked node takes leadership back. */
  readonly preempt: boolean;
  readonly nodes: readonly ClusterNode[];
  /** The file it came from, so runtime messages can point at it. */
  readonly file: string;
}

/** The whole cluster: every region (in file-name order) and every node by id. */
export interface ClusterConfig {
  readonly regions: readonly RegionConfig[];
  readonly nodes: ReadonlyMap<NodeId, ClusterNode>;
}

/** An expected failure: a configuration a node must refuse to start with. */
export interface ConfigError {
  readonly type: "ConfigError";
  /** The file (or folder) at fault, as a path the operator can open. */
  readonly file: string;
  /** Where in the file: a JSON path ("nodes[1].url"), a "line L, column C", or "(root)"/"(folder)". */
  readonly field: string;
  readonly problem: string;
}

// Bounds: a region file is a few hundred bytes; anything near these limits is
// a wrong folder or a generated file gone astray, not a real cluster.
const REGION_FILE_BYTES_MAX = 1024 * 1024;
const REGIONS_MAX = 64;
const NODES_PER_REGION_MAX = 64;

const REGION_KEYS = ["region", "failover", "preempt", "nodes"] as const;
const NODE_KEYS = ["id", "url", "priority"] as const;

/** True when a loader result is an error rather than a configuration. */
export function isConfigError(v: unknown): v is ConfigError {
  return typeof v === "object" && v !== null && (v as { type?: unknown }).type === "ConfigError";
}

/** One line for logs and stderr: `<file>: <field>: <problem>`. */
export function formatConfigError(e: ConfigError): string {
  return `${e.file}: ${e.field}: ${e.problem}`;
}

function configError(file: string, field: string, problem: string): ConfigError {
  return { type: "ConfigError", file, field, problem };
}

/** Short, quoted rendering of an offending value for a problem message. */
function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  const json = JSON.stringify(v);
  if (json === undefined) return typeof v;
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

const idSchema = z.string().refine(isValidId, {
  error: (iss) =>
    `${describe(iss.input)} is not a valid id (1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit)`,
});

/** The address part of a node URL, or a problem description. */
type ParsedUrl = { url: string; host: string; port: number } | string;

function parseNodeUrl(raw: string): ParsedUrl {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return `${describe(raw)} is not a URL; expected http://HOST:PORT`;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    return `${describe(raw)} must start with http:// or https://`;
  }
  if (u.username !== "" || u.password !== "") return `${describe(raw)} must not carry credentials`;
  if ((u.pathname !== "/" && u.pathname !== "") || u.search !== "" || u.hash !== "") {
    return `${describe(raw)} must be just http(s)://HOST:PORT, without a path, query or fragment`;
  }
  // WHATWG URL drops a port equal to the scheme default, so read it back from
  // the text: a node URL must say its port, peers and clients rely on it.
  let port: number;
  if (u.port !== "") {
    port = Number(u.port);
  } else {
    const explicit = /:(\d+)\/?$/.exec(raw.trim());
    if (explicit === null) return `${describe(raw)} has no port; expected http://HOST:PORT`;
    port = Number(explicit[1]);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return `${describe(raw)} has port ${port}; expected 1 to 65535`;
  }
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  if (host === "0.0.0.0" || host === "::") {
    // Peers dial this URL; a wildcard is a listen address, not a destination.
    return `${describe(raw)} is a listen-all address peers cannot dial; give the node's reachable address (and --listen ${host === "::" ? "[::]" : host}:${port} if needed)`;
  }
  return { url: `${u.protocol}//${u.hostname}:${port}`, host, port };
}

const urlSchema = z.string().transform((raw, ctx) => {
  const parsed = parseNodeUrl(raw);
  if (typeof parsed === "string") {
    ctx.issues.push({ code: "custom", message: parsed, input: raw });
    return z.NEVER;
  }
  return parsed;
});

const nodeSchema = z.strictObject({
  id: idSchema,
  url: urlSchema,
  priority: z.int({ error: (iss) => `must be an integer, got ${describe(iss.input)}` }).default(0),
});

const regionSchema = z.strictObject({
  region: idSchema,
  failover: z
    .enum(["auto", "manual"], { error: (iss) => `must be "auto" or "manual", got ${describe(iss.input)}` })
    .default("auto"),
  preempt: z.boolean({ error: (iss) => `must be true or false, got ${describe(iss.input)}` }).default(false),
  nodes: z
    .array(nodeSchema)
    .min(1, { error: "must list at least one node" })
    .max(NODES_PER_REGION_MAX, { error: `must list at most ${NODES_PER_REGION_MAX} nodes` }),
});

/** "nodes[1].url" from zod's ["nodes", 1, "url"]; "(root)" for the document itself. */
function jsonPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out === "" ? "(root)" : out;
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  array: "an array",
  object: "a JSON object",
};

/** The parse-wide error map: wording for issues the schemas do not word themselves. */
function zodProblem(iss: z.core.$ZodRawIssue): string | undefined {
  if (iss.code === "invalid_type") {
    if (iss.input === undefined) return "is required";
    return `must be ${TYPE_NAMES[iss.expected] ?? iss.expected}, got ${describe(iss.input)}`;
  }
  return undefined;
}

/** Turns the first zod issue into field and problem, the way an operator reads it. */
function issueToError(file: string, issue: z.core.$ZodIssue): ConfigError {
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "?";
    const allowed = issue.path.length === 0 ? REGION_KEYS : NODE_KEYS;
    return configError(file, jsonPath([...issue.path, key]), `unknown field (expected ${allowed.join(", ")})`);
  }
  return configError(file, jsonPath(issue.path), issue.message);
}

/** "line 3, column 14" for a character offset, counting from 1 as editors do. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, Math.min(offset, text.length));
  const lines = before.split("\n");
  const last = lines[lines.length - 1] ?? "";
  return `line ${lines.length}, column ${last.length + 1}`;
}

/** Where a JSON text first goes wrong, and what was expected there. */
interface JsonSyntaxFault {
  readonly at: number;
  readonly expected: string;
}

const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * Finds the first syntax error in a text JSON.parse refused. V8's messages
 * give an offset only for some errors (and Node 20 never a line), but an
 * operator editing a region file wants "line 3, column 14", so we scan for it.
 * Only runs on text that already failed to parse.
 */
function findJsonFault(t: string): JsonSyntaxFault | undefined {
  let i = 0;
  const fault = (expected: string): JsonSyntaxFault => ({ at: i, expected });
  const skipSpace = (): void => {
    while (i < t.length && (t[i] === " " || t[i] === "\t" || t[i] === "\n" || t[i] === "\r")) i++;
  };
  const str = (): void => {
    i++; // opening quote
    for (;;) {
      const c = t.charCodeAt(i);
      if (Number.isNaN(c)) throw fault("a closing '\"'");
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) throw fault("an escape such as \\n or \\t, not a raw control character");
      if (c === 0x5c) {
        i++;
        const e = t[i];
        if (e === "u" && /^[0-9a-fA-F]{4}$/.test(t.slice(i + 1, i + 5))) i += 5;
        else if (e !== undefined && '"\\/bfnrt'.includes(e)) i++;
        else throw fault("a valid escape (\\\", \\\\, \\/, \\b, \\f, \\n, \\r, \\t, \\uXXXX)");
      } else {
        i++;
      }
    }
  };
  const value = (): void => {
    skipSpace();
    const c = t[i];
    if (c === "{") {
      i++;
      skipSpace();
      if (t[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        skipSpace();
        if (t[i] !== '"') throw fault("a property name in double quotes");
        str();
        skipSpace();
        if (t[i] !== ":") throw fault("':'");
        i++;
        value();
        skipSpace();
        if (t[i] === ",") i++;
        else if (t[i] === "}") {
          i++;
          return;
        } else throw fault("',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      skipSpace();
      if (t[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        value();
        skipSpace();
        if (t[i] === ",") i++;
        else if (t[i] === "]") {
          i++;
          return;
        } else throw fault("',' or ']'");
      }
    }
    if (c === '"') return str();
    for (const word of ["true", "false", "null"]) {
      if (t.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    JSON_NUMBER.lastIndex = i;
    const n = JSON_NUMBER.exec(t);
    if (n === null) throw fault("a value");
    i += n[0].length;
  };
  try {
    value();
    skipSpace();
    if (i < t.length) throw fault("the end of the file");
  } catch (e) {
    if (typeof e === "object" && e !== null && "at" in e) return e as JsonSyntaxFault;
    return undefined; // e.g. nesting deep enough to overflow the stack
  }
  return undefined;
}

/** The character at an offset, as a problem message shows it. */
function charAt(t: string, at: number): string {
  const c = t[at];
  if (c === undefined) return "the end of the file";
  return c === "\n" ? "a line break" : `'${c}'`;
}

function parseJson(file: string, text: string): unknown | ConfigError {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const f = findJsonFault(text);
    if (f !== undefined) {
      return configError(file, lineColumn(text, f.at), `invalid JSON: expected ${f.expected}, got ${charAt(text, f.at)}`);
    }
    return configError(file, "(root)", `invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Validates one region file's text; `file` is only used in error messages. */
export function parseRegion(file: string, text: string): RegionConfig | ConfigError {
  // Editors on Windows like to add a byte-order mark; JSON.parse does not.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (body.trim() === "") return configError(file, "(root)", "file is empty; expected a region object");
  const json = parseJson(file, body);
  if (isConfigError(json)) return json;
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return configError(file, "(root)", `must be a JSON object, got ${Array.isArray(json) ? "an array" : describe(json)}`);
  }
  const parsed = regionSchema.safeParse(json, { error: zodProblem });
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return first === undefined ? configError(file, "(root)", "invalid region") : issueToError(file, first);
  }
  const region = parsed.data.region as RegionId;
  return {
    region,
    failover: parsed.data.failover,
    preempt: parsed.data.preempt,
    nodes: parsed.data.nodes.map((n) => ({
      id: n.id as NodeId,
      url: n.url.url,
      host: n.url.host,
      port: n.url.port,
      priority: n.priority,
      region,
    })),
    file,
  };
}

/** Joins validated regions into a cluster, checking what no single file can. */
export function clusterFromRegions(regions: readonly RegionConfig[]): ClusterConfig | ConfigError {
  if (regions.length === 0) return configError("(none)", "(folder)", "no regions");
  const regionFiles = new Map<RegionId, string>();
  const nodeAt = new Map<NodeId, string>();
  const addressAt = new Map<string, string>();
  const nodes = new Map<NodeId, ClusterNode>();
  for (const r of regions) {
    const other = regionFiles.get(r.region);
    if (other !== undefined) {
      return configError(r.file, "region", `duplicate region "${r.region}" (also in ${other})`);
    }
    regionFiles.set(r.region, r.file);
    for (const [i, n] of r.nodes.entries()) {
      const here = `${r.file} nodes[${i}]`;
      const sameId = nodeAt.get(n.id);
      if (sameId !== undefined) {
        return configError(r.file, `nodes[${i}].id`, `duplicate node id "${n.id}" (also in ${sameId})`);
      }
      // Two nodes on one host:port cannot both listen; the second would fail at
      // bind time with a message far from the cause.
      const address = `${n.host.toLowerCase()}:${n.port}`;
      const sameAddress = addressAt.get(address);
      if (sameAddress !== undefined) {
        return configError(r.file, `nodes[${i}].url`, `duplicate address ${address} (also used by ${sameAddress})`);
      }
      nodeAt.set(n.id, here);
      addressAt.set(address, `"${n.id}" in ${here}`);
      nodes.set(n.id, n);
    }
  }
  return { regions: [...regions], nodes };
}

function listRegionFiles(dir: string): string[] | ConfigError {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return configError(dir, "(folder)", "folder does not exist");
    if (code === "ENOTDIR") return configError(dir, "(folder)", "is not a folder");
    return configError(dir, "(folder)", `cannot read folder (${code ?? String(e)})`);
  }
  // Like the shell's *.json: dotfiles (editor locks, backups) are not regions.
  const files = names
    .filter((n) => n.endsWith(".json") && !n.startsWith("."))
    .filter((n) => {
      try {
        return statSync(join(dir, n)).isFile();
      } catch {
        return false; // a dangling symlink is not a region file
      }
    })
    .sort();
  if (files.length === 0) return configError(dir, "(folder)", "contains no *.json region files");
  if (files.length > REGIONS_MAX) return configError(dir, "(folder)", `has ${files.length} region files; at most ${REGIONS_MAX}`);
  return files;
}

function readRegionFile(file: string): string | ConfigError {
  try {
    const size = statSync(file).size;
    if (size > REGION_FILE_BYTES_MAX) {
      return configError(file, "(root)", `file is ${size} bytes; a region file is at most ${REGION_FILE_BYTES_MAX}`);
    }
    return readFileSync(file, "utf8");
  } catch (e) {
    return configError(file, "(root)", `cannot read file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/** Reads and validates every *.json region file in `dir` (sorted by name). */
export function loadCluster(dir: string): ClusterConfig | ConfigError {
  const files = listRegionFiles(dir);
  if (isConfigError(files)) return files;
  const regions: RegionConfig[] = [];
  for (const name of files) {
    const file = join(dir, name);
    const text = readRegionFile(file);
    if (isConfigError(text)) return text;
    const region = parseRegion(file, text);
    if (isConfigError(region)) return region;
    regions.push(region);
  }
  return clusterFromRegions(regions);
}

/** The node with this id, or undefined (ids from a CLI or a peer are untrusted strings). */
export function findNode(cluster: ClusterConfig, id: string): ClusterNode | undefined {
  return cluster.nodes.get(id as NodeId);
}

/** The region a node belongs to, or undefined for an unknown node. */
export function regionOf(cluster: ClusterConfig, id: NodeId): RegionConfig | undefined {
  const node = cluster.nodes.get(id);
  return node === undefined ? undefined : cluster.regions.find((r) => r.region === node.region);
}

/** The other nodes of a node's region (empty for an unknown node). */
export function peersInRegion(cluster: ClusterConfig, id: NodeId): ClusterNode[] {
  return (regionOf(cluster, id)?.nodes ?? []).filter((n) => n.id !== id);
}

/**
 * A short, stable fingerprint of the cluster's membership (region and node ids,
 * not URLs, which differ between a laptop and a container), exchanged in the
 * peer handshake so a node from another cluster is refused.
 */
export function clusterId(cluster: ClusterConfig): string {
  const lines = [...cluster.regions]
    .map((r) => `${r.region}:${r.nodes.map((n) => n.id).sort().join(",")}`)
    .sort();
  return createHash("sha256").update(`geokv-cluster-v1\n${lines.join("\n")}`).digest("hex").slice(0, 16);
}
