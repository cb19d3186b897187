// Access control as data: which token grants what (variables and tokens-file
// entries alike), what each route family needs, how a request is decided,
// and every way a tokens file is refused, with the file and entry named and
// no token in any message.

import { describe, expect, it } from "vitest";
import { accessTokens, allows, authorize, formatTokenHash, grantFor, grantOf, guards, tokenDigest, type AccessTokens, type Need } from "../../src/http/access.js";
import { loadAccess } from "../../src/http/load-access.js";
import { needOf } from "../../src/http/route-needs.js";
import { formatTokensFileError, isTokensFileError, parseTokensFile, type TokensFileError } from "../../src/http/tokens-file.js";

const hashOf = (t: string) => formatTokenHash(t);
const tokens = (a: AccessTokens | { problem: string }): AccessTokens => {
  if ("problem" in a) throw new Error(a.problem);
  return a;
};
const fileErr = (v: ReturnType<typeof parseTokensFile>): TokensFileError => {
  if (!isTokensFileError(v)) throw new Error(`expected an error, got ${v.length} entries`);
  return v;
};
const need = (scope: Need["scope"], namespace: Need["namespace"] = null): Need => ({ scope, namespace });

describe("token hashes", () => {
  it("are sha256: and the hex SHA-256 of the token's UTF-8 bytes", () => {
    // SHA-256("abc"), the FIPS 180-2 test vector.
    expect(hashOf("abc")).toBe("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(tokenDigest("abc")).toHaveLength(32);
    expect(hashOf("é")).not.toBe(hashOf("e"));
  });
});

describe("grants", () => {
  const t = tokens(accessTokens({ clientToken: "rw", readToken: "ro", adminToken: "adm" }));

  it("map each variable token to its scopes, over every namespace", () => {
    expect(grantFor("rw", t)).toEqual(grantOf(["read", "write"]));
    expect(grantFor("ro", t)).toEqual(grantOf(["read"]));
    expect(grantFor("adm", t)).toEqual(grantOf(["admin"]));
    for (const wrong of ["", "r", "rw ", "RW", "rwx", hashOf("rw")]) expect(grantFor(wrong, t), wrong).toBeNull();
  });

  it("give one token set in two variables both grants", () => {
    const both = tokens(accessTokens({ clientToken: "same", adminToken: "same" }));
    expect(both.entries).toHaveLength(1);
    expect(grantFor("same", both)).toEqual(grantOf(["read", "write", "admin"]));
    expect(both.entries[0]?.source).toBe("GEOKV_CLIENT_TOKEN and GEOKV_ADMIN_TOKEN");
  });

  it("refuse a file token equal to a variable's, naming both and not the token", () => {
    const file = parseTokensFile(JSON.stringify([{ "token-hash": hashOf("rw"), scopes: ["read"], namespaces: ["kv"] }]), "t.json");
    if (isTokensFileError(file)) throw new Error(formatTokensFileError(file));
    const r = accessTokens({ clientToken: "rw" }, file);
    expect(r).toEqual({ problem: "tokens file t.json, entry 1: the same token as GEOKV_CLIENT_TOKEN (one token, one grant)" });
  });

  it("allow a scope only on the grant's namespaces", () => {
    const kvOnly = grantOf(["read", "write"], ["kv", "sets"]);
    expect(allows(kvOnly, need("write", "kv"))).toBe(true);
    expect(allows(kvOnly, need("read", "sets"))).toBe(true);
    expect(allows(kvOnly, need("read", "counters"))).toBe(false);
    expect(allows(kvOnly, need("write", "docs"))).toBe(false);
    expect(allows(kvOnly, need("admin"))).toBe(false);
    expect(allows(grantOf(["read"]), need("write", "kv"))).toBe(false);
    expect(allows(grantOf(["admin"]), need("read", "kv"))).toBe(false);
    expect(allows(grantOf(["write"]), need("read", "kv"))).toBe(false);
  });

  it("let /metrics be read by a token that reads, or an admin one", () => {
    expect(allows(grantOf(["read"], ["docs"]), need("metrics"))).toBe(true);
    expect(allows(grantOf(["admin"]), need("metrics"))).toBe(true);
    expect(allows(grantOf(["write"]), need("metrics"))).toBe(false);
  });
});

describe("authorize", () => {
  it("leaves everything open with no token at all", () => {
    const open = tokens(accessTokens({}));
    for (const n of [need("read", "kv"), need("write", "docs"), need("admin"), need("metrics")]) expect(authorize(open, undefined, n)).toBeNull();
  });

  it("guards data once any token reads or writes, admin once one administers, /metrics once any token is set", () => {
    const adminOnly = tokens(accessTokens({ adminToken: "a" }));
    expect(guards(adminOnly, "read")).toBe(false);
    expect(guards(adminOnly, "write")).toBe(false);
    expect(guards(adminOnly, "admin")).toBe(true);
    expect(guards(adminOnly, "metrics")).toBe(true);
    const dataOnly = tokens(accessTokens({ clientToken: "c" }));
    expect(guards(dataOnly, "read")).toBe(true);
    expect(guards(dataOnly, "write")).toBe(true);
    expect(guards(dataOnly, "admin")).toBe(false);
  });

  it("answers 401 without a token, 403 for an unknown one or one that grants too little, and never names the token", () => {
    const t = tokens(accessTokens({ clientToken: "cli-secret", readToken: "read-secret" }));
    expect(authorize(t, undefined, need("read", "kv"))).toMatchObject({ code: "unauthorized" });
    expect(authorize(t, "nope-secret", need("read", "kv"))).toEqual({ type: "AccessRefusal", code: "forbidden", message: "unknown token" });
    const w = authorize(t, "read-secret", need("write", "kv"));
    expect(w).toEqual({ type: "AccessRefusal", code: "forbidden", message: "this token lacks the write scope on namespace kv" });
    expect(authorize(t, "read-secret", need("read", "kv"))).toBeNull();
    expect(authorize(t, "cli-secret", need("write", "kv"))).toBeNull();
    for (const r of [authorize(t, "nope-secret", need("read")), w]) expect(JSON.stringify(r)).not.toMatch(/secret/);
  });
});

describe("route needs", () => {
  it.each([
    ["GET", "/kv/a", need("read", "kv")],
    ["HEAD", "/kv", need("read", "kv")],
    ["PUT", "/kv/a", need("write", "kv")],
    ["DELETE", "/kv/a", need("write", "kv")],
    ["GET", "/counters/a", need("read", "counters")],
    ["POST", "/counters/a", need("write", "counters")],
    ["POST", "/sets/a", need("write", "sets")],
    ["GET", "/docs/a", need("read", "docs")],
    ["POST", "/docs/a/updates", need("write", "docs")],
    ["GET", "/conflicts", need("read", "kv")],
    ["GET", "/yjs/room", need("read", "docs")],
    ["GET", "/metrics", need("metrics")],
    ["POST", "/admin/faults", need("admin")],
    ["POST", "/admin/compact", need("admin")],
    ["POST", "/leadership/stepdown", need("admin")],
    ["POST", "/leadership/promote", need("admin")],
    ["POST", "/dashboard/partition", need("admin")],
    ["POST", "/dashboard/stepdown", need("admin")],
    ["GET", "/dashboard/key/a", need("read", "kv")],
  ] as const)("%s %s", (method, path, expected) => {
    expect(needOf(method, path)).toEqual(expected);
  });

  it("leaves probes, /status, the OpenAPI document and the dashboard page open, and matches whole path segments", () => {
    for (const path of ["/health", "/ready", "/status", "/openapi.json", "/fence-token/validate", "/", "/dashboard/state", "/dashboard/events", "/dashboard/assets/dashboard.js", "/kvx", "/metricsx"]) {
      expect(needOf("GET", path), path).toBeNull();
    }
  });
});

describe("the tokens file", () => {
  const good = [
    { "token-hash": hashOf("reader"), scopes: ["read"] },
    { "token-hash": hashOf("kv-writer"), scopes: ["read", "write"], namespaces: ["kv", "counters"] },
    { "token-hash": hashOf("ops"), scopes: ["admin"] },
  ];

  it("parses entries into grants that the presented tokens match", () => {
    const entries = parseTokensFile(JSON.stringify(good), "/etc/geokv/tokens.json");
    if (isTokensFileError(entries)) throw new Error(formatTokensFileError(entries));
    const t = tokens(accessTokens({}, entries));
    expect(grantFor("reader", t)).toEqual(grantOf(["read"]));
    expect(grantFor("kv-writer", t)).toEqual(grantOf(["read", "write"], ["kv", "counters"]));
    expect(grantFor("ops", t)).toEqual(grantOf(["admin"]));
    expect(grantFor("other", t)).toBeNull();
    expect(entries[1]?.source).toBe("tokens file /etc/geokv/tokens.json, entry 2");
    expect(parseTokensFile("[]", "empty.json")).toEqual([]);
  });

  const BAD: Array<[string, string, number | undefined, RegExp]> = [
    ["not JSON", "{not json", undefined, /^not JSON \(at character \d+\)$/],
    ["not a list", JSON.stringify({ "token-hash": hashOf("x"), scopes: ["read"] }), undefined, /^must be a JSON list of/],
    ["an entry that is not an object", JSON.stringify([good[0], "sha256:abc"]), 2, /^must be an object/],
    ["no hash", JSON.stringify([{ scopes: ["read"] }]), 1, /"token-hash" is missing/],
    ["a hash without the prefix", JSON.stringify([{ "token-hash": hashOf("x").slice(7), scopes: ["read"] }]), 1, /must be sha256: and 64 lower-case hex digits/],
    ["a short hash", JSON.stringify([{ "token-hash": "sha256:abcd", scopes: ["read"] }]), 1, /must be sha256: and 64/],
    ["an upper-case hash", JSON.stringify([{ "token-hash": hashOf("x").toUpperCase(), scopes: ["read"] }]), 1, /lower-case hex/],
    ["another algorithm", JSON.stringify([{ "token-hash": `md5:${"a".repeat(32)}`, scopes: ["read"] }]), 1, /must be sha256:/],
    ["an unknown scope", JSON.stringify([good[0], { "token-hash": hashOf("y"), scopes: ["read", "root"] }]), 2, /"scopes" has "root", not one of read, write, admin/],
    ["no scopes", JSON.stringify([{ "token-hash": hashOf("y"), scopes: [] }]), 1, /"scopes" must be a non-empty list/],
    ["scopes not a list", JSON.stringify([{ "token-hash": hashOf("y"), scopes: "read" }]), 1, /"scopes" must be a non-empty list/],
    ["a scope twice", JSON.stringify([{ "token-hash": hashOf("y"), scopes: ["read", "read"] }]), 1, /lists read twice/],
    ["an unknown namespace", JSON.stringify([{ "token-hash": hashOf("y"), scopes: ["read"], namespaces: ["kv", "blobs"] }]), 1, /"namespaces" has "blobs"/],
    ["empty namespaces", JSON.stringify([{ "token-hash": hashOf("y"), scopes: ["read"], namespaces: [] }]), 1, /"namespaces" must be a non-empty list/],
    ["an unknown field (a token in plain text)", JSON.stringify([{ "token-hash": hashOf("y"), scopes: ["read"], token: "plain" }]), 1, /unknown field "token"/],
    ["the same hash twice", JSON.stringify([...good, { "token-hash": hashOf("ops"), scopes: ["read"] }]), 4, /the same token-hash as entry 3/],
  ];

  it.each(BAD)("refuses %s, naming the file and the entry", (_what, text, entry, problem) => {
    const e = fileErr(parseTokensFile(text, "tokens.json"));
    expect(e.file).toBe("tokens.json");
    expect(e.entry).toBe(entry);
    expect(e.problem).toMatch(problem);
    expect(formatTokensFileError(e)).toBe(`tokens file tokens.json${entry === undefined ? "" : `, entry ${entry}`}: ${e.problem}`);
  });

  it("never quotes the file's text when it is not JSON (it may hold a token written in by mistake)", () => {
    const e = fileErr(parseTokensFile("plain-token-oops", "t.json"));
    expect(formatTokensFileError(e)).not.toContain("plain");
  });

  it("is read by loadAccess, whose problems name the file (unreadable or bad) and stop the node", () => {
    const files: Record<string, string> = { "/ok.json": JSON.stringify(good), "/bad.json": JSON.stringify([{ "token-hash": "x", scopes: ["read"] }]) };
    const read = (p: string) => {
      const text = files[p];
      if (text === undefined) throw Object.assign(new Error("no such file"), { code: "ENOENT" });
      return text;
    };
    const ok = tokens(loadAccess({ tokensFile: "/ok.json", clientToken: "rw" }, read));
    expect(ok.entries).toHaveLength(4);
    expect(grantFor("rw", ok)).toEqual(grantOf(["read", "write"]));
    expect(loadAccess({ tokensFile: "/missing.json" }, read)).toEqual({ problem: "tokens file /missing.json: cannot be read (ENOENT)" });
    expect(loadAccess({ tokensFile: "/bad.json" }, read)).toMatchObject({ problem: expect.stringMatching(/^tokens file \/bad\.json, entry 1: "token-hash" must be sha256:/) });
    expect(tokens(loadAccess({ tokensFile: undefined }, read)).entries).toEqual([]);
  });
});
