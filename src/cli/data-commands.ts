// `geokv put|get|del`: data calls from the shell, through the SDK so the shell
// gets the same retries, idempotent writes and leader handling as programs.
// They ask --node URL, else GEOKV_NODE, else every node of the first region
// in ./regions, and print the JSON answer; an error prints its code and
// message and exits 1.

import { createClient, isGeokvError, type GeokvError } from "../client/index.js";
import { isConfigError, type ClusterConfig, type ConfigError } from "../node/config.js";
import type { CliCommand } from "./args.js";

type DataCommand = Extract<CliCommand, { cmd: "put" | "get" | "del" }>;

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

/** Runs put/get/del; returns the process exit code. */
export async function runDataCommand(cmd: DataCommand, loadCluster: () => ClusterConfig | ConfigError): Promise<number> {
  const nodes = pickNodes(cmd, loadCluster);
  if (nodes.length === 0) {
    process.stderr.write("geokv: no node to talk to: pass --node URL or set GEOKV_NODE\n");
    return 2;
  }
  const token = process.env.GEOKV_CLIENT_TOKEN;
  const client = createClient({ nodes, timeoutMs: CLI_TIMEOUT_MS, ...(token ? { token } : {}) });
  try {
    let answer: unknown;
    switch (cmd.cmd) {
      case "put": {
        const r = await client.put(cmd.key, cmd.value);
        answer = { key: cmd.key, token: r.token, version: r.version };
        break;
      }
      case "get": {
        const r = await client.get(cmd.key);
        if (r === null) {
          process.stderr.write(`geokv: 404 not_found: no value for key ${JSON.stringify(cmd.key)}\n`);
          return 1;
        }
        answer = { key: cmd.key, value: r.value, version: r.version };
        break;
      }
      case "del": {
        const r = await client.del(cmd.key);
        answer = { key: cmd.key, token: r.token };
        break;
      }
      default: {
        const never: never = cmd;
        throw new Error(`unhandled data command ${JSON.stringify(never)}`);
      }
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
    return 0;
  } catch (err) {
    if (!isGeokvError(err)) throw err;
    process.stderr.write(`geokv: ${describeFailure(err, nodes)}\n`);
    return 1;
  } finally {
    client.close();
  }
}
