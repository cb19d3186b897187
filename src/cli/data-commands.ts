// The data commands (put, get, del, incr, sadd, srem, smembers, doc get,
// conflicts): data calls from the shell, through the SDK so the shell gets
// the same retries, idempotent writes and leader handling as programs. They
// ask --node URL, else GEOKV_NODE, else every node of the first region in
// ./regions, and print the answer (JSON with --json); an error prints its
// code and message and exits 1.

import { createClient, isGeokvError, type ConflictEntry, type GeokvClient, type GeokvError } from "../client/index.js";
import { isConfigError, type ClusterConfig, type ConfigError } from "../node/config.js";
import type { CliCommand } from "./args.js";
import { docContent } from "./doc-json.js";
import type { Trust } from "./ca.js";
import { formatTable } from "./status.js";

/** The commands that are one SDK call. */
export type DataCommand = Extract<CliCommand, { cmd: "put" | "get" | "del" | "incr" | "sadd" | "srem" | "smembers" | "doc" | "conflicts" }>;

/**
 * Shorter than the SDK's default: a shell user waits on it. Still above one
 * server-side write wait (writeWaitMs, 3000) so a write during a failover
 * gets its answer.
 */
const CLI_TIMEOUT_MS = 5_000;

function pickNodes(cmd: DataCommand, loadCluster: () => ClusterConfig | ConfigError): string[] {
  if (cmd.node !== undefined) return [cmd.node];
  if (process.env.GEOKV_NODE) return [process.env.GEOKV_NODE];
  const cluster = loadCluster();
  if (isConfigError(cluster)) return [];
  return cluster.regions[0]?.nodes.map((n) => n.url) ?? [];
}

/** The line printed for a failed call: the server's refusal, or which nodes could not be reached. */
function describeFailure(err: GeokvError, nodes: readonly string[]): string {
  // Retries ran out: say what the last attempt met, as the one-shot command did.
  const shown = err.code === "unavailable" && err.cause ? err.cause : err;
  if (shown.status === null) return `cannot reach ${nodes.join(", ")}: ${shown.message}`;
  return `${shown.status} ${shown.code}: ${shown.message}`;
}

/** What a command prints: `json` with --json, else `text` (a trailing newline is added). */
interface Output {
  readonly json: unknown;
  readonly text: string;
}

/** One line per member; an empty set prints nothing. */
function membersText(members: readonly string[]): string {
  return members.join("\n");
}

function conflictsText(items: readonly ConflictEntry[]): string {
  if (items.length === 0) return "no conflicts recorded";
  const head = ["KEY", "WINNER", "LOSER", "AT"];
  const rows = items.map((x) => [x.key, `${x.winner.node} ${x.winner.hlc}`, `${x.loser.node} ${x.loser.hlc}`, x.at]);
  return formatTable(head, rows);
}

/** Calls the node for `cmd`: what to print, or why there is nothing (get of a missing key). */
async function call(client: GeokvClient, cmd: DataCommand): Promise<Output | { readonly notFound: string }> {
  switch (cmd.cmd) {
    case "put": {
      const r = await client.put(cmd.key, cmd.value);
      const json = { key: cmd.key, token: r.token, version: r.version };
      return { json, text: JSON.stringify(json) };
    }
    case "get": {
      const r = await client.get(cmd.key);
      if (r === null) return { notFound: `no value for key ${JSON.stringify(cmd.key)}` };
      const json = { key: cmd.key, value: r.value, version: r.version };
      return { json, text: JSON.stringify(json) };
    }
    case "del": {
      const r = await client.del(cmd.key);
      const json = { key: cmd.key, token: r.token };
      return { json, text: JSON.stringify(json) };
    }
    case "incr": {
      const value = await client.incr(cmd.key, cmd.delta);
      return { json: { key: cmd.key, value }, text: String(value) };
    }
    case "sadd":
    case "srem": {
      const members = cmd.cmd === "sadd" ? await client.setAdd(cmd.key, cmd.members) : await client.setRemove(cmd.key, cmd.members);
      return { json: { key: cmd.key, members }, text: membersText(members) };
    }
    case "smembers": {
      const members = await client.members(cmd.key);
      return { json: { key: cmd.key, members }, text: membersText(members) };
    }
    case "doc": {
      const update = await client.docGet(cmd.key);
      const content = docContent(update);
      return { json: { key: cmd.key, update: Buffer.from(update).toString("base64"), content }, text: JSON.stringify(content, null, 2) };
    }
    case "conflicts": {
      const items = await client.conflicts(cmd.limit);
      return { json: { items }, text: conflictsText(items) };
    }
    default: {
      const never: never = cmd;
      throw new Error(`unhandled data command ${JSON.stringify(never)}`);
    }
  }
}

/** Prints a failure on stderr: one line, or the contract's error shape with --json. */
export function printFailure(json: boolean, e: { readonly code: string; readonly message: string; readonly status: number | null; readonly node: string | null }, line: string): void {
  if (json) process.stderr.write(`${JSON.stringify({ error: { code: e.code, message: e.message, status: e.status, node: e.node } })}\n`);
  else process.stderr.write(`geokv: ${line}\n`);
}

/** Runs one data command through the SDK; returns the process exit code. */
export async function runDataCommand(cmd: DataCommand, loadCluster: () => ClusterConfig | ConfigError, trust?: Trust): Promise<number> {
  const nodes = pickNodes(cmd, loadCluster);
  if (nodes.length === 0) {
    process.stderr.write("geokv: no node to talk to: pass --node URL or set GEOKV_NODE\n");
    return 2;
  }
  const token = process.env.GEOKV_CLIENT_TOKEN;
  const client = createClient({ nodes, timeoutMs: CLI_TIMEOUT_MS, ...(token ? { token } : {}), ...(trust?.ca ? { ca: trust.ca } : {}) });
  const json = cmd.json === true;
  try {
    const out = await call(client, cmd);
    if ("notFound" in out) {
      printFailure(json, { code: "not_found", message: out.notFound, status: 404, node: null }, `404 not_found: ${out.notFound}`);
      return 1;
    }
    process.stdout.write(json ? `${JSON.stringify(out.json)}\n` : out.text === "" ? "" : `${out.text}\n`);
    return 0;
  } catch (err) {
    if (!isGeokvError(err)) throw err;
    const shown = err.code === "unavailable" && err.cause ? err.cause : err;
    printFailure(json, shown, describeFailure(err, nodes));
    return 1;
  } finally {
    client.close();
  }
}
