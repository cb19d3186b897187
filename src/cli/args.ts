// The `geokv` command line (DESIGN.md, "CLI") parsed into a discriminated
// union, with no I/O and no process access, so every command, default and
// mistake is testable as data and the entry point only has to switch on `cmd`.
// Mistakes are values ({cmd: "error"}) that name the flag or argument at fault.

import { parseArgs } from "node:util";
import { isValidId, type NodeId } from "../core/ids.js";
import { DEFAULT_SETTINGS, NUMERIC_SETTINGS, SETTINGS_FLAGS, SYNC_SETTING, TOKENS_SETTING } from "../node/settings.js";
import { PEER_MTLS_SETTING, TLS_FILE_FLAGS, tlsHelp } from "../node/tls-settings.js";
import { checkKey, checkNodeUrl } from "./arg-checks.js";
import { parseSnapshot, SNAPSHOT_OPTIONS, SNAPSHOT_OVERVIEW, snapshotHelp, type SnapshotCommand } from "./snapshot-args.js";
import { parseToken, TOKEN_HELP, TOKEN_OPTIONS, TOKEN_OVERVIEW, type TokenCommand } from "./token-args.js";
import { argsForParse, CA_FLAG, EXIT_CODES, isRemoteTopic, parseRemote, REMOTE_OPTIONS, REMOTE_OVERVIEW, REMOTE_TOPICS, remoteHelp, type RemoteCommand, type RemoteTopic } from "./remote-args.js";

/** Any value JSON can carry; what `geokv put` stores. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Subcommands that have their own help text. */
export type HelpTopic = "up" | "node" | "status" | "put" | "get" | "del" | "snapshot" | "token" | RemoteTopic;
const TOPICS: readonly HelpTopic[] = ["up", "node", "status", "put", "get", "del", ...REMOTE_TOPICS, "snapshot", "token"];

/** Where a node listens when it must not listen on its URL's address (containers). */
export interface ListenAddress {
  /** Without IPv6 brackets: "0.0.0.0", "::". */
  readonly host: string;
  readonly port: number;
}

/** Setting flags as given ("heartbeat-ms" → "50"), for resolveSettings to check along with the environment. */
export type SettingFlags = Record<string, string>;

/** What the command line asks for. */
export type CliCommand =
  | { readonly cmd: "up"; readonly regions: string; readonly data: string; readonly flags: SettingFlags; readonly verbose?: true }
  | {
      readonly cmd: "node";
      readonly node: NodeId;
      readonly regions: string;
      readonly data: string;
      readonly listen?: ListenAddress;
      readonly flags: SettingFlags;
    }
  | { readonly cmd: "status"; readonly regions: string; readonly ca?: string }
  | { readonly cmd: "put"; readonly key: string; readonly value: JsonValue; readonly node?: string; readonly ca?: string; readonly json?: true }
  | { readonly cmd: "get"; readonly key: string; readonly node?: string; readonly ca?: string; readonly json?: true }
  | { readonly cmd: "del"; readonly key: string; readonly node?: string; readonly ca?: string; readonly json?: true }
  | RemoteCommand
  | SnapshotCommand
  | TokenCommand
  | { readonly cmd: "help"; readonly topic?: HelpTopic }
  | { readonly cmd: "error"; readonly message: string };

/** Relative to the working directory; the caller resolves them. */
export const DEFAULT_REGIONS_DIR = "regions";
export const DEFAULT_DATA_DIR = ".geokv";

type OptionSpec = { type: "string" } | { type: "boolean"; short?: string };
const help: Record<string, OptionSpec> = { help: { type: "boolean", short: "h" } };
const str: OptionSpec = { type: "string" };
const settingOptions: Record<string, OptionSpec> = Object.fromEntries(SETTINGS_FLAGS.map((f) => [f, str]));
const tlsOptions: Record<string, OptionSpec> = { ...Object.fromEntries(TLS_FILE_FLAGS.map((f) => [f, str])), [PEER_MTLS_SETTING.flag]: { type: "boolean" } };

const OPTIONS: Record<HelpTopic, Record<string, OptionSpec>> = {
  up: { ...help, regions: str, data: str, verbose: { type: "boolean" }, ...settingOptions },
  node: { ...help, node: str, regions: str, data: str, listen: str, ...settingOptions, ...tlsOptions },
  status: { ...help, regions: str, ca: str },
  // These always print JSON; --json also makes their errors JSON, as on the other data commands.
  put: { ...help, node: str, ca: str, json: { type: "boolean" } },
  get: { ...help, node: str, ca: str, json: { type: "boolean" } },
  del: { ...help, node: str, ca: str, json: { type: "boolean" } },
  ...REMOTE_OPTIONS,
  snapshot: SNAPSHOT_OPTIONS,
  token: TOKEN_OPTIONS,
};

function isTopic(s: string | undefined): s is HelpTopic {
  return TOPICS.some((t) => t === s);
}

function fail(message: string): CliCommand {
  return { cmd: "error", message };
}

/** `--listen` value to address, or a problem description. */
export function parseListen(raw: string): ListenAddress | string {
  const bracketed = /^\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]:(\d{1,5})$/.exec(raw);
  const plain = /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw);
  const m = bracketed ?? plain;
  const host = m?.[1];
  const portText = m?.[2];
  if (host === undefined || portText === undefined) {
    return `--listen must be HOST:PORT (0.0.0.0:7101, [::]:7101), got ${JSON.stringify(raw)}`;
  }
  const port = Number(portText);
  if (port < 1 || port > 65535) return `--listen port must be 1 to 65535, got ${portText}`;
  return { host, port };
}

/** VALUE is JSON when it parses as JSON (`42`, `{"a":1}`, `"x"`), else the text itself as a string. */
export function parsePutValue(raw: string): JsonValue {
  try {
    return JSON.parse(raw) as JsonValue;
  } catch {
    return raw;
  }
}

/** node:util parseArgs throws on misuse; turn that into one line naming the flag. */
function describeParseError(e: unknown, topic: HelpTopic): string {
  const code = (e as { code?: unknown }).code;
  const message = e instanceof Error ? e.message : String(e);
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const flag = /'(-[^']*)'/.exec(message)?.[1] ?? "?";
    return `unknown flag ${flag} for 'geokv ${topic}' (see geokv ${topic} --help)`;
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    const flag = /(--[A-Za-z0-9-]+)/.exec(message)?.[1] ?? "a flag";
    if (/does not take an argument/.test(message)) return `${flag} takes no value`;
    return `${flag} needs a value`;
  }
  return message;
}

/** True when a help flag appears among the flags (not after `--`, where it is data). */
function asksForHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === "--") return false;
    if (a === "--help" || a === "-h") return true;
  }
  return false;
}

/** Parses `geokv` arguments (without the node and script paths) into a command. */
export function parseCli(argv: readonly string[]): CliCommand {
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h") {
    return isTopic(rest[0]) ? { cmd: "help", topic: rest[0] } : { cmd: "help" };
  }
  if (first === "help") {
    if (rest.length === 0) return { cmd: "help" };
    if (rest.length > 1) return fail(`help takes one topic, got ${rest.length}`);
    return isTopic(rest[0]) ? { cmd: "help", topic: rest[0] } : fail(`no help topic ${JSON.stringify(rest[0])}; topics: ${TOPICS.join(", ")}`);
  }
  if (!isTopic(first)) {
    if (first.startsWith("-")) return fail(`unknown flag ${first}; the command comes first (geokv COMMAND [flags])`);
    return fail(`unknown command ${JSON.stringify(first)}; commands: ${TOPICS.join(", ")}, help`);
  }
  if (asksForHelp(rest)) return { cmd: "help", topic: first };

  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    const args = first === "incr" ? argsForParse(first, rest) : rest;
    ({ values, positionals } = parseArgs({ args: [...args], options: OPTIONS[first], allowPositionals: true, strict: true }));
  } catch (e) {
    return fail(describeParseError(e, first));
  }
  const text = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === "string" ? v : undefined;
  };
  // `--regions=` parses as an empty string; an empty path is never meant.
  for (const [name, v] of Object.entries(values)) {
    if (v === "") return fail(`--${name} needs a value`);
  }

  if (isRemoteTopic(first)) return parseRemote(first, values, positionals);
  switch (first) {
    case "up":
    case "node": {
      if (positionals.length > 0) return fail(`unexpected argument ${JSON.stringify(positionals[0])} for 'geokv ${first}'`);
      const regions = text("regions") ?? DEFAULT_REGIONS_DIR;
      const data = text("data") ?? DEFAULT_DATA_DIR;
      const flags: SettingFlags = {};
      for (const f of SETTINGS_FLAGS) {
        const v = text(f);
        if (v !== undefined) flags[f] = v;
      }
      if (first === "up") return { cmd: "up", regions, data, flags, ...(values.verbose === true ? { verbose: true as const } : {}) };
      // TLS is per node (each has its own certificate), so only `geokv node` takes it.
      for (const f of TLS_FILE_FLAGS) {
        const v = text(f);
        if (v !== undefined) flags[f] = v;
      }
      if (values[PEER_MTLS_SETTING.flag] === true) flags[PEER_MTLS_SETTING.flag] = "true";
      const node = text("node");
      if (node === undefined) return fail("geokv node needs --node ID");
      if (!isValidId(node)) return fail(`--node ${JSON.stringify(node)} is not a valid node id`);
      const listenRaw = text("listen");
      if (listenRaw === undefined) return { cmd: "node", node: node as NodeId, regions, data, flags };
      const listen = parseListen(listenRaw);
      if (typeof listen === "string") return fail(listen);
      return { cmd: "node", node: node as NodeId, regions, data, listen, flags };
    }
    case "snapshot":
      return parseSnapshot(values, positionals, DEFAULT_DATA_DIR);
    case "token":
      return parseToken(positionals);
    case "status":
      if (positionals.length > 0) return fail(`unexpected argument ${JSON.stringify(positionals[0])} for 'geokv status'`);
      return { cmd: "status", regions: text("regions") ?? DEFAULT_REGIONS_DIR, ...(text("ca") === undefined ? {} : { ca: text("ca") as string }) };
    case "put":
    case "get":
    case "del": {
      const wanted = first === "put" ? 2 : 1;
      const usage = first === "put" ? "KEY VALUE" : "KEY";
      if (positionals.length < wanted) return fail(`geokv ${first} needs ${usage}`);
      if (positionals.length > wanted) return fail(`unexpected argument ${JSON.stringify(positionals[wanted])} for 'geokv ${first}' (quote a VALUE with spaces)`);
      const key = positionals[0] ?? "";
      const keyProblem = checkKey(key);
      if (keyProblem !== undefined) return fail(keyProblem);
      const node = text("node");
      if (node !== undefined) {
        const urlProblem = checkNodeUrl(node);
        if (urlProblem !== undefined) return fail(urlProblem);
      }
      const ca = text("ca");
      const target = { ...(node === undefined ? {} : { node }), ...(ca === undefined ? {} : { ca }), ...(values.json === true ? { json: true as const } : {}) };
      if (first === "put") return { cmd: "put", key, value: parsePutValue(positionals[1] ?? ""), ...target };
      return { cmd: first, key, ...target };
    }
    default: {
      const unreachable: never = first;
      return fail(`unhandled command ${String(unreachable)}`);
    }
  }
}

function settingsHelp(): string {
  const rows = NUMERIC_SETTINGS.map(
    (s) => `  --${s.flag} N`.padEnd(32) + `${s.help} (${s.env}, default ${DEFAULT_SETTINGS[s.key]})`,
  );
  rows.push(`  --${SYNC_SETTING.flag} MODE`.padEnd(32) + `${SYNC_SETTING.help} (${SYNC_SETTING.env}, default ${DEFAULT_SETTINGS.synchronous})`);
  rows.push(`  --${TOKENS_SETTING.flag} FILE`.padEnd(32) + `${TOKENS_SETTING.help} (${TOKENS_SETTING.env}; geokv token hash)`);
  return rows.join("\n");
}

const ENV_ONLY = `Environment only:
  GEOKV_CLUSTER_SECRET          peers prove they know it (HMAC handshake); unset: no peer auth;
                                a comma-separated list rotates it: the first proves this node, any is accepted
  GEOKV_CLIENT_TOKEN            data API needs "Authorization: Bearer <token>" (read and write)
  GEOKV_READ_TOKEN              a token that only reads the data API
  GEOKV_ADMIN_TOKEN             /admin/* and /leadership/* need it
  GEOKV_LOG_LEVEL               fatal, error, warn, info, debug, trace, silent (default info)
A flag wins over its environment variable; both win over the default.`;

const COMMON_DIRS = `  --regions DIR                 folder of region files (default ${DEFAULT_REGIONS_DIR})
  --data DIR                    where node data is stored (default ${DEFAULT_DATA_DIR})`;

/** Usage text: the overview, or one subcommand's. */
export function helpText(topic?: HelpTopic): string {
  switch (topic) {
    case undefined:
      return `geokv: a multi-leader geo-replicated key-value and document store

Usage:
  geokv up [--regions DIR] [--data DIR]         every node of the cluster as child processes; prints URLs
  geokv node --node ID [--regions DIR] [--data DIR] [--listen HOST:PORT]
  geokv status [--regions DIR]                  one table: regions, leaders, epochs, lag, links
  geokv put|get|del KEY [VALUE] [--node URL]    data from the shell
${REMOTE_OVERVIEW}
${SNAPSHOT_OVERVIEW}
${TOKEN_OVERVIEW}
  geokv help [COMMAND]                          this text, or a command's (also COMMAND --help)

The commands that talk to a node take --json:
${EXIT_CODES}
`;
    case "up":
      return `Usage: geokv up [--regions DIR] [--data DIR] [--verbose] [timing flags]

Starts every node of the cluster as a child process; prints their URLs, the
dashboard URL, the leaders once elected, and one line per role change,
partition and heal. Each node's JSON log goes to DIR/logs/<node>.log under the
data folder. SIGINT, SIGTERM or SIGHUP stops every node (a second one kills
them); a node also stops when this process dies.

${COMMON_DIRS}
  --verbose                     also show every node's log here, one line per record
Timing flags (passed to every node):
${settingsHelp()}
`;
    case "node":
      return `Usage: geokv node --node ID [--regions DIR] [--data DIR] [--listen HOST:PORT] [timing flags]

Runs one node. It listens on its URL's host and port unless --listen says otherwise.

  --node ID                     this node's id, as named in its region file
${COMMON_DIRS}
  --listen HOST:PORT            listen address (0.0.0.0:7101 in a container; [::]:7101 for IPv6)
Timings and limits:
${settingsHelp()}
TLS (an https:// URL in the region file needs all three files):
${tlsHelp()}
${ENV_ONLY}
`;
    case "status":
      return `Usage: geokv status [--regions DIR] [--ca FILE]

Asks every node and prints one table: regions, leaders, epochs, lag, links.

  --regions DIR                 folder of region files (default ${DEFAULT_REGIONS_DIR})
${CA_FLAG}
`;
    case "put":
      return `Usage: geokv put KEY VALUE [--node URL] [--json]

Stores VALUE under KEY. VALUE is JSON when it parses as JSON (42, true, {"a":1},
'"quoted"'), else it is stored as a string. Put -- before a VALUE that starts with -.

  --node URL                    the node to ask (http://127.0.0.1:7101)
${CA_FLAG}
${EXIT_CODES}
`;
    case "get":
      return `Usage: geokv get KEY [--node URL] [--json]

Prints the value stored under KEY.

  --node URL                    the node to ask (http://127.0.0.1:7101)
${CA_FLAG}
${EXIT_CODES}
`;
    case "del":
      return `Usage: geokv del KEY [--node URL] [--json]

Deletes KEY.

  --node URL                    the node to ask (http://127.0.0.1:7101)
${CA_FLAG}
${EXIT_CODES}
`;
    case "snapshot":
      return snapshotHelp(DEFAULT_DATA_DIR);
    case "token":
      return TOKEN_HELP;
    default:
      return remoteHelp(topic);
  }
}
