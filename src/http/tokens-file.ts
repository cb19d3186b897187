// The tokens file (--tokens FILE / GEOKV_TOKENS_FILE): client tokens kept as
// SHA-256 digests with their scopes, so the file can sit in a config repo
// or a mounted secret without holding a usable token. Its form:
//
//   [{"token-hash": "sha256:<64 hex>", "scopes": ["read", "write", "admin"], "namespaces": ["kv", ...]}]
//
// "namespaces" is optional (absent: every namespace). Parsing is pure: the
// text in, the entries or one error naming the file, the entry (1-based) and
// what is wrong out. A bad file stops the node; nothing is guessed.

import type { Namespace } from "../core/op.js";
import { GRANT_NAMESPACES, SCOPES, grantOf, type Scope, type TokenEntry } from "./access.js";

/** Why a tokens file was refused. */
export interface TokensFileError {
  readonly type: "TokensFileError";
  readonly file: string;
  /** 1-based index of the entry at fault; absent when the file as a whole is wrong. */
  readonly entry?: number;
  readonly problem: string;
}

/** True for a TokensFileError. */
export function isTokensFileError(v: unknown): v is TokensFileError {
  return typeof v === "object" && v !== null && (v as { type?: unknown }).type === "TokensFileError";
}

/** One line: `tokens file <file>, entry <n>: <problem>`. */
export function formatTokensFileError(e: TokensFileError): string {
  return `tokens file ${e.file}${e.entry === undefined ? "" : `, entry ${e.entry}`}: ${e.problem}`;
}

const FIELDS = ["token-hash", "scopes", "namespaces"];
const HASH = /^sha256:([0-9a-f]{64})$/;
const SHAPE = 'a JSON list of {"token-hash": "sha256:<64 hex digits>", "scopes": ["read"|"write"|"admin", ...], "namespaces"?: ["kv"|"counters"|"sets"|"docs", ...]}';

/** A non-empty list of distinct members of `allowed`, or the problem. */
function parseList<T extends string>(v: unknown, field: string, allowed: readonly T[]): T[] | string {
  if (!Array.isArray(v) || v.length === 0) return `"${field}" must be a non-empty list of ${allowed.join(", ")}`;
  const out: T[] = [];
  for (const item of v) {
    const found = allowed.find((a) => a === item);
    if (found === undefined) return `"${field}" has ${JSON.stringify(item)}, not one of ${allowed.join(", ")}`;
    if (out.includes(found)) return `"${field}" lists ${found} twice`;
    out.push(found);
  }
  return out;
}

function parseEntry(v: unknown, file: string, entry: number): TokenEntry | TokensFileError {
  const fail = (problem: string): TokensFileError => ({ type: "TokensFileError", file, entry, problem });
  if (typeof v !== "object" || v === null || Array.isArray(v)) return fail(`must be an object (${SHAPE})`);
  const o = v as Record<string, unknown>;
  const unknown = Object.keys(o).find((k) => !FIELDS.includes(k));
  if (unknown !== undefined) return fail(`unknown field ${JSON.stringify(unknown)} (fields: ${FIELDS.join(", ")})`);
  const hash = o["token-hash"];
  if (typeof hash !== "string") return fail('"token-hash" is missing or not a string (sha256:<64 hex digits>; geokv token hash prints it)');
  const m = HASH.exec(hash);
  // The value is a digest, not a token, so naming it helps and leaks nothing; only its start, to keep the line short.
  if (m === null) return fail(`"token-hash" must be sha256: and 64 lower-case hex digits, got ${JSON.stringify(hash.slice(0, 24))}${hash.length > 24 ? "..." : ""} (geokv token hash prints it)`);
  const digest = new Uint8Array(Buffer.from(m[1] as string, "hex"));
  const scopes = parseList<Scope>(o.scopes, "scopes", SCOPES);
  if (typeof scopes === "string") return fail(scopes);
  let namespaces: Namespace[] | null = null;
  if (o.namespaces !== undefined) {
    const ns = parseList<Namespace>(o.namespaces, "namespaces", GRANT_NAMESPACES);
    if (typeof ns === "string") return fail(ns);
    namespaces = ns;
  }
  return { digest, grant: grantOf(scopes, namespaces), source: `tokens file ${file}, entry ${entry}` };
}

/** Parses a tokens file's text; `file` names it in errors. Two entries with the same hash are refused. */
export function parseTokensFile(text: string, file: string): TokenEntry[] | TokensFileError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    // V8's message quotes the text, which may be a token written in by mistake: only the position is kept.
    const at = /at position (\d+)/.exec((e as Error).message)?.[1];
    return { type: "TokensFileError", file, problem: `not JSON${at === undefined ? "" : ` (at character ${at})`}` };
  }
  if (!Array.isArray(parsed)) return { type: "TokensFileError", file, problem: `must be ${SHAPE}` };
  const out: TokenEntry[] = [];
  for (const [i, v] of parsed.entries()) {
    const e = parseEntry(v, file, i + 1);
    if (isTokensFileError(e)) return e;
    const twin = out.findIndex((x) => Buffer.from(x.digest).equals(e.digest));
    if (twin >= 0) return { type: "TokensFileError", file, entry: i + 1, problem: `the same token-hash as entry ${twin + 1} (one token, one grant)` };
    out.push(e);
  }
  return out;
}
