// Client tokens: which presented bearer token grants what. Every token the
// node knows is a grant of scopes (read, write, admin) over namespaces:
// GEOKV_CLIENT_TOKEN reads and writes, GEOKV_READ_TOKEN reads,
// GEOKV_ADMIN_TOKEN administers, and a tokens file adds hashed tokens with
// any scopes (tokens-file.ts). The data API, /metrics, /admin, /leadership,
// the dashboard and the live documents at /yjs all ask here, so they cannot
// disagree. Only SHA-256 digests are kept and compared, in constant time over
// every known token, so neither a token nor which one matched leaks through
// timing, and no token is ever held in a form a log line could print.

import { createHash, timingSafeEqual } from "node:crypto";
import type { Namespace } from "../core/op.js";

/** What a token may do: read data, write data, or operate the cluster (/admin, /leadership). */
export type Scope = "read" | "write" | "admin";
export const SCOPES: readonly Scope[] = ["read", "write", "admin"];

/** The namespaces a grant can be limited to. */
export const GRANT_NAMESPACES: readonly Namespace[] = ["kv", "counters", "sets", "docs"];

/** What one token grants: its scopes, over these namespaces (null: all of them). */
export interface Grant {
  readonly scopes: ReadonlySet<Scope>;
  readonly namespaces: ReadonlySet<Namespace> | null;
}

/** One known token: the SHA-256 of the token, what it grants, and where it was configured (for errors). */
export interface TokenEntry {
  readonly digest: Uint8Array;
  readonly grant: Grant;
  /** "GEOKV_CLIENT_TOKEN" or "tokens.json entry 3": never the token. */
  readonly source: string;
}

/** Every token a node accepts. No entries: the node is open (local development). */
export interface AccessTokens {
  readonly entries: readonly TokenEntry[];
}

/** What a request needs: a scope, and the namespace it touches (null: none in particular). */
export interface Need {
  readonly scope: Scope | "metrics";
  readonly namespace: Namespace | null;
}

/** Why a request is refused; the HTTP layer answers 401 or 403 with the message. */
export interface AccessRefusal {
  readonly type: "AccessRefusal";
  readonly code: "unauthorized" | "forbidden";
  readonly message: string;
}

/** SHA-256 of a token, as the tokens file stores it. */
export function tokenDigest(token: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(token, "utf8").digest());
}

/** The tokens file's form of a token: "sha256:<64 hex digits>" (what `geokv token hash` prints). */
export function formatTokenHash(token: string): string {
  return `sha256:${Buffer.from(tokenDigest(token)).toString("hex")}`;
}

/** A grant of `scopes` over every namespace. */
export function grantOf(scopes: readonly Scope[], namespaces: readonly Namespace[] | null = null): Grant {
  return { scopes: new Set(scopes), namespaces: namespaces === null ? null : new Set(namespaces) };
}

/** The grants of the variables: client (read and write), read (read), admin (admin). */
export interface VariableTokens {
  readonly clientToken?: string | undefined;
  readonly readToken?: string | undefined;
  readonly adminToken?: string | undefined;
}

/**
 * All tokens of a node: the variables' and the file's. A token set in two
 * variables (client and admin, say) gets both grants: neither is limited to
 * namespaces, so the union is exactly what each says. A file entry with the
 * same token as another entry or a variable is refused (its source named),
 * since the union of two namespace-limited grants would grant more than
 * either.
 */
export function accessTokens(vars: VariableTokens, file: readonly TokenEntry[] = []): AccessTokens | { readonly problem: string } {
  const entries: TokenEntry[] = [];
  const fromVar = (token: string | undefined, source: string, scopes: readonly Scope[]) => {
    if (token === undefined) return;
    const digest = tokenDigest(token);
    const i = entries.findIndex((e) => Buffer.from(e.digest).equals(digest));
    const prior = entries[i];
    if (prior === undefined) entries.push({ digest, grant: grantOf(scopes), source });
    else entries[i] = { digest, grant: grantOf([...prior.grant.scopes, ...scopes]), source: `${prior.source} and ${source}` };
  };
  fromVar(vars.clientToken, "GEOKV_CLIENT_TOKEN", ["read", "write"]);
  fromVar(vars.readToken, "GEOKV_READ_TOKEN", ["read"]);
  fromVar(vars.adminToken, "GEOKV_ADMIN_TOKEN", ["admin"]);
  for (const f of file) {
    const same = entries.find((e) => Buffer.from(e.digest).equals(f.digest));
    if (same !== undefined) return { problem: `${f.source}: the same token as ${same.source} (one token, one grant)` };
    entries.push(f);
  }
  return { entries };
}

/** True when requests that need `scope` must present a token: some known token carries it. */
export function guards(t: AccessTokens, need: Need["scope"]): boolean {
  // /metrics is open only when no token is set at all.
  if (need === "metrics") return t.entries.length > 0;
  // Data scopes guard together: a read-only token must not leave writes open.
  if (need === "read" || need === "write") return t.entries.some((e) => e.grant.scopes.has("read") || e.grant.scopes.has("write"));
  return t.entries.some((e) => e.grant.scopes.has(need));
}

/** The grant of the presented token, or null for an unknown one. Compares with every known token, in constant time. */
export function grantFor(presented: string, t: AccessTokens): Grant | null {
  const digest = tokenDigest(presented);
  let found: Grant | null = null;
  for (const e of t.entries) {
    // No early exit: the time taken does not tell which token matched, or how many were tried.
    const same = timingSafeEqual(digest, e.digest);
    if (same) found = e.grant;
  }
  return found;
}

/** True when `g` allows what `need` asks. /metrics is read by any token that reads data, and by admin ones. */
export function allows(g: Grant, need: Need): boolean {
  const scopeOk = need.scope === "metrics" ? g.scopes.has("read") || g.scopes.has("admin") : g.scopes.has(need.scope);
  const nsOk = need.namespace === null || g.namespaces === null || g.namespaces.has(need.namespace);
  return scopeOk && nsOk;
}

function refusal(code: AccessRefusal["code"], message: string): AccessRefusal {
  return { type: "AccessRefusal", code, message };
}

function describeNeed(need: Need): string {
  const what = need.scope === "metrics" ? "the read (or admin) scope" : `the ${need.scope} scope`;
  return need.namespace === null ? what : `${what} on namespace ${need.namespace}`;
}

/**
 * Decides one request: null to serve it, or the refusal. No token where one
 * is needed is `unauthorized` (401); a token that is unknown or grants too
 * little is `forbidden` (403). Messages never contain the token.
 */
export function authorize(t: AccessTokens, presented: string | undefined, need: Need): AccessRefusal | null {
  if (!guards(t, need.scope)) return null;
  if (presented === undefined) return refusal("unauthorized", `this endpoint needs Authorization: Bearer <token> with ${describeNeed(need)}`);
  const g = grantFor(presented, t);
  if (g === null) return refusal("forbidden", "unknown token");
  if (!allows(g, need)) return refusal("forbidden", `this token lacks ${describeNeed(need)}`);
  return null;
}

/** True for an AccessRefusal. */
export function isAccessRefusal(v: unknown): v is AccessRefusal {
  return typeof v === "object" && v !== null && (v as { type?: unknown }).type === "AccessRefusal";
}

