// The `geokv` command line as data: every command with its defaults, help on
// every subcommand, and each mistake coming back as an error that names the
// flag or argument at fault.

import { describe, expect, it } from "vitest";
import { helpText, parseCli, parseListen, parsePutValue, type CliCommand, type HelpTopic } from "../../src/cli/args.js";
import { NUMERIC_SETTINGS } from "../../src/node/settings.js";

const TOPICS: readonly HelpTopic[] = ["up", "node", "status", "put", "get", "del"];

function errorOf(c: CliCommand): string {
  if (c.cmd !== "error") throw new Error(`expected an error, got ${JSON.stringify(c)}`);
  return c.message;
}

describe("parseCli commands", () => {
  it("up with defaults and with folders and timing flags", () => {
    expect(parseCli(["up"])).toEqual({ cmd: "up", regions: "regions", data: ".geokv", flags: {} });
    expect(parseCli(["up", "--regions", "conf", "--data=/var/geokv", "--heartbeat-ms", "50"])).toEqual({
      cmd: "up",
      regions: "conf",
      data: "/var/geokv",
      flags: { "heartbeat-ms": "50" },
    });
  });

  it("snapshot create and restore, with the data folder `geokv node` uses by default", () => {
    expect(parseCli(["snapshot", "create", "b.gkvb", "--node", "us-east-1"])).toEqual({ cmd: "snapshot", action: "create", file: "b.gkvb", node: "us-east-1", data: ".geokv" });
    expect(parseCli(["snapshot", "create", "b.gkvb", "--node", "us-east-1", "--data", "/d", "--force", "--json"])).toEqual({
      cmd: "snapshot", action: "create", file: "b.gkvb", node: "us-east-1", data: "/d", force: true, json: true,
    });
    expect(parseCli(["snapshot", "restore", "b.gkvb", "--node", "us-east-2", "--json"])).toEqual({ cmd: "snapshot", action: "restore", file: "b.gkvb", node: "us-east-2", data: ".geokv", json: true });
    expect(errorOf(parseCli(["snapshot", "restore", "b.gkvb"]))).toBe("geokv snapshot restore needs --node ID");
    expect(errorOf(parseCli(["snapshot", "restore", "b.gkvb", "--node", "n-1", "--force"]))).toMatch(/^--force is for snapshot create/);
    expect(errorOf(parseCli(["snapshot", "create", "--node", "n-1"]))).toBe("geokv snapshot create needs FILE");
    expect(errorOf(parseCli(["snapshot", "list"]))).toMatch(/^unknown action "list" for 'geokv snapshot'/);
    expect(parseCli(["snapshot", "--help"])).toEqual({ cmd: "help", topic: "snapshot" });
    expect(helpText("snapshot")).toContain("Usage: geokv snapshot create FILE --node ID [--data DIR] [--force] [--json]");
  });

  it("node with defaults", () => {
    expect(parseCli(["node", "--node", "us-east-1"])).toEqual({ cmd: "node", node: "us-east-1", regions: "regions", data: ".geokv", flags: {} });
  });

  it("node with every flag", () => {
    const argv = ["node", "--node=eu-west-2", "--regions", "r", "--data", "d", "--listen", "0.0.0.0:7202", "--sync", "NORMAL"];
    for (const s of NUMERIC_SETTINGS) argv.push(`--${s.flag}`, "777");
    const flags: Record<string, string> = { sync: "NORMAL" };
    for (const s of NUMERIC_SETTINGS) flags[s.flag] = "777";
    expect(parseCli(argv)).toEqual({ cmd: "node", node: "eu-west-2", regions: "r", data: "d", listen: { host: "0.0.0.0", port: 7202 }, flags });
  });

  it("node with TLS flags; only geokv node takes them", () => {
    expect(parseCli(["node", "--node", "n", "--tls-cert", "n.pem", "--tls-key", "n.key", "--tls-ca", "ca.pem", "--peer-mtls"])).toEqual({
      cmd: "node",
      node: "n",
      regions: "regions",
      data: ".geokv",
      flags: { "tls-cert": "n.pem", "tls-key": "n.key", "tls-ca": "ca.pem", "peer-mtls": "true" },
    });
    expect(errorOf(parseCli(["node", "--node", "n", "--peer-mtls=yes"]))).toBe("--peer-mtls takes no value");
    expect(errorOf(parseCli(["up", "--tls-cert", "n.pem"]))).toMatch(/^unknown flag --tls-cert for 'geokv up'/);
  });

  it("--ca FILE on the commands that talk to nodes", () => {
    expect(parseCli(["get", "k", "--ca", "ca.pem"])).toEqual({ cmd: "get", key: "k", ca: "ca.pem" });
    expect(parseCli(["status", "--ca", "ca.pem"])).toEqual({ cmd: "status", regions: "regions", ca: "ca.pem" });
    expect(parseCli(["incr", "c", "--ca", "ca.pem"])).toMatchObject({ cmd: "incr", ca: "ca.pem" });
    expect(parseCli(["watch", "--ca", "ca.pem"])).toMatchObject({ cmd: "watch", ca: "ca.pem" });
    expect(parseCli(["stepdown", "--region", "r", "--ca", "ca.pem"])).toMatchObject({ cmd: "stepdown", ca: "ca.pem" });
    expect(errorOf(parseCli(["get", "k", "--ca"]))).toBe("--ca needs a value");
  });

  it("node --listen on IPv6", () => {
    expect(parseCli(["node", "--node", "n", "--listen", "[::]:7101"])).toMatchObject({ listen: { host: "::", port: 7101 } });
  });

  it("status", () => {
    expect(parseCli(["status"])).toEqual({ cmd: "status", regions: "regions" });
    expect(parseCli(["status", "--regions", "elsewhere"])).toEqual({ cmd: "status", regions: "elsewhere" });
  });

  it("put, get and del, with and without --node", () => {
    expect(parseCli(["put", "k", "42"])).toEqual({ cmd: "put", key: "k", value: 42 });
    expect(parseCli(["put", "k", '{"a":[1,true]}', "--node", "http://127.0.0.1:7101"])).toEqual({
      cmd: "put",
      key: "k",
      value: { a: [1, true] },
      node: "http://127.0.0.1:7101",
    });
    expect(parseCli(["get", "k"])).toEqual({ cmd: "get", key: "k" });
    expect(parseCli(["get", "--node", "https://db.example:7101", "k"])).toEqual({ cmd: "get", key: "k", node: "https://db.example:7101" });
    expect(parseCli(["del", "some/key"])).toEqual({ cmd: "del", key: "some/key" });
  });

  it("put values: JSON when it parses, else a string; -- before a value starting with -", () => {
    const value = (v: string) => {
      const c = parseCli(["put", "k", v]);
      return c.cmd === "put" ? c.value : c;
    };
    expect(value("hello world")).toBe("hello world");
    expect(value('"quoted"')).toBe("quoted");
    expect(value("null")).toBeNull();
    expect(value("true")).toBe(true);
    expect(value("[1,2]")).toEqual([1, 2]);
    expect(value("{not json")).toBe("{not json");
    expect(value("")).toBe("");
    expect(parseCli(["put", "k", "--", "-5"])).toEqual({ cmd: "put", key: "k", value: -5 });
    expect(parseCli(["put", "--", "-k", "--help"])).toEqual({ cmd: "put", key: "-k", value: "--help" });
    expect(parsePutValue("3.25")).toBe(3.25);
  });
});

describe("parseCli help", () => {
  it("with no arguments, --help, -h and help", () => {
    expect(parseCli([])).toEqual({ cmd: "help" });
    expect(parseCli(["--help"])).toEqual({ cmd: "help" });
    expect(parseCli(["-h"])).toEqual({ cmd: "help" });
    expect(parseCli(["help"])).toEqual({ cmd: "help" });
    expect(parseCli(["--help", "node"])).toEqual({ cmd: "help", topic: "node" });
  });

  it.each(TOPICS)("%s --help, -h and help %s", (topic) => {
    expect(parseCli([topic, "--help"])).toEqual({ cmd: "help", topic });
    expect(parseCli([topic, "-h"])).toEqual({ cmd: "help", topic });
    expect(parseCli(["help", topic])).toEqual({ cmd: "help", topic });
    // Help wins over mistakes elsewhere on the line: the user is asking how to fix them.
    expect(parseCli([topic, "--bogus", "--help"])).toEqual({ cmd: "help", topic });
  });

  it("refuses an unknown topic or more than one", () => {
    expect(errorOf(parseCli(["help", "frobnicate"]))).toBe('no help topic "frobnicate"; topics: up, node, status, put, get, del, incr, sadd, srem, smembers, doc, conflicts, stepdown, watch, snapshot, token');
    expect(errorOf(parseCli(["help", "put", "get"]))).toBe("help takes one topic, got 2");
  });

  it.each(TOPICS)("helpText(%s) gives that command's usage", (topic) => {
    expect(helpText(topic)).toMatch(new RegExp(`^Usage: geokv ${topic} `));
  });

  it("the overview lists every command", () => {
    const text = helpText();
    for (const line of ["geokv up", "geokv node --node ID", "geokv status", "geokv put|get|del KEY [VALUE] [--node URL]", "geokv help"]) {
      expect(text).toContain(line);
    }
  });

  it("node's help lists every timing flag, its variable and default, and the env-only settings", () => {
    const text = helpText("node");
    for (const s of NUMERIC_SETTINGS) {
      expect(text).toContain(`--${s.flag}`);
      expect(text).toContain(s.env);
    }
    for (const s of ["--listen HOST:PORT", "--sync", "GEOKV_SYNC", "default 100)", "default 500)", "default 3000)", "default 1048576)"]) {
      expect(text).toContain(s);
    }
    for (const s of ["GEOKV_CLUSTER_SECRET", "GEOKV_CLIENT_TOKEN", "GEOKV_ADMIN_TOKEN", "GEOKV_LOG_LEVEL"]) expect(text).toContain(s);
  });
});

describe("parseCli refuses", () => {
  it("unknown commands, and flags before the command", () => {
    expect(errorOf(parseCli(["start"]))).toBe('unknown command "start"; commands: up, node, status, put, get, del, incr, sadd, srem, smembers, doc, conflicts, stepdown, watch, snapshot, token, help');
    expect(errorOf(parseCli(["--regions", "x", "up"]))).toBe("unknown flag --regions; the command comes first (geokv COMMAND [flags])");
  });

  it("unknown flags, naming the flag and the command", () => {
    expect(errorOf(parseCli(["node", "--node", "n", "--frobnicate"]))).toBe("unknown flag --frobnicate for 'geokv node' (see geokv node --help)");
    expect(errorOf(parseCli(["status", "--data", "d"]))).toMatch(/^unknown flag --data for 'geokv status'/);
    expect(errorOf(parseCli(["get", "k", "-x"]))).toMatch(/^unknown flag -x for 'geokv get'/);
    expect(errorOf(parseCli(["put", "k", "v", "--heartbeat-ms", "5"]))).toMatch(/^unknown flag --heartbeat-ms for 'geokv put'/);
  });

  it("flags without a value", () => {
    expect(errorOf(parseCli(["status", "--regions"]))).toBe("--regions needs a value");
    expect(errorOf(parseCli(["up", "--regions", "--data", "d"]))).toBe("--regions needs a value");
    expect(errorOf(parseCli(["up", "--data="]))).toBe("--data needs a value");
  });

  it("node without --node or with an invalid id", () => {
    expect(errorOf(parseCli(["node"]))).toBe("geokv node needs --node ID");
    expect(errorOf(parseCli(["node", "--node", "bad id"]))).toBe('--node "bad id" is not a valid node id');
  });

  it.each(["7101", "host:", ":7101", "h:0", "h:70000", "h:abc", "[::1]7101", "h:7101:1", "a b:1", "[zz]:1"])("--listen %j", (listen) => {
    expect(errorOf(parseCli(["node", "--node", "n", "--listen", listen]))).toMatch(/^--listen (must be HOST:PORT|port must be 1 to 65535)/);
  });

  it("stray arguments", () => {
    expect(errorOf(parseCli(["up", "extra"]))).toBe(`unexpected argument "extra" for 'geokv up'`);
    expect(errorOf(parseCli(["status", "x"]))).toBe(`unexpected argument "x" for 'geokv status'`);
    expect(errorOf(parseCli(["get", "a", "b"]))).toMatch(/^unexpected argument "b" for 'geokv get'/);
    expect(errorOf(parseCli(["put", "k", "hello", "world"]))).toMatch(/^unexpected argument "world" for 'geokv put' \(quote a VALUE with spaces\)$/);
  });

  it("missing or bad keys and values", () => {
    expect(errorOf(parseCli(["get"]))).toBe("geokv get needs KEY");
    expect(errorOf(parseCli(["del"]))).toBe("geokv del needs KEY");
    expect(errorOf(parseCli(["put", "k"]))).toBe("geokv put needs KEY VALUE");
    expect(errorOf(parseCli(["get", ""]))).toBe("KEY must not be empty");
    expect(errorOf(parseCli(["get", "é".repeat(513)]))).toBe("KEY is 1026 bytes; at most 1024");
  });

  it("--node that is not an http(s) URL", () => {
    expect(errorOf(parseCli(["get", "k", "--node", "us-east-1"]))).toBe('--node must be a node\'s URL (http://127.0.0.1:7101), got "us-east-1"');
    expect(errorOf(parseCli(["del", "k", "--node", "ftp://h:1"]))).toMatch(/^--node must be a node's URL/);
  });
});

describe("parseListen", () => {
  it("accepts names, IPv4 and bracketed IPv6", () => {
    expect(parseListen("localhost:1")).toEqual({ host: "localhost", port: 1 });
    expect(parseListen("10.1.2.3:65535")).toEqual({ host: "10.1.2.3", port: 65535 });
    expect(parseListen("[fe80::1%eth0]:7101")).toEqual({ host: "fe80::1%eth0", port: 7101 });
  });
});
