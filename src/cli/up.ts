// `geokv up`: every node of the configuration as a child process of this one,
// a table of their URLs, and a clean stop of all of them on Ctrl-C or SIGTERM
// (children get SIGTERM, then SIGKILL after a grace period; none is orphaned).

import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ClusterConfig } from "../node/config.js";
import type { CliCommand } from "./args.js";

const STOP_GRACE_MS = 5000;

/** Starts every node; returns when all have exited after a stop signal. */
export async function runUp(cmd: Extract<CliCommand, { cmd: "up" }>, cluster: ClusterConfig): Promise<void> {
  const main = fileURLToPath(new URL("./main.js", import.meta.url));
  const regionsDir = resolve(cmd.regions);
  const dataDir = resolve(cmd.data);
  const flagArgs = Object.entries(cmd.flags).flatMap(([k, v]) => [`--${k}`, v]);
  const children = new Map<string, ChildProcess>();
  let stopping = false;

  for (const node of cluster.nodes.values()) {
    const child = spawn(process.execPath, [...process.execArgv, main, "node", "--node", node.id, "--regions", regionsDir, "--data", dataDir, ...flagArgs], {
      stdio: ["ignore", "inherit", "inherit"],
      env: process.env,
    });
    children.set(node.id, child);
    child.on("exit", (code, signal) => {
      children.delete(node.id);
      if (!stopping) process.stderr.write(`geokv up: node ${node.id} exited (${signal ?? `code ${code}`})\n`);
    });
  }

  const rows = [...cluster.nodes.values()].map((n) => `  ${n.region.padEnd(12)} ${n.id.padEnd(14)} ${n.url}`);
  process.stdout.write(`geokv: ${cluster.nodes.size} nodes in ${cluster.regions.length} regions (data in ${dataDir})\n  ${"REGION".padEnd(12)} ${"NODE".padEnd(14)} URL\n${rows.join("\n")}\nCtrl-C stops them all.\n`);

  await new Promise<void>((done) => {
    const stop = () => {
      if (stopping) return;
      stopping = true;
      for (const c of children.values()) c.kill("SIGTERM");
      const hard = setTimeout(() => {
        for (const c of children.values()) c.kill("SIGKILL");
      }, STOP_GRACE_MS);
      const check = setInterval(() => {
        if (children.size > 0) return;
        clearInterval(check);
        clearTimeout(hard);
        done();
      }, 20);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
