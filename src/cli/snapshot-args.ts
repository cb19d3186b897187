// `geokv snapshot create|restore` parsed into data, like the rest of args.ts:
// the command, or an error value naming the argument at fault. Kept beside
// args.ts so that file stays about the command line as a whole.

import { isValidId, type NodeId } from "../core/ids.js";

/** What `geokv snapshot` asks for. `json` and `force` are present only when given. */
export type SnapshotCommand =
  | { readonly cmd: "snapshot"; readonly action: "create"; readonly file: string; readonly node: NodeId; readonly data: string; readonly force?: true; readonly json?: true }
  | { readonly cmd: "snapshot"; readonly action: "restore"; readonly file: string; readonly node: NodeId; readonly data: string; readonly json?: true };

type OptionSpec = { type: "string" } | { type: "boolean"; short?: string };

/** node:util parseArgs options of `geokv snapshot`. */
export const SNAPSHOT_OPTIONS: Record<string, OptionSpec> = {
  help: { type: "boolean", short: "h" },
  node: { type: "string" },
  data: { type: "string" },
  force: { type: "boolean" },
  json: { type: "boolean" },
};

type Failure = { readonly cmd: "error"; readonly message: string };
const fail = (message: string): Failure => ({ cmd: "error", message });

/** Turns the parsed flags and positionals of `geokv snapshot` into the command; `defaultData` is `geokv node`'s default. */
export function parseSnapshot(values: Record<string, string | boolean | undefined>, positionals: readonly string[], defaultData: string): SnapshotCommand | Failure {
  const [action, file, ...extra] = positionals;
  if (action === undefined) return fail("geokv snapshot needs an action: snapshot create FILE --node ID, or snapshot restore FILE --node ID");
  if (action !== "create" && action !== "restore") return fail(`unknown action ${JSON.stringify(action)} for 'geokv snapshot'; actions: create, restore`);
  if (file === undefined) return fail(`geokv snapshot ${action} needs FILE`);
  if (extra.length > 0) return fail(`unexpected argument ${JSON.stringify(extra[0])} for 'geokv snapshot ${action}'`);
  const node = values.node;
  if (typeof node !== "string") return fail(`geokv snapshot ${action} needs --node ID`);
  if (!isValidId(node)) return fail(`--node ${JSON.stringify(node)} is not a valid node id`);
  const data = typeof values.data === "string" ? values.data : defaultData;
  const json = values.json === true ? { json: true as const } : {};
  if (action === "restore") {
    if (values.force === true) return fail("--force is for snapshot create; a restore never overwrites a node's data");
    return { cmd: "snapshot", action, file, node: node as NodeId, data, ...json };
  }
  return { cmd: "snapshot", action, file, node: node as NodeId, data, ...(values.force === true ? { force: true as const } : {}), ...json };
}

/** The overview's lines for `geokv snapshot`. */
export const SNAPSHOT_OVERVIEW = `  geokv snapshot create FILE --node ID [--data DIR] [--force]
                                                a backup of node ID's data, also while it runs
  geokv snapshot restore FILE --node ID [--data DIR]
                                                a new data directory for node ID from a backup`;

/** Usage text of `geokv snapshot`. */
export function snapshotHelp(defaultData: string): string {
  return `Usage: geokv snapshot create FILE --node ID [--data DIR] [--force] [--json]
       geokv snapshot restore FILE --node ID [--data DIR] [--json]

create reads one consistent snapshot of node ID's database (DIR/ID/geokv.db)
on a read-only connection of its own, so the node may be running, and writes
it to FILE: every key of every namespace as of the version vector it prints.
FILE is written whole or not at all (FILE.tmp, fsync, rename); an existing
FILE is refused unless --force.

restore checks all of FILE first (format, SQLite's check, row count and
SHA-256), then makes DIR/ID from it in one transaction: all of it is
installed, or nothing. It refuses a node folder that holds any data or
another node's, and one a running node holds. Started, the node catches up
from its peers with the writes made after the backup.

  --node ID                     the node whose data is read (create) or made (restore)
  --data DIR                    where node data is stored (default ${defaultData})
  --force                       create: replace an existing FILE
  --json                        machine output for scripts (errors as {"error": {...}} on stderr)
Exit codes: 0 ok, 1 error (the file or the data directory is refused), 2 usage error
(also an existing FILE without --force).
`;
}
