// `geokv up` (what `npm start` runs): every node of the configuration as a
// child process of this one. The terminal gets what a person needs: a table
// of regions, nodes and URLs, the dashboard URL, the leaders once elected
// with the time it took, and one line per role change, partition and heal
// (up-view.ts, from polling every node's /status). The nodes' JSON logs go to
// <data dir>/logs/<node>.log (.geokv/logs/ by default), shown here too with
// --verbose (up-logs.ts). SIGINT, SIGTERM and SIGHUP stop every child
// (SIGTERM, then SIGKILL after a grace period, or at once on a second
// signal); a child also stops when this process dies (the IPC channel's
// "disconnect", see runNode in main.ts), so nothing is left running.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ClusterConfig, ClusterNode } from "../node/config.js";
import type { CliCommand } from "./args.js";
import { clockTime, LogTail, prettyLine, roleRecordOf, type LogLine } from "./up-logs.js";
import { allLeadersElected, describeCuts, leadersLine, linkEvent, parseStatusSample, roleEvents, viewOf, type ClusterView, type RoleRecord, type StatusSample } from "./up-view.js";

/** SIGTERM to SIGKILL: a node lets in-flight writes commit and closes its database in well under this. */
const STOP_GRACE_MS = 5000;
/** /status polling while the first leaders are being elected: it sets how exact the start-up time is. */
const POLL_STARTING_MS = 100;
/** /status polling afterwards: role changes and partitions show within about this. */
const POLL_RUNNING_MS = 250;
/** A node that does not answer /status in this long counts as not answering this round. */
const STATUS_TIMEOUT_MS = 1000;
/** How often the logs are read for --verbose. */
const TAIL_MS = 100;
/** Link events start once every region reaches every other; past this, from whatever the state is. */
const LINKS_SETTLE_MS = 15_000;

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

async function statusOf(node: ClusterNode): Promise<StatusSample | null> {
  try {
    const res = await fetch(`${node.url}/status`, { signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
    return parseStatusSample(await res.json());
  } catch {
    return null;
  }
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (r: readonly string[]) => `  ${r.map((x, c) => x.padEnd(widths[c] ?? 0)).join("  ")}`.trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

/** Starts every node; returns when all have exited after a stop signal (exits 1 if they all died on their own). */
export async function runUp(cmd: Extract<CliCommand, { cmd: "up" }>, cluster: ClusterConfig): Promise<void> {
  const main = fileURLToPath(new URL("./main.js", import.meta.url));
  const regionsDir = resolve(cmd.regions);
  const dataDir = resolve(cmd.data);
  const logsDir = join(dataDir, "logs");
  mkdirSync(logsDir, { recursive: true });
  const flagArgs = Object.entries(cmd.flags).flatMap(([k, v]) => [`--${k}`, v]);
  const nodes = [...cluster.nodes.values()];
  const nodeWidth = Math.max(...nodes.map((n) => n.id.length));
  const logPath = (id: string) => join(logsDir, `${id}.log`);
  // Paths under the working directory are shown relative to it: shorter, and what a user typed.
  const shownPath = (p: string) => {
    const r = relative(process.cwd(), p);
    return r.startsWith("..") ? p : r === "" ? "." : r;
  };

  // A closed terminal or a reader that went away must not crash the command
  // that is responsible for stopping nine processes.
  process.stdout.on("error", () => {});
  const say = (text: string) => process.stdout.write(`${text}\n`);
  const event = (text: string) => say(`${clockTime(Date.now())} ${text}`);

  const children = new Map<string, ChildProcess>();
  const tails = new Map<string, LogTail>();
  const roles = new Map<string, RoleRecord>();
  const lastLine = new Map<string, string>();
  let stopping = false;

  const drainLogs = () => {
    for (const tail of tails.values()) {
      for (const line of tail.drain()) noteLine(line);
    }
  };
  const noteLine = (line: LogLine) => {
    const role = roleRecordOf(line);
    if (role) roles.set(line.node, role);
    lastLine.set(line.node, "text" in line ? line.text : String(line.record.msg ?? ""));
    if (cmd.verbose) say(prettyLine(line, nodeWidth));
  };

  let allExited: () => void = () => {};
  const exitedAll = new Promise<void>((r) => (allExited = r));
  for (const node of nodes) {
    // The log file is the child's stdout and stderr itself (see up-logs.ts).
    const fd = openSync(logPath(node.id), "a");
    tails.set(node.id, new LogTail(node.id, logPath(node.id)));
    const child = spawn(process.execPath, [...process.execArgv, main, "node", "--node", node.id, "--regions", regionsDir, "--data", dataDir, ...flagArgs], {
      // "ipc": only for the child's parent-death check.
      stdio: ["ignore", fd, fd, "ipc"],
      env: process.env,
    });
    closeSync(fd);
    children.set(node.id, child);
    child.on("exit", (code, signal) => {
      children.delete(node.id);
      if (!stopping) {
        drainLogs();
        const last = lastLine.get(node.id);
        event(`node ${node.id} exited (${signal ?? `code ${code}`})${last ? `: ${last}` : ""}; its log: ${shownPath(logPath(node.id))}`);
      }
      if (children.size === 0) allExited();
    });
  }

  const rows = nodes.map((n) => [n.region, n.id, n.url, shownPath(logPath(n.id))]);
  const first = nodes[0];
  say(`geokv up: ${nodes.length} nodes in ${cluster.regions.length} regions, data in ${shownPath(dataDir)}`);
  say(table(["REGION", "NODE", "URL", "LOG"], rows));
  if (first) say(`Dashboard: ${first.url}/`);
  say(`${cmd.verbose ? "Logs are shown below; " : "Logs: --verbose shows them here; "}Ctrl-C stops every node.`);

  let view: ClusterView | null = null;
  let elected = false;
  let linksWatched = false;
  const observe = (next: ClusterView) => {
    const before = view;
    view = next;
    if (!elected) {
      if (!allLeadersElected(cluster, next)) return;
      elected = true;
      event(leadersLine(cluster, next, performance.now()));
    } else if (before) {
      for (const e of roleEvents(cluster, before, next, roles)) event(e);
    }
    if (!linksWatched) {
      // At start-up links come up one by one: no event until they all have
      // (or long after, from whatever the state then is).
      const allLive = cluster.regions.every((r) => r.nodes.some((n) => next.answering.has(n.id)));
      const settled = allLive && next.cuts.size === 0;
      if (!settled && performance.now() < LINKS_SETTLE_MS) return;
      linksWatched = true;
      if (!settled) event(describeCuts(cluster, next.cuts));
    } else if (before) {
      const e = linkEvent(cluster, before.cuts, next.cuts);
      if (e) event(e);
    }
  };

  let pollTimer: NodeJS.Timeout | undefined;
  const poll = async () => {
    const samples = new Map(await Promise.all(nodes.map(async (n) => [n.id, await statusOf(n)] as const)));
    if (stopping) return;
    // After the answers, so a role change they show has its log line read.
    drainLogs();
    observe(viewOf(cluster, samples));
    pollTimer = setTimeout(() => void poll(), elected ? POLL_RUNNING_MS : POLL_STARTING_MS);
  };
  void poll();
  const tailTimer = cmd.verbose ? setInterval(drainLogs, TAIL_MS) : undefined;

  let hardKill: NodeJS.Timeout | undefined;
  const stop = (signal: string) => {
    if (stopping) {
      event(`${signal} again: killing ${children.size} node${children.size === 1 ? "" : "s"}`);
      for (const c of children.values()) c.kill("SIGKILL");
      return;
    }
    stopping = true;
    clearTimeout(pollTimer);
    event(`${signal}: stopping ${children.size} node${children.size === 1 ? "" : "s"}`);
    for (const c of children.values()) c.kill("SIGTERM");
    hardKill = setTimeout(() => {
      for (const c of children.values()) c.kill("SIGKILL");
    }, STOP_GRACE_MS);
  };
  for (const s of SIGNALS) process.on(s, () => stop(s));

  if (children.size > 0) await exitedAll;
  clearTimeout(hardKill);
  clearTimeout(pollTimer);
  clearInterval(tailTimer);
  drainLogs();
  for (const t of tails.values()) t.close();
  if (stopping) {
    event("every node stopped");
    process.exit(0);
  }
  event(`every node exited; see the logs in ${shownPath(logsDir)}`);
  process.exit(1);
}
