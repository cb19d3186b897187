// The command line of the commands beyond put/get/del, as data: what each
// parses to, negative deltas, --json, and each mistake as an error value.

import { describe, expect, it } from "vitest";
import { helpText, parseCli } from "../../src/cli/args.js";
import { argsForParse, REMOTE_TOPICS } from "../../src/cli/remote-args.js";

const URL = "http://127.0.0.1:7101";

describe("parseCli: counters, sets, docs, conflicts, stepdown, watch", () => {
  it("parses each command with its defaults", () => {
    expect(parseCli(["incr", "hits"])).toEqual({ cmd: "incr", key: "hits", delta: 1 });
    expect(parseCli(["incr", "hits", "-3", "--node", URL, "--json"])).toEqual({ cmd: "incr", key: "hits", delta: -3, node: URL, json: true });
    expect(parseCli(["sadd", "s", "a", "b"])).toEqual({ cmd: "sadd", key: "s", members: ["a", "b"] });
    expect(parseCli(["srem", "s", "--", "-dash"])).toEqual({ cmd: "srem", key: "s", members: ["-dash"] });
    expect(parseCli(["smembers", "s", "--json"])).toEqual({ cmd: "smembers", key: "s", json: true });
    expect(parseCli(["doc", "get", "notes"])).toEqual({ cmd: "doc", action: "get", key: "notes" });
    expect(parseCli(["conflicts"])).toEqual({ cmd: "conflicts" });
    expect(parseCli(["conflicts", "--limit", "7"])).toEqual({ cmd: "conflicts", limit: 7 });
    expect(parseCli(["stepdown", "--region", "eu-west"])).toEqual({ cmd: "stepdown", region: "eu-west", regions: "regions" });
    expect(parseCli(["stepdown", "--region", "eu-west", "--regions", "r", "--admin-token", "t", "--node", URL])).toEqual({
      cmd: "stepdown",
      region: "eu-west",
      regions: "r",
      adminToken: "t",
      node: URL,
    });
    expect(parseCli(["watch"])).toEqual({ cmd: "watch", regions: "regions", intervalMs: 1000 });
    expect(parseCli(["watch", "--regions", "r", "--interval-ms", "250"])).toEqual({ cmd: "watch", regions: "r", intervalMs: 250 });
    expect(parseCli(["get", "k", "--json"])).toEqual({ cmd: "get", key: "k", json: true });
  });

  it("moves only negative integers before -- behind one", () => {
    expect(argsForParse("incr", ["k", "-3", "--json"])).toEqual(["k", "--json", "--", "-3"]);
    expect(argsForParse("incr", ["k", "--", "-4"])).toEqual(["k", "--", "-4"]);
    expect(argsForParse("incr", ["k", "-x"])).toEqual(["k", "-x"]);
    expect(argsForParse("sadd", ["k", "-3"])).toEqual(["k", "-3"]);
  });

  it("each mistake is an error naming what is wrong", () => {
    const cases: [string[], RegExp][] = [
      [["incr"], /needs KEY/],
      [["incr", "k", "1.5"], /DELTA must be an integer/],
      [["incr", "k", "99999999999999999999"], /DELTA must be an integer/],
      [["incr", "k", "1", "2"], /unexpected argument "2"/],
      [["incr", ""], /KEY must not be empty/],
      [["sadd", "s"], /at least one MEMBER/],
      [["smembers"], /needs KEY/],
      [["doc"], /needs an action/],
      [["doc", "get"], /doc get needs KEY/],
      [["doc", "set", "k"], /unknown action "set"/],
      [["conflicts", "--limit", "1001"], /--limit must be an integer from 1 to 1000/],
      [["conflicts", "extra"], /unexpected argument/],
      [["stepdown"], /needs --region R/],
      [["watch", "--interval-ms", "x"], /--interval-ms must be an integer/],
      [["smembers", "s", "--node", "ftp://x"], /--node must be a node's URL/],
      [["watch", "--json"], /unknown flag --json for 'geokv watch'/],
    ];
    for (const [argv, message] of cases) {
      const c = parseCli(argv);
      expect(c.cmd, argv.join(" ")).toBe("error");
      expect(c.cmd === "error" ? c.message : "", argv.join(" ")).toMatch(message);
    }
  });

  it("every command has help, also through `geokv help COMMAND`", () => {
    for (const t of REMOTE_TOPICS) {
      expect(parseCli([t, "--help"])).toEqual({ cmd: "help", topic: t });
      expect(parseCli(["help", t])).toEqual({ cmd: "help", topic: t });
      expect(helpText(t)).toContain(`Usage: geokv ${t}`);
    }
  });
});
