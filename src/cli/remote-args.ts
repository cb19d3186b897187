// The commands that talk to a running cluster beyond put/get/del (counters,
// sets, docs, conflicts, stepdown, watch), parsed into data like the rest of
// args.ts: a command or an error value naming the argument at fault. Kept out
// of args.ts so that file stays about the command line as a whole.

import { checkKey, checkNodeUrl } from "./arg-checks.js";

/** What these commands ask for. `json` is present only when --json was given. */
export type RemoteCommand =
  | { readonly cmd: "incr"; readonly key: string; readonly delta: number; readonly node?: string; readonly ca?: string; readonly json?: true }
  | { readonly cmd: "sadd" | "srem"; readonly key: string; readonly members: readonly string[]; readonly node?: string; readonly ca?: string; readonly json?: true }
  | { readonly cmd: "smembers"; readonly key: string; readonly node?: string; readonly ca?: string; readonly json?: true }
  | { readonly cmd: "doc"; readonly action: "get"; readonly key: string; readonly node?: string; readonly ca?: string; readonly json?: true }
  | { readonly cmd: "conflicts"; readonly limit?: number; readonly node?: string; readonly ca?: string; readonly json?: true }
  | {
      readonly cmd: "stepdown";
      readonly region: string;
      readonly regions: string;
      readonly node?: string;
      readonly adminToken?: string;
      readonly ca?: string;
      readonly json?: true;
    }
  | { readonly cmd: "watch"; readonly regions: string; readonly intervalMs: number; readonly ca?: string };

export type RemoteTopic = "incr" | "sadd" | "srem" | "smembers" | "doc" | "conflicts" | "stepdown" | "watch";
export const REMOTE_TOPICS: readonly RemoteTopic[] = ["incr", "sadd", "srem", "smembers", "doc", "conflicts", "stepdown", "watch"];

/** True for the commands this file parses. */
export function isRemoteTopic(s: string): s is RemoteTopic {
  return REMOTE_TOPICS.some((t) => t === s);
}

type OptionSpec = { type: "string" } | { type: "boolean"; short?: string };
const str: OptionSpec = { type: "string" };
const bool: OptionSpec = { type: "boolean" };
const data: Record<string, OptionSpec> = { help: { type: "boolean", short: "h" }, node: str, json: bool, ca: str };

/** node:util parseArgs options per command. */
export const REMOTE_OPTIONS: Record<RemoteTopic, Record<string, OptionSpec>> = {
  incr: data,
  sadd: data,
  srem: data,
  smembers: data,
  doc: data,
  conflicts: { ...data, limit: str },
  stepdown: { ...data, region: str, regions: str, "admin-token": str },
  watch: { help: data.help as OptionSpec, regions: str, "interval-ms": str, ca: str },
};

/** The server's page bound for GET /conflicts (src/http/data-routes.ts). */
const CONFLICTS_LIMIT_MAX = 1000;
const WATCH_INTERVAL_MS_MIN = 100;
const WATCH_INTERVAL_MS_MAX = 60_000;
export const WATCH_INTERVAL_MS_DEFAULT = 1000;

type Failure = { readonly cmd: "error"; readonly message: string };
const fail = (message: string): Failure => ({ cmd: "error", message });

/**
 * `geokv incr k -3` must read -3 as DELTA, but parseArgs takes any "-…" for a
 * flag: a negative integer before `--` is moved behind one, in order.
 */
export function argsForParse(topic: RemoteTopic, args: readonly string[]): string[] {
  if (topic !== "incr") return [...args];
  const end = args.indexOf("--");
  const flags = end < 0 ? args : args.slice(0, end);
  const after = end < 0 ? [] : args.slice(end + 1);
  const negatives = flags.filter((a) => /^-\d+$/.test(a));
  if (negatives.length === 0) return [...args];
  return [...flags.filter((a) => !/^-\d+$/.test(a)), "--", ...negatives, ...after];
}

/** A decimal integer in [min, max], or a problem description naming `what`. */
function parseIntArg(raw: string, what: string, min: number, max: number): number | string {
  const n = /^[+-]?\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) return `${what} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`;
  return n;
}

/** Turns parsed flags and positionals of one of these commands into the command. */
export function parseRemote(topic: RemoteTopic, values: Record<string, string | boolean | undefined>, positionals: readonly string[]): RemoteCommand | Failure {
  const text = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === "string" ? v : undefined;
  };
  const extra = (at: number): Failure => fail(`unexpected argument ${JSON.stringify(positionals[at])} for 'geokv ${topic}'`);
  const node = text("node");
  if (node !== undefined) {
    const problem = checkNodeUrl(node);
    if (problem !== undefined) return fail(problem);
  }
  const ca = text("ca");
  const common = { ...(node === undefined ? {} : { node }), ...(ca === undefined ? {} : { ca }), ...(values.json === true ? { json: true as const } : {}) };
  const keyAt = (at: number, usage: string): string | Failure => {
    const key = positionals[at];
    if (key === undefined) return fail(`geokv ${usage}`);
    const problem = checkKey(key);
    return problem === undefined ? key : fail(problem);
  };
  const isFailure = (x: unknown): x is Failure => typeof x === "object" && x !== null && (x as Failure).cmd === "error";

  switch (topic) {
    case "incr": {
      const key = keyAt(0, "incr needs KEY [DELTA]");
      if (isFailure(key)) return key;
      if (positionals.length > 2) return extra(2);
      const raw = positionals[1];
      const delta = raw === undefined ? 1 : parseIntArg(raw, "DELTA", -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      if (typeof delta === "string") return fail(delta);
      return { cmd: "incr", key, delta, ...common };
    }
    case "sadd":
    case "srem": {
      const key = keyAt(0, `${topic} needs KEY MEMBER...`);
      if (isFailure(key)) return key;
      const members = positionals.slice(1);
      if (members.length === 0) return fail(`geokv ${topic} needs at least one MEMBER after KEY`);
      if (members.some((m) => !m.isWellFormed())) return fail("a MEMBER is not valid UTF-8");
      return { cmd: topic, key, members, ...common };
    }
    case "smembers": {
      const key = keyAt(0, "smembers needs KEY");
      if (isFailure(key)) return key;
      if (positionals.length > 1) return extra(1);
      return { cmd: "smembers", key, ...common };
    }
    case "doc": {
      const action = positionals[0];
      if (action === undefined) return fail("geokv doc needs an action: doc get KEY");
      if (action !== "get") return fail(`unknown action ${JSON.stringify(action)} for 'geokv doc'; actions: get`);
      const key = keyAt(1, "doc get needs KEY");
      if (isFailure(key)) return key;
      if (positionals.length > 2) return extra(2);
      return { cmd: "doc", action, key, ...common };
    }
    case "conflicts": {
      if (positionals.length > 0) return extra(0);
      const raw = text("limit");
      if (raw === undefined) return { cmd: "conflicts", ...common };
      const limit = parseIntArg(raw, "--limit", 1, CONFLICTS_LIMIT_MAX);
      if (typeof limit === "string") return fail(limit);
      return { cmd: "conflicts", limit, ...common };
    }
    case "stepdown": {
      if (positionals.length > 0) return extra(0);
      const region = text("region");
      if (region === undefined) return fail("geokv stepdown needs --region R");
      const adminToken = text("admin-token");
      return { cmd: "stepdown", region, regions: text("regions") ?? "regions", ...(adminToken === undefined ? {} : { adminToken }), ...common };
    }
    case "watch": {
      if (positionals.length > 0) return extra(0);
      const raw = text("interval-ms");
      const intervalMs = raw === undefined ? WATCH_INTERVAL_MS_DEFAULT : parseIntArg(raw, "--interval-ms", WATCH_INTERVAL_MS_MIN, WATCH_INTERVAL_MS_MAX);
      if (typeof intervalMs === "string") return fail(intervalMs);
      return { cmd: "watch", regions: text("regions") ?? "regions", intervalMs, ...(ca === undefined ? {} : { ca }) };
    }
    default: {
      const unreachable: never = topic;
      return fail(`unhandled command ${String(unreachable)}`);
    }
  }
}

/** The overview's lines for these commands. */
export const REMOTE_OVERVIEW = `  geokv incr KEY [DELTA] [--node URL]          add DELTA (default 1, may be negative) to a counter
  geokv sadd|srem KEY MEMBER... [--node URL]    add or remove set members
  geokv smembers KEY [--node URL]               a set's members
  geokv doc get KEY [--node URL]                a Yjs document's content as JSON
  geokv conflicts [--limit N] [--node URL]      recorded kv conflicts, newest first
  geokv stepdown --region R [--admin-token T]   the region's leader hands over to another node
  geokv watch [--regions DIR]                   the status table, live (Ctrl-C to stop)`;

/** The --ca line of every help text of a command that talks to a node. */
export const CA_FLAG = `  --ca FILE                     trust this CA (PEM) for https:// nodes (default GEOKV_CA)`;

/** Exit codes and --json, shown in every help text of a command that talks to a node. */
export const EXIT_CODES = `  --json                        machine output for scripts (errors as {"error": {...}} on stderr)
Exit codes: 0 ok, 1 error from the node (its code and message are printed), 2 usage error.`;

const NODE_FLAG = `  --node URL                    the node to ask (default GEOKV_NODE, else the first region in ./regions)
${CA_FLAG}`;

/** Usage text of one of these commands. */
export function remoteHelp(topic: RemoteTopic): string {
  switch (topic) {
    case "incr":
      return `Usage: geokv incr KEY [DELTA] [--node URL] [--json]

Adds DELTA (an integer, default 1; negative to subtract) to the counter KEY and
prints its new value.

${NODE_FLAG}
${EXIT_CODES}
`;
    case "sadd":
    case "srem":
      return `Usage: geokv ${topic} KEY MEMBER... [--node URL] [--json]

${topic === "sadd" ? "Adds the MEMBERs to" : "Removes the MEMBERs (as this node has seen them) from"} the set KEY and prints its
members afterwards, one per line. Put -- before a MEMBER that starts with -.

${NODE_FLAG}
${EXIT_CODES}
`;
    case "smembers":
      return `Usage: geokv smembers KEY [--node URL] [--json]

Prints the members of the set KEY, sorted, one per line.

${NODE_FLAG}
${EXIT_CODES}
`;
    case "doc":
      return `Usage: geokv doc get KEY [--node URL] [--json]

Prints the Yjs document KEY: each shared type by name, as JSON (text as a
string, maps as objects, arrays as arrays, XML as its string form). With
--json: {"key", "update": base64 of the whole Yjs update, "content"}.

${NODE_FLAG}
${EXIT_CODES}
`;
    case "conflicts":
      return `Usage: geokv conflicts [--limit N] [--node URL] [--json]

Prints the recorded kv conflicts, newest first: the key, the winning and the
losing version, and when.

  --limit N                     at most N (1 to ${CONFLICTS_LIMIT_MAX}, default 100)
${NODE_FLAG}
${EXIT_CODES}
`;
    case "stepdown":
      return `Usage: geokv stepdown --region R [--regions DIR] [--node URL] [--admin-token T] [--json]

Asks region R's leader to step down so that another node is elected. The
leader is found through /status of R's nodes in the region files (or of
--node URL, when that node is in R; a follower forwards to its leader).

  --region R                    the region whose leader steps down
  --regions DIR                 folder of region files (default regions)
  --node URL                    a node of region R to ask
  --admin-token T               the admin token (default GEOKV_ADMIN_TOKEN)
${CA_FLAG}
${EXIT_CODES}
`;
    case "watch":
      return `Usage: geokv watch [--regions DIR] [--interval-ms N]

Asks every node of the region files for /status and redraws the status table
every second until Ctrl-C (exit 0). When stdout is not a terminal it prints one
plain table per refresh instead, with no escape codes.

  --regions DIR                 folder of region files (default regions)
  --interval-ms N               time between refreshes (${WATCH_INTERVAL_MS_MIN} to ${WATCH_INTERVAL_MS_MAX}, default ${WATCH_INTERVAL_MS_DEFAULT})
${CA_FLAG}
`;
    default: {
      const unreachable: never = topic;
      return String(unreachable);
    }
  }
}
