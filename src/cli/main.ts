#!/usr/bin/env node
// The `geokv` command. Parses arguments (args.ts), then runs one command:
// a node, a whole local cluster, a status table (once or live), a data call,
// a leader stepdown, a backup made or restored, or a token hashed for the tokens file. Errors a user can fix are printed as one line and
// exit 2; nothing prints a stack.

import { resolve } from "node:path";
import { isConfigError, formatConfigError, loadCluster, type ClusterConfig } from "../node/config.js";
import { formatSettingsError, isSettingsError, resolveSettings } from "../node/settings.js";
import { checkTlsForCluster, resolveTls } from "../node/tls-settings.js";
import { createHttpsFetch } from "../client/https-fetch.js";
import { helpText, parseCli, type CliCommand } from "./args.js";
import { runDataCommand } from "./data-commands.js";
import { watchParentDeath } from "./parent-death.js";
import { loadTrust, type Trust } from "./ca.js";
import { applyHeapFlags } from "./heap-flags.js";

function fail(message: string, code = 2): never {
  process.stderr.write(`geokv: ${message}\n`);
  process.exit(code);
}

function loadClusterOrFail(dir: string): ClusterConfig {
  const cluster = loadCluster(resolve(dir));
  if (isConfigError(cluster)) fail(`bad configuration: ${formatConfigError(cluster)}`);
  return cluster;
}

/** The CA a command trusts (--ca FILE or GEOKV_CA); a file that cannot be read is a usage error. */
function trustFromCaFlag(cmd: { readonly ca?: string }): Trust {
  const trust = loadTrust(cmd.ca, process.env);
  if (typeof trust === "string") fail(trust);
  return trust;
}

async function runNode(cmd: Extract<CliCommand, { cmd: "node" }>): Promise<void> {
  // Before the first await: `geokv up` may die while this node starts.
  const onParentDeath = watchParentDeath();
  applyHeapFlags();
  const cluster = loadClusterOrFail(cmd.regions);
  if (!cluster.nodes.has(cmd.node)) fail(`node ${cmd.node} is not in the configuration at ${resolve(cmd.regions)}`);
  const settings = resolveSettings(cmd.flags, process.env);
  if (isSettingsError(settings)) fail(`bad setting: ${formatSettingsError(settings)}`);
  const tls = resolveTls(cmd.flags, process.env);
  if (isSettingsError(tls)) fail(`bad setting: ${formatSettingsError(tls)}`);
  const tlsMismatch = checkTlsForCluster(cluster, cmd.node, tls);
  if (isSettingsError(tlsMismatch)) fail(`bad setting: ${formatSettingsError(tlsMismatch)}`);
  if (isConfigError(tlsMismatch)) fail(`bad configuration: ${formatConfigError(tlsMismatch)}`);
  const { startNode } = await import("../server.js");
  let node;
  try {
    node = await startNode({ cluster, nodeId: cmd.node, dataDir: resolve(cmd.data), settings, listen: cmd.listen, tls, ...(tls ? { peerFetch: createHttpsFetch(tls) } : {}) });
  } catch (err) {
    fail(`node ${cmd.node} could not start: ${(err as Error).message}`, 1);
  }
  let stopping = false;
  const stop = (cause: string) => {
    // A signal and the parent's death can both arrive; one shutdown is enough.
    if (stopping) return;
    stopping = true;
    node.logger.info({ cause }, "shutting down");
    node.close().then(
      () => process.exit(0),
      (err: unknown) => {
        node.logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  onParentDeath(() => stop("parent exited"));
}

async function main(argv: readonly string[]): Promise<void> {
  const cmd = parseCli(argv);
  switch (cmd.cmd) {
    case "help":
      process.stdout.write(`${helpText(cmd.topic)}\n`);
      return;
    case "error":
      // One line: the message already points at help when it names a command's flag.
      fail(/--help/.test(cmd.message) ? cmd.message : `${cmd.message} (see geokv --help)`);
      break;
    case "node":
      return runNode(cmd);
    case "up": {
      const { runUp } = await import("./up.js");
      return runUp(cmd, loadClusterOrFail(cmd.regions));
    }
    case "status": {
      const { runStatus } = await import("./status.js");
      return runStatus(loadClusterOrFail(cmd.regions), trustFromCaFlag(cmd).fetch);
    }
    case "put":
    case "get":
    case "del":
    case "incr":
    case "sadd":
    case "srem":
    case "smembers":
    case "doc":
    case "conflicts":
      process.exitCode = await runDataCommand(cmd, () => loadCluster(resolve("regions")), trustFromCaFlag(cmd));
      return;
    case "stepdown": {
      const { runStepdown } = await import("./stepdown.js");
      process.exitCode = await runStepdown(cmd, (dir) => loadCluster(resolve(dir)), trustFromCaFlag(cmd).fetch);
      return;
    }
    case "snapshot": {
      const { runSnapshot } = await import("./snapshot.js");
      process.exitCode = runSnapshot(cmd);
      return;
    }
    case "token": {
      const { runTokenHash } = await import("./token.js");
      process.exitCode = await runTokenHash(cmd);
      return;
    }
    case "watch": {
      const { runWatch } = await import("./watch.js");
      return runWatch(cmd, loadClusterOrFail(cmd.regions), trustFromCaFlag(cmd).fetch);
    }
    default: {
      const never: never = cmd;
      fail(`unknown command ${JSON.stringify(never)}`);
    }
  }
}

await main(process.argv.slice(2));
