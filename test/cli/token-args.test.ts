// `geokv token hash` as data: parsing, the hash line it prints, the tokens
// it refuses (ones an Authorization header cannot carry), and its help;
// test/process/tokens.test.ts runs the built command.

import { describe, expect, it } from "vitest";
import { helpText, parseCli } from "../../src/cli/args.js";
import { tokenHashLine } from "../../src/cli/token-args.js";

describe("geokv token", () => {
  it("parses hash with a TOKEN or without (stdin)", () => {
    expect(parseCli(["token", "hash", "s3cret"])).toEqual({ cmd: "token", action: "hash", token: "s3cret" });
    expect(parseCli(["token", "hash"])).toEqual({ cmd: "token", action: "hash" });
  });

  it("refuses a missing or unknown action and extra arguments", () => {
    expect(parseCli(["token"])).toEqual({ cmd: "error", message: "geokv token needs an action: token hash [TOKEN]" });
    expect(parseCli(["token", "make"])).toEqual({ cmd: "error", message: 'unknown action "make" for \'geokv token\'; actions: hash' });
    expect(parseCli(["token", "hash", "a", "b"])).toMatchObject({ cmd: "error", message: expect.stringMatching(/one TOKEN/) });
    expect(parseCli(["token", "hash", "--json"])).toMatchObject({ cmd: "error", message: expect.stringMatching(/unknown flag --json/) });
  });

  it("prints sha256: and the token's SHA-256, dropping one newline from stdin only", () => {
    const abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    expect(tokenHashLine("abc", false)).toEqual({ line: abc });
    expect(tokenHashLine("abc\n", true)).toEqual({ line: abc });
    expect(tokenHashLine("abc\r\n", true)).toEqual({ line: abc });
    expect(tokenHashLine("abc", true)).toEqual({ line: abc });
  });

  it("refuses a token that could never be presented, without repeating it", () => {
    for (const [raw, stdin] of [["", false], ["\n", true], [" pad", false], ["pad \n", true], ["a\nb", true], ["a\n\n", true]] as const) {
      const r = tokenHashLine(raw, stdin);
      expect("problem" in r, JSON.stringify(raw)).toBe(true);
      if ("problem" in r) expect(r.problem).not.toContain("pad");
    }
  });

  it("is in the overview and has its own help; node's help lists --tokens", () => {
    expect(helpText()).toContain("geokv token hash [TOKEN]");
    expect(helpText("token")).toMatch(/printf %s "\$TOKEN" \| geokv token hash/);
    expect(parseCli(["token", "--help"])).toEqual({ cmd: "help", topic: "token" });
    const node = helpText("node");
    for (const s of ["--tokens FILE", "GEOKV_TOKENS_FILE", "GEOKV_READ_TOKEN", "comma-separated list"]) expect(node).toContain(s);
    expect(parseCli(["node", "--node", "n-1", "--tokens", "/etc/t.json"])).toMatchObject({ cmd: "node", flags: { tokens: "/etc/t.json" } });
  });
});
