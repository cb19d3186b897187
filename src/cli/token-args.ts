// `geokv token hash [TOKEN]` parsed into data, like the rest of args.ts, and
// the hashing itself: operators write the tokens file (--tokens) from what it
// prints, so the file never holds a usable token. Reading the token from
// stdin keeps it out of shell history and `ps`.

import { formatTokenHash } from "../http/access.js";

/** What `geokv token` asks for: hash TOKEN, or the token on stdin when absent. */
export interface TokenCommand {
  readonly cmd: "token";
  readonly action: "hash";
  readonly token?: string;
}

type OptionSpec = { type: "string" } | { type: "boolean"; short?: string };

/** node:util parseArgs options of `geokv token`. */
export const TOKEN_OPTIONS: Record<string, OptionSpec> = { help: { type: "boolean", short: "h" } };

type Failure = { readonly cmd: "error"; readonly message: string };
const fail = (message: string): Failure => ({ cmd: "error", message });

/** Turns the positionals of `geokv token` into the command. */
export function parseToken(positionals: readonly string[]): TokenCommand | Failure {
  const [action, token, ...extra] = positionals;
  if (action === undefined) return fail("geokv token needs an action: token hash [TOKEN]");
  if (action !== "hash") return fail(`unknown action ${JSON.stringify(action)} for 'geokv token'; actions: hash`);
  if (extra.length > 0) return fail(`unexpected argument for 'geokv token hash' (one TOKEN, or none to read it from stdin)`);
  return token === undefined ? { cmd: "token", action } : { cmd: "token", action, token };
}

/**
 * The tokens file's "sha256:<hex>" for a token, or why it cannot be one. From
 * stdin, one trailing line break is dropped (`echo` adds it). A token with
 * surrounding whitespace is refused: the node trims the Authorization header,
 * so it could never be presented. The message never repeats the token.
 */
export function tokenHashLine(raw: string, fromStdin: boolean): { readonly line: string } | { readonly problem: string } {
  const token = fromStdin ? raw.replace(/\r?\n$/, "") : raw;
  if (token === "") return { problem: "the token is empty" };
  if (token.trim() !== token) return { problem: "the token starts or ends with whitespace, which an Authorization header cannot carry" };
  if (/[\r\n]/.test(token)) return { problem: "the token spans several lines (give one token)" };
  return { line: formatTokenHash(token) };
}

/** The overview's line for `geokv token`. */
export const TOKEN_OVERVIEW = `  geokv token hash [TOKEN]                      the tokens file's "sha256:..." for a client token (stdin without TOKEN)`;

/** Usage text of `geokv token`. */
export const TOKEN_HELP = `Usage: geokv token hash [TOKEN]

Prints "sha256:<hex>", the SHA-256 of TOKEN, for the "token-hash" field of a
tokens file (geokv node --tokens FILE, or GEOKV_TOKENS_FILE):

  [{"token-hash": "sha256:...", "scopes": ["read", "write"], "namespaces": ["kv"]}]

Without TOKEN it reads the token from stdin (one trailing newline is dropped),
which keeps it out of shell history and the process list:

  printf %s "$TOKEN" | geokv token hash

Exit codes: 0 ok, 2 usage error (no token, or one an Authorization header cannot carry).
`;
