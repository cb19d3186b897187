// Runtime settings (timings, limits, secrets) come from three places: a CLI
// flag, an environment variable, or a default (DESIGN.md, "Configuration").
// They are resolved and checked once at startup, so a typo in a container's
// environment stops the node with a message naming the variable instead of
// showing up later as election storms or refused writes.

/** SQLite durability: FULL syncs every commit, NORMAL may lose the last ones on power loss. */
export type SyncMode = "FULL" | "NORMAL";

/** pino's levels; "silent" turns logging off. */
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const SYNC_MODES: readonly SyncMode[] = ["FULL", "NORMAL"];

/** Everything a node needs to know that is not the cluster's shape. */
export interface Settings {
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
  readonly writeWaitMs: number;
  readonly maxValueBytes: number;
  readonly maxClockSkewMs: number;
  readonly readyLagOps: number;
  /** Byte budget of documents in memory: live rooms' merged updates and the LRU cache of idle ones. */
  readonly docCacheBytes: number;
  /** Bytes of a live doc's unwritten client edits held while the region has no leader. */
  readonly yjsQueueBytes: number;
  /** How long a live doc gathers client updates into one write. */
  readonly yjsBatchMs: number;
  /** Op-log rows kept before causally stable ones are compacted away. */
  readonly opLogRetainOps: number;
  /** A member silent this long stops holding compaction back (it bootstraps from a snapshot when it returns). */
  readonly memberForgetMs: number;
  /** The bounds of the node's queues and waits (src/core/admission.ts); past one, 503 overloaded. */
  readonly maxInflightRequests: number;
  readonly maxPendingWriteOps: number;
  readonly maxAckWaiters: number;
  readonly maxTokenWaiters: number;
  readonly maxLeaderWaiters: number;
  readonly maxWsClients: number;
  /** Bytes a live-document client may leave unread before it is closed (4504). */
  readonly wsSendBufferBytes: number;
  /** How long a client has to send a request's headers, and its whole request (slowloris). */
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept open. */
  readonly idleTimeoutMs: number;
  readonly synchronous: SyncMode;
  /**
   * Peers must prove knowledge of one in the handshake; unset means no peer
   * auth. GEOKV_CLUSTER_SECRET's comma-separated list: the first proves this
   * node, any one is accepted from peers (rotation by rolling restarts).
   */
  readonly clusterSecret: readonly string[] | undefined;
  /** Bearer token for the data API; unset means open. */
  readonly clientToken: string | undefined;
  /** Bearer token that only reads (GEOKV_READ_TOKEN; needs clientToken). */
  readonly readToken: string | undefined;
  /** Bearer token for /admin/* and /leadership/stepdown; unset means open. */
  readonly adminToken: string | undefined;
  /** The tokens file (--tokens / GEOKV_TOKENS_FILE): hashed client tokens with scopes; the node reads it at start. */
  readonly tokensFile: string | undefined;
  readonly logLevel: LogLevel;
}

/** An expected failure: a setting the node must refuse to start with. */
export interface SettingsError {
  readonly type: "SettingsError";
  /** The flag or variable to fix: "--heartbeat-ms" or "GEOKV_HEARTBEAT_MS". */
  readonly source: string;
  readonly problem: string;
}

/** The settings that are positive integers. */
export type NumericSetting = "heartbeatMs" | "electionTimeoutMs" | "writeWaitMs" | "maxValueBytes" | "maxClockSkewMs" | "readyLagOps" | "docCacheBytes" | "yjsQueueBytes" | "yjsBatchMs" | "opLogRetainOps" | "memberForgetMs"
  | "maxInflightRequests" | "maxPendingWriteOps" | "maxAckWaiters" | "maxTokenWaiters" | "maxLeaderWaiters" | "maxWsClients"
  | "wsSendBufferBytes" | "headersTimeoutMs" | "requestTimeoutMs" | "idleTimeoutMs";

/** How one numeric setting is named on the command line and in the environment. */
export interface NumericSpec {
  readonly key: NumericSetting;
  readonly flag: string;
  readonly env: string;
  readonly max: number;
  readonly help: string;
}

const HOUR_MS = 3_600_000;

/** The built-in defaults, as resolveSettings({}, {}) returns them. */
export const DEFAULT_SETTINGS: Settings = {
  heartbeatMs: 100,
  electionTimeoutMs: 500,
  writeWaitMs: 3000,
  maxValueBytes: 1_048_576,
  maxClockSkewMs: 500,
  readyLagOps: 1000,
  docCacheBytes: 64 * 1_048_576,
  yjsQueueBytes: 8 * 1_048_576,
  yjsBatchMs: 10,
  opLogRetainOps: 10_000,
  memberForgetMs: HOUR_MS,
  maxInflightRequests: 512,
  maxPendingWriteOps: 4096,
  maxAckWaiters: 4096,
  maxTokenWaiters: 1024,
  maxLeaderWaiters: 1024,
  maxWsClients: 1024,
  wsSendBufferBytes: 16 * 1_048_576,
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
};

/**
 * The numeric settings. Upper bounds exist because a value past them is a unit
 * mistake (minutes typed where milliseconds were meant), not a choice; 64 MiB
 * for values keeps a single op well inside a WebSocket frame and a batch.
 */
export const NUMERIC_SETTINGS: readonly NumericSpec[] = [
  { key: "heartbeatMs", flag: "heartbeat-ms", env: "GEOKV_HEARTBEAT_MS", max: 60_000, help: "leader heartbeat interval" },
  { key: "electionTimeoutMs", flag: "election-timeout-ms", env: "GEOKV_ELECTION_TIMEOUT_MS", max: HOUR_MS, help: "silence before a follower starts an election" },
  { key: "writeWaitMs", flag: "write-wait-ms", env: "GEOKV_WRITE_WAIT_MS", max: HOUR_MS, help: "how long a write waits for a leader before no_leader" },
  { key: "maxValueBytes", flag: "max-value-bytes", env: "GEOKV_MAX_VALUE_BYTES", max: 64 * 1_048_576, help: "largest value accepted" },
  { key: "maxClockSkewMs", flag: "max-clock-skew-ms", env: "GEOKV_MAX_CLOCK_SKEW_MS", max: HOUR_MS, help: "wall-clock distance to peers before writes are refused" },
  { key: "readyLagOps", flag: "ready-lag-ops", env: "GEOKV_READY_LAG_OPS", max: Number.MAX_SAFE_INTEGER, help: "ops behind the leader before /ready answers 503" },
  { key: "docCacheBytes", flag: "doc-cache-bytes", env: "GEOKV_DOC_CACHE_BYTES", max: 64 * 1024 * 1_048_576, help: "byte budget of live documents in memory" },
  { key: "yjsQueueBytes", flag: "yjs-queue-bytes", env: "GEOKV_YJS_QUEUE_BYTES", max: 1024 * 1_048_576, help: "unwritten edits a live doc holds without a leader" },
  { key: "yjsBatchMs", flag: "yjs-batch-ms", env: "GEOKV_YJS_BATCH_MS", max: 60_000, help: "how long a live doc gathers edits into one write" },
  { key: "opLogRetainOps", flag: "op-log-retain-ops", env: "GEOKV_OP_LOG_RETAIN_OPS", max: Number.MAX_SAFE_INTEGER, help: "op-log rows kept before stable ones are compacted" },
  { key: "memberForgetMs", flag: "member-forget-ms", env: "GEOKV_MEMBER_FORGET_MS", max: 30 * 24 * HOUR_MS, help: "silence after which a member stops holding compaction back" },
  { key: "maxInflightRequests", flag: "max-inflight-requests", env: "GEOKV_MAX_INFLIGHT_REQUESTS", max: 1_000_000, help: "client requests answered at once before 503 overloaded" },
  { key: "maxPendingWriteOps", flag: "max-pending-write-ops", env: "GEOKV_MAX_PENDING_WRITE_OPS", max: 1_000_000, help: "client write ops waiting for a commit before 503 overloaded" },
  { key: "maxAckWaiters", flag: "max-ack-waiters", env: "GEOKV_MAX_ACK_WAITERS", max: 1_000_000, help: "writes waiting for ack=majority/all before 503 overloaded" },
  { key: "maxTokenWaiters", flag: "max-token-waiters", env: "GEOKV_MAX_TOKEN_WAITERS", max: 1_000_000, help: "reads waiting for their X-Geokv-Token before 503 overloaded" },
  { key: "maxLeaderWaiters", flag: "max-leader-waiters", env: "GEOKV_MAX_LEADER_WAITERS", max: 1_000_000, help: "writes waiting for a leader before 503 overloaded" },
  { key: "maxWsClients", flag: "max-ws-clients", env: "GEOKV_MAX_WS_CLIENTS", max: 1_000_000, help: "live-document WebSocket clients before 503 overloaded" },
  { key: "wsSendBufferBytes", flag: "ws-send-buffer-bytes", env: "GEOKV_WS_SEND_BUFFER_BYTES", max: 1024 * 1_048_576, help: "bytes a live-document client may leave unread before it is closed" },
  { key: "headersTimeoutMs", flag: "headers-timeout-ms", env: "GEOKV_HEADERS_TIMEOUT_MS", max: HOUR_MS, help: "time a client has to send a request's headers (408 after)" },
  { key: "requestTimeoutMs", flag: "request-timeout-ms", env: "GEOKV_REQUEST_TIMEOUT_MS", max: HOUR_MS, help: "time a client has to send a whole request (408 after)" },
  { key: "idleTimeoutMs", flag: "idle-timeout-ms", env: "GEOKV_IDLE_TIMEOUT_MS", max: HOUR_MS, help: "time an idle keep-alive connection stays open" },
];

/** The sync-mode setting, the one non-numeric setting with a flag. */
export const SYNC_SETTING = { flag: "sync", env: "GEOKV_SYNC", help: "SQLite synchronous mode: FULL or NORMAL" } as const;

/** The tokens-file setting: a path, read by the node at start. */
export const TOKENS_SETTING = { flag: "tokens", env: "GEOKV_TOKENS_FILE", help: "JSON file of hashed client tokens with scopes" } as const;

/** Every flag resolveSettings reads, without the leading "--" (the CLI declares these). */
export const SETTINGS_FLAGS: readonly string[] = [...NUMERIC_SETTINGS.map((s) => s.flag), SYNC_SETTING.flag, TOKENS_SETTING.flag];

/** True when a resolver result is an error rather than settings. */
export function isSettingsError(v: unknown): v is SettingsError {
  return typeof v === "object" && v !== null && (v as { type?: unknown }).type === "SettingsError";
}

/** One line for logs and stderr: `<flag or variable>: <problem>`. */
export function formatSettingsError(e: SettingsError): string {
  return `${e.source}: ${e.problem}`;
}

function settingsError(source: string, problem: string): SettingsError {
  return { type: "SettingsError", source, problem };
}

/** A raw value and where it came from, so errors can name the right place. */
interface Raw {
  readonly value: string;
  readonly source: string;
}

/**
 * The flag if given, else the variable if set and not empty, else undefined.
 * An empty variable counts as unset: compose files write `VAR=${VAR:-}`.
 */
function pick(flags: Record<string, string | boolean>, env: NodeJS.ProcessEnv, flag: string | undefined, name: string): Raw | SettingsError | undefined {
  if (flag !== undefined && Object.hasOwn(flags, flag)) {
    const v = flags[flag];
    if (typeof v !== "string") return settingsError(`--${flag}`, "needs a value");
    return { value: v, source: `--${flag}` };
  }
  const e = env[name];
  if (e === undefined || e === "") return undefined;
  return { value: e, source: name };
}

function parseCount(raw: Raw, max: number): number | SettingsError {
  const text = raw.value.trim();
  // Digits only: "1e3", "0x10", "1.5" and "100ms" are all refused rather than
  // guessed at, since a misread timing is worse than a refusal to start.
  if (!/^\d+$/.test(text)) return settingsError(raw.source, `must be a positive integer, got ${JSON.stringify(raw.value)}`);
  const n = Number(text);
  if (n < 1) return settingsError(raw.source, `must be a positive integer, got ${JSON.stringify(raw.value)}`);
  if (n > max) return settingsError(raw.source, `must be at most ${max}, got ${text}`);
  return n;
}

function parseChoice<T extends string>(raw: Raw, choices: readonly T[], normalize: (s: string) => string): T | SettingsError {
  const text = normalize(raw.value.trim());
  const found = choices.find((c) => c === text);
  if (found === undefined) {
    return settingsError(raw.source, `must be one of ${choices.join(", ")}, got ${JSON.stringify(raw.value)}`);
  }
  return found;
}

/**
 * A comma-separated list of secrets, each taken verbatim. An empty item
 * ("a,,b", a trailing comma) is refused: it is a typo, and a rotation step
 * built on a typo would refuse links. The error names the item, never a secret.
 */
function secretList(source: string, raw: string | undefined): readonly string[] | undefined | SettingsError {
  if (raw === undefined) return undefined;
  const items = raw.split(",");
  const empty = items.findIndex((x) => x === "");
  if (empty >= 0) return settingsError(source, `item ${empty + 1} of ${items.length} is empty (a comma-separated list of secrets: the first proves this node, any listed one is accepted from peers)`);
  return items;
}

/** Resolves every setting: flag (key without "--") wins over env, env over default. */
export function resolveSettings(flags: Record<string, string | boolean>, env: NodeJS.ProcessEnv): Settings | SettingsError {
  const numbers: Record<NumericSetting, number> = {
    heartbeatMs: DEFAULT_SETTINGS.heartbeatMs,
    electionTimeoutMs: DEFAULT_SETTINGS.electionTimeoutMs,
    writeWaitMs: DEFAULT_SETTINGS.writeWaitMs,
    maxValueBytes: DEFAULT_SETTINGS.maxValueBytes,
    maxClockSkewMs: DEFAULT_SETTINGS.maxClockSkewMs,
    readyLagOps: DEFAULT_SETTINGS.readyLagOps,
    docCacheBytes: DEFAULT_SETTINGS.docCacheBytes,
    yjsQueueBytes: DEFAULT_SETTINGS.yjsQueueBytes,
    yjsBatchMs: DEFAULT_SETTINGS.yjsBatchMs,
    opLogRetainOps: DEFAULT_SETTINGS.opLogRetainOps,
    memberForgetMs: DEFAULT_SETTINGS.memberForgetMs,
    maxInflightRequests: DEFAULT_SETTINGS.maxInflightRequests,
    maxPendingWriteOps: DEFAULT_SETTINGS.maxPendingWriteOps,
    maxAckWaiters: DEFAULT_SETTINGS.maxAckWaiters,
    maxTokenWaiters: DEFAULT_SETTINGS.maxTokenWaiters,
    maxLeaderWaiters: DEFAULT_SETTINGS.maxLeaderWaiters,
    maxWsClients: DEFAULT_SETTINGS.maxWsClients,
    wsSendBufferBytes: DEFAULT_SETTINGS.wsSendBufferBytes,
    headersTimeoutMs: DEFAULT_SETTINGS.headersTimeoutMs,
    requestTimeoutMs: DEFAULT_SETTINGS.requestTimeoutMs,
    idleTimeoutMs: DEFAULT_SETTINGS.idleTimeoutMs,
  };
  const sourceOf = new Map<NumericSetting, string>();
  for (const spec of NUMERIC_SETTINGS) {
    const raw = pick(flags, env, spec.flag, spec.env);
    if (raw === undefined) continue;
    if (isSettingsError(raw)) return raw;
    const n = parseCount(raw, spec.max);
    if (isSettingsError(n)) return n;
    numbers[spec.key] = n;
    sourceOf.set(spec.key, raw.source);
  }

  // A follower that expects a heartbeat more often than one is sent suspects a
  // healthy leader on every tick: an election storm by configuration.
  if (numbers.electionTimeoutMs <= numbers.heartbeatMs) {
    const electionSource = sourceOf.get("electionTimeoutMs");
    const heartbeatSource = sourceOf.get("heartbeatMs") ?? "the default";
    if (electionSource !== undefined) {
      return settingsError(electionSource, `must be greater than the heartbeat interval (${numbers.heartbeatMs} ms from ${heartbeatSource}), got ${numbers.electionTimeoutMs}`);
    }
    return settingsError(heartbeatSource, `must be less than the election timeout (${numbers.electionTimeoutMs} ms, the default), got ${numbers.heartbeatMs}`);
  }

  // A queue smaller than the largest update would refuse that update on every try.
  if (numbers.yjsQueueBytes < numbers.maxValueBytes) {
    return settingsError(sourceOf.get("yjsQueueBytes") ?? sourceOf.get("maxValueBytes") ?? "--yjs-queue-bytes", `the live-doc queue (${numbers.yjsQueueBytes} bytes) must hold at least one value of max-value-bytes (${numbers.maxValueBytes})`);
  }

  // Node refuses a server whose headers may take longer than the whole request.
  if (numbers.headersTimeoutMs > numbers.requestTimeoutMs) {
    return settingsError(sourceOf.get("headersTimeoutMs") ?? sourceOf.get("requestTimeoutMs") ?? "--headers-timeout-ms", `the headers timeout (${numbers.headersTimeoutMs} ms) must not be longer than the request timeout (${numbers.requestTimeoutMs} ms)`);
  }

  // A send buffer smaller than the largest value would close every client that is sent one.
  if (numbers.wsSendBufferBytes < numbers.maxValueBytes) {
    return settingsError(sourceOf.get("wsSendBufferBytes") ?? sourceOf.get("maxValueBytes") ?? "--ws-send-buffer-bytes", `the live-doc send buffer (${numbers.wsSendBufferBytes} bytes) must hold at least one value of max-value-bytes (${numbers.maxValueBytes})`);
  }

  let synchronous: SyncMode = DEFAULT_SETTINGS.synchronous;
  const syncRaw = pick(flags, env, SYNC_SETTING.flag, SYNC_SETTING.env);
  if (isSettingsError(syncRaw)) return syncRaw;
  if (syncRaw !== undefined) {
    const s = parseChoice(syncRaw, SYNC_MODES, (x) => x.toUpperCase());
    if (isSettingsError(s)) return s;
    synchronous = s;
  }

  let logLevel: LogLevel = DEFAULT_SETTINGS.logLevel;
  const levelRaw = pick(flags, env, undefined, "GEOKV_LOG_LEVEL");
  if (isSettingsError(levelRaw)) return levelRaw;
  if (levelRaw !== undefined) {
    const l = parseChoice(levelRaw, LOG_LEVELS, (x) => x.toLowerCase());
    if (isSettingsError(l)) return l;
    logLevel = l;
  }

  // Secrets are taken verbatim (never trimmed, never echoed in errors).
  const secret = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === "" ? undefined : v;
  };

  const clientToken = secret("GEOKV_CLIENT_TOKEN");
  const readToken = secret("GEOKV_READ_TOKEN");
  // A read token alone would lock every writer out, this node's own forwarded writes included.
  if (readToken !== undefined && clientToken === undefined) return settingsError("GEOKV_READ_TOKEN", "needs GEOKV_CLIENT_TOKEN too (the read token only reads; something must be able to write)");
  if (readToken !== undefined && readToken === clientToken) return settingsError("GEOKV_READ_TOKEN", "must differ from GEOKV_CLIENT_TOKEN");

  const clusterSecret = secretList("GEOKV_CLUSTER_SECRET", secret("GEOKV_CLUSTER_SECRET"));
  if (isSettingsError(clusterSecret)) return clusterSecret;

  const tokensRaw = pick(flags, env, TOKENS_SETTING.flag, TOKENS_SETTING.env);
  if (isSettingsError(tokensRaw)) return tokensRaw;

  return {
    ...numbers,
    synchronous,
    clusterSecret,
    clientToken,
    readToken,
    adminToken: secret("GEOKV_ADMIN_TOKEN"),
    tokensFile: tokensRaw?.value,
    logLevel,
  };
}
