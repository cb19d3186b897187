// `geokv watch`: the `geokv status` table, redrawn in place every interval
// until Ctrl-C. When stdout is not a terminal (a pipe, a log file, a test)
// it appends one plain table per refresh, with no escape codes.

import type { ClusterConfig } from "../node/config.js";
import type { CliCommand } from "./args.js";
import { statusTable } from "./status.js";

type WatchCommand = Extract<CliCommand, { cmd: "watch" }>;

/** Cursor home, then erase the screen. */
const CLEAR = "\x1b[H\x1b[2J";

/** Redraws until SIGINT or SIGTERM, then exits 0. */
export async function runWatch(cmd: WatchCommand, cluster: ClusterConfig, fetch: typeof globalThis.fetch = globalThis.fetch): Promise<void> {
  const tty = process.stdout.isTTY === true;
  const stop = () => process.exit(0);
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  for (;;) {
    const started = Date.now();
    const table = await statusTable(cluster, fetch);
    const head = `geokv watch  ${new Date().toISOString()}  every ${cmd.intervalMs} ms, Ctrl-C to stop`;
    process.stdout.write(tty ? `${CLEAR}${head}\n\n${table}\n` : `${head}\n${table}\n\n`);
    // A slow round (a node timing out) delays the next one instead of overlapping it.
    await new Promise((r) => setTimeout(r, Math.max(0, cmd.intervalMs - (Date.now() - started))));
  }
}
