// Runtime settings: a flag beats its environment variable, which beats the
// default, and every bad value is refused with an error naming exactly the
// flag or variable the operator has to fix.

import { describe, expect, it } from "vitest";
import {
  DEFAULT_SETTINGS,
  NUMERIC_SETTINGS,
  SETTINGS_FLAGS,
  formatSettingsError,
  isSettingsError,
  resolveSettings,
  type Settings,
  type SettingsError,
} from "../../src/node/settings.js";

function ok(result: Settings | SettingsError): Settings {
  if (isSettingsError(result)) throw new Error(`unexpected settings error: ${formatSettingsError(result)}`);
  return result;
}

function err(result: Settings | SettingsError): SettingsError {
  if (!isSettingsError(result)) throw new Error("expected a settings error, got settings");
  return result;
}

describe("resolveSettings defaults", () => {
  it("match DESIGN.md when nothing is set", () => {
    expect(ok(resolveSettings({}, {}))).toEqual({
      heartbeatMs: 100,
      electionTimeoutMs: 500,
      writeWaitMs: 3000,
      maxValueBytes: 1_048_576,
      maxClockSkewMs: 500,
      readyLagOps: 1000,
      docCacheBytes: 67_108_864,
      yjsQueueBytes: 8_388_608,
      yjsBatchMs: 10,
      opLogRetainOps: 10_000,
      memberForgetMs: 3_600_000,
      maxInflightRequests: 512,
      maxPendingWriteOps: 4096,
      maxAckWaiters: 4096,
      maxTokenWaiters: 1024,
      maxLeaderWaiters: 1024,
      maxWsClients: 1024,
      wsSendBufferBytes: 16_777_216,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      idleTimeoutMs: 5_000,
      synchronous: "FULL",
      clusterSecret: undefined,
      clientToken: undefined,
      readToken: undefined,
      adminToken: undefined,
      tokensFile: undefined,
      logLevel: "info",
    });
    expect(ok(resolveSettings({}, {}))).toEqual(DEFAULT_SETTINGS);
  });

  it("ignore flags that are not settings (the CLI's --regions, --node)", () => {
    expect(ok(resolveSettings({ regions: "x", node: "n", help: true }, {}))).toEqual(DEFAULT_SETTINGS);
  });
});

describe("resolveSettings precedence", () => {
  // Values chosen so heartbeat stays below the election timeout in every case.
  const VALUES: Record<string, [flag: string, env: string]> = {
    heartbeatMs: ["40", "60"],
    electionTimeoutMs: ["700", "900"],
    writeWaitMs: ["1500", "2500"],
    maxValueBytes: ["2048", "4096"],
    maxClockSkewMs: ["250", "750"],
    readyLagOps: ["10", "20"],
    docCacheBytes: ["1000", "2000"],
    yjsQueueBytes: ["2097152", "4194304"],
    yjsBatchMs: ["3", "30"],
    opLogRetainOps: ["500", "600"],
    memberForgetMs: ["5000", "60000"],
    wsSendBufferBytes: ["2097152", "4194304"],
    headersTimeoutMs: ["2000", "3000"],
    requestTimeoutMs: ["20000", "40000"],
    idleTimeoutMs: ["1000", "9000"],
  };

  it.each(NUMERIC_SETTINGS.map((s) => [s.key, s] as const))("%s: flag > env > default", (_key, spec) => {
    const [flagValue, envValue] = VALUES[spec.key] ?? ["1", "2"];
    const both = ok(resolveSettings({ [spec.flag]: flagValue }, { [spec.env]: envValue }));
    expect(both[spec.key]).toBe(Number(flagValue));
    const envOnly = ok(resolveSettings({}, { [spec.env]: envValue }));
    expect(envOnly[spec.key]).toBe(Number(envValue));
    const neither = ok(resolveSettings({}, {}));
    expect(neither[spec.key]).toBe(DEFAULT_SETTINGS[spec.key]);
  });

  it("synchronous: flag > env > default, any case", () => {
    expect(ok(resolveSettings({ sync: "normal" }, { GEOKV_SYNC: "FULL" })).synchronous).toBe("NORMAL");
    expect(ok(resolveSettings({}, { GEOKV_SYNC: "Normal" })).synchronous).toBe("NORMAL");
    expect(ok(resolveSettings({}, {})).synchronous).toBe("FULL");
  });

  it("secrets and tokens come from the environment, verbatim", () => {
    const s = ok(resolveSettings({}, { GEOKV_CLUSTER_SECRET: " s3cret ", GEOKV_CLIENT_TOKEN: "ct", GEOKV_ADMIN_TOKEN: "at" }));
    expect(s).toMatchObject({ clusterSecret: [" s3cret "], clientToken: "ct", adminToken: "at" });
  });

  it("the cluster secret is a comma-separated list, in order (the first proves this node)", () => {
    expect(ok(resolveSettings({}, { GEOKV_CLUSTER_SECRET: "new,old" })).clusterSecret).toEqual(["new", "old"]);
    expect(ok(resolveSettings({}, { GEOKV_CLUSTER_SECRET: "only" })).clusterSecret).toEqual(["only"]);
  });

  it("the tokens file: flag > env > unset", () => {
    expect(ok(resolveSettings({ tokens: "/a.json" }, { GEOKV_TOKENS_FILE: "/b.json" })).tokensFile).toBe("/a.json");
    expect(ok(resolveSettings({}, { GEOKV_TOKENS_FILE: "/b.json" })).tokensFile).toBe("/b.json");
    expect(ok(resolveSettings({}, {})).tokensFile).toBeUndefined();
    expect(SETTINGS_FLAGS).toContain("tokens");
  });

  it("log level from the environment, any case", () => {
    expect(ok(resolveSettings({}, { GEOKV_LOG_LEVEL: "DEBUG" })).logLevel).toBe("debug");
  });

  it("an empty variable counts as unset (compose files write VAR=${VAR:-})", () => {
    const s = ok(resolveSettings({}, { GEOKV_HEARTBEAT_MS: "", GEOKV_SYNC: "", GEOKV_CLUSTER_SECRET: "", GEOKV_LOG_LEVEL: "" }));
    expect(s).toEqual(DEFAULT_SETTINGS);
  });

  it("surrounding spaces in a number are tolerated", () => {
    expect(ok(resolveSettings({}, { GEOKV_WRITE_WAIT_MS: " 1200\n" })).writeWaitMs).toBe(1200);
  });
});

describe("resolveSettings refuses", () => {
  const BAD_NUMBERS = ["abc", "1.5", "0", "-5", "1e3", "0x10", "100ms", ""];

  it.each(NUMERIC_SETTINGS.flatMap((s) => BAD_NUMBERS.map((v) => [s.flag, v, s] as const)))(
    "--%s %j, naming the flag",
    (_flag, value, spec) => {
      const e = err(resolveSettings({ [spec.flag]: value }, {}));
      expect(e).toEqual({ type: "SettingsError", source: `--${spec.flag}`, problem: `must be a positive integer, got ${JSON.stringify(value)}` });
    },
  );

  it.each(NUMERIC_SETTINGS.map((s) => [s.env, s] as const))("a bad %s, naming the variable", (_env, spec) => {
    const e = err(resolveSettings({}, { [spec.env]: "ten" }));
    expect(e).toEqual({ type: "SettingsError", source: spec.env, problem: 'must be a positive integer, got "ten"' });
  });

  it("nothing when the flag is fine and its variable is junk (the flag wins, the variable is not read)", () => {
    expect(ok(resolveSettings({ "heartbeat-ms": "50" }, { GEOKV_HEARTBEAT_MS: "junk" })).heartbeatMs).toBe(50);
  });

  it("a bad flag even when the env is fine", () => {
    expect(err(resolveSettings({ "heartbeat-ms": "junk" }, { GEOKV_HEARTBEAT_MS: "50" })).source).toBe("--heartbeat-ms");
  });

  it("a headers timeout longer than the request timeout, naming the one that was set", () => {
    expect(err(resolveSettings({ "headers-timeout-ms": "40000" }, {}))).toMatchObject({ source: "--headers-timeout-ms", problem: "the headers timeout (40000 ms) must not be longer than the request timeout (30000 ms)" });
    expect(err(resolveSettings({}, { GEOKV_REQUEST_TIMEOUT_MS: "5000" }))).toMatchObject({ source: "GEOKV_REQUEST_TIMEOUT_MS" });
    expect(ok(resolveSettings({ "headers-timeout-ms": "5000", "request-timeout-ms": "5000" }, {})).headersTimeoutMs).toBe(5000);
  });

  it("a live-doc send buffer smaller than one value", () => {
    expect(err(resolveSettings({ "ws-send-buffer-bytes": "1000" }, {}))).toMatchObject({ source: "--ws-send-buffer-bytes", problem: "the live-doc send buffer (1000 bytes) must hold at least one value of max-value-bytes (1048576)" });
  });

  it("values past their bound (a unit mistake)", () => {
    expect(err(resolveSettings({ "heartbeat-ms": "60001" }, {}))).toEqual({
      type: "SettingsError",
      source: "--heartbeat-ms",
      problem: "must be at most 60000, got 60001",
    });
    expect(err(resolveSettings({}, { GEOKV_MAX_VALUE_BYTES: String(64 * 1024 * 1024 + 1) }))).toMatchObject({
      source: "GEOKV_MAX_VALUE_BYTES",
      problem: "must be at most 67108864, got 67108865",
    });
  });

  it("a flag without a value", () => {
    expect(err(resolveSettings({ "write-wait-ms": true }, {}))).toEqual({ type: "SettingsError", source: "--write-wait-ms", problem: "needs a value" });
  });

  it("an election timeout not above the heartbeat, naming the election flag", () => {
    const e = err(resolveSettings({ "heartbeat-ms": "200", "election-timeout-ms": "200" }, {}));
    expect(e.source).toBe("--election-timeout-ms");
    expect(e.problem).toBe("must be greater than the heartbeat interval (200 ms from --heartbeat-ms), got 200");
  });

  it("an election timeout below the default heartbeat, naming the election variable", () => {
    const e = err(resolveSettings({}, { GEOKV_ELECTION_TIMEOUT_MS: "50" }));
    expect(e.source).toBe("GEOKV_ELECTION_TIMEOUT_MS");
    expect(e.problem).toBe("must be greater than the heartbeat interval (100 ms from the default), got 50");
  });

  it("a heartbeat above the default election timeout, naming the heartbeat variable", () => {
    const e = err(resolveSettings({}, { GEOKV_HEARTBEAT_MS: "600" }));
    expect(e.source).toBe("GEOKV_HEARTBEAT_MS");
    expect(e.problem).toBe("must be less than the election timeout (500 ms, the default), got 600");
  });

  it("a bad sync mode from flag or env", () => {
    expect(err(resolveSettings({ sync: "OFF" }, {}))).toEqual({ type: "SettingsError", source: "--sync", problem: 'must be one of FULL, NORMAL, got "OFF"' });
    expect(err(resolveSettings({}, { GEOKV_SYNC: "fast" }))).toMatchObject({ source: "GEOKV_SYNC" });
  });

  it("a bad log level", () => {
    expect(err(resolveSettings({}, { GEOKV_LOG_LEVEL: "verbose" }))).toEqual({
      type: "SettingsError",
      source: "GEOKV_LOG_LEVEL",
      problem: 'must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"',
    });
  });

  it("a live-doc queue smaller than the largest value, naming the setting that made it so", () => {
    expect(err(resolveSettings({ "yjs-queue-bytes": "1000" }, {}))).toEqual({
      type: "SettingsError",
      source: "--yjs-queue-bytes",
      problem: "the live-doc queue (1000 bytes) must hold at least one value of max-value-bytes (1048576)",
    });
    expect(err(resolveSettings({}, { GEOKV_MAX_VALUE_BYTES: "16777216" })).source).toBe("GEOKV_MAX_VALUE_BYTES");
  });

  it("a read token without a client token, or equal to it", () => {
    expect(err(resolveSettings({}, { GEOKV_READ_TOKEN: "r" }))).toEqual({ type: "SettingsError", source: "GEOKV_READ_TOKEN", problem: "needs GEOKV_CLIENT_TOKEN too (the read token only reads; something must be able to write)" });
    expect(err(resolveSettings({}, { GEOKV_READ_TOKEN: "same", GEOKV_CLIENT_TOKEN: "same" })).problem).toBe("must differ from GEOKV_CLIENT_TOKEN");
    expect(ok(resolveSettings({}, { GEOKV_READ_TOKEN: "r", GEOKV_CLIENT_TOKEN: "w" })).readToken).toBe("r");
  });

  it("an empty item in the cluster secret list, naming the item and never a secret", () => {
    for (const [raw, item, of] of [["new,,old", 2, 3], ["new,", 2, 2], [",old", 1, 2]] as const) {
      const e = err(resolveSettings({}, { GEOKV_CLUSTER_SECRET: raw }));
      expect(e.source).toBe("GEOKV_CLUSTER_SECRET");
      expect(e.problem).toBe(`item ${item} of ${of} is empty (a comma-separated list of secrets: the first proves this node, any listed one is accepted from peers)`);
      expect(e.problem).not.toMatch(/new|old/);
    }
  });

  it("and formats an error as one line naming the source", () => {
    expect(formatSettingsError(err(resolveSettings({ "ready-lag-ops": "0" }, {})))).toBe('--ready-lag-ops: must be a positive integer, got "0"');
  });
});
