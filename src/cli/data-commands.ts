// `geokv put|get|del`: data calls from the shell. They talk HTTP to one node
// (--node URL, else GEOKV_NODE, else the first node of ./regions) and print
// the JSON answer; an error answer prints its code and message and exits 1.

import { isConfigError, type ClusterConfig, type ConfigError } from "../node/config.js";
import type { CliCommand } from "./args.js";

type DataCommand = Extract<CliCommand, { cmd: "put" | "get" | "del" }>;

function pickNode(cmd: DataCommand, loadCluster: () => ClusterConfig | ConfigError): string | null {
  if (cmd.node !== undefined) return cmd.node;
  if (process.env.GEOKV_NODE) return process.env.GEOKV_NODE;
  const cluster = loadCluster();
  if (isConfigError(cluster)) return null;
  return cluster.regions[0]?.nodes[0]?.url ?? null;
}

/** Runs put/get/del; returns the process exit code. */
export async function runDataCommand(cmd: DataCommand, loadCluster: () => ClusterConfig | ConfigError): Promise<number> {
  const base = pickNode(cmd, loadCluster);
  if (base === null) {
    process.stderr.write("geokv: no node to talk to: pass --node URL or set GEOKV_NODE\n");
    return 2;
  }
  const url = `${base.replace(/\/+$/, "")}/kv/${encodeURIComponent(cmd.key)}`;
  const headers: Record<string, string> = {};
  if (process.env.GEOKV_CLIENT_TOKEN) headers.authorization = `Bearer ${process.env.GEOKV_CLIENT_TOKEN}`;
  const init: RequestInit =
    cmd.cmd === "put"
      ? { method: "PUT", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(cmd.value) }
      : { method: cmd.cmd === "get" ? "GET" : "DELETE", headers };
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    process.stderr.write(`geokv: cannot reach ${base}: ${(err as Error).message}\n`);
    return 1;
  }
  const text = await res.text();
  if (!res.ok) {
    let msg = text;
    try {
      const e = JSON.parse(text) as { error?: { code?: string; message?: string } };
      if (e.error) msg = `${e.error.code}: ${e.error.message}`;
    } catch {
      // Not our error shape (a proxy?): print it as it came.
    }
    process.stderr.write(`geokv: ${res.status} ${msg}\n`);
    return 1;
  }
  process.stdout.write(`${text}\n`);
  return 0;
}
