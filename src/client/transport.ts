// One SDK call as HTTP: picks a node, sends, and retries what is safe to
// retry within the call's deadline. It is the only part of the SDK that does
// I/O, so every call gets the same rules: an Idempotency-Key per write, kept
// across all of that write's retries, so a retry after a lost answer is
// replayed, not applied twice; the newest causal token on every data request,
// so reads see this client's writes on any node of the region; backoff with
// full jitter, never shorter than a server's Retry-After; no retry of a 4xx.

import { randomUUID } from "node:crypto";
import { fullJitterDelayMs, retryAfterMs, type BackoffPolicy } from "./backoff.js";
import { errorFromAnswer, GeokvError } from "./errors.js";
import { NodeSet } from "./nodes.js";

/** Bound on attempts per call on top of the deadline, so a custom `random` returning 0 cannot spin hot. */
const ATTEMPTS_MAX = 200;
/** A retry is only worth starting with at least this much of the deadline left. */
const ATTEMPT_MS_MIN = 20;
/** Statuses that mean "not now, maybe elsewhere": the request was not applied, or is safe to repeat. */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

export interface TransportOptions {
  readonly nodes: readonly string[];
  /** Deadline of one call, retries included. */
  readonly timeoutMs: number;
  /** Bound on one attempt, so a node that accepts but never answers cannot take the whole deadline. */
  readonly attemptTimeoutMs: number;
  /** GEOKV_CLIENT_TOKEN: sent as `Authorization: Bearer`. */
  readonly authToken?: string | undefined;
  /** A causal token to start from (handed over from another client or session). */
  readonly causalToken?: string | undefined;
  readonly random: () => number;
  readonly fetch: typeof fetch;
  readonly backoff: BackoffPolicy;
}

/** One logical request of the API. */
export interface RequestSpec {
  readonly method: "GET" | "PUT" | "POST" | "DELETE";
  /** Path and query, already URL-encoded. */
  readonly path: string;
  readonly body?: string | Uint8Array;
  readonly contentType?: string;
  /** A write: carries an Idempotency-Key, and its answer's token becomes the causal token. */
  readonly write: boolean;
  /** A data request: carries the causal token (not /status). */
  readonly causal: boolean;
  /** Error statuses the caller turns into values itself (404 for a missing kv key). */
  readonly passStatuses?: readonly number[];
}

/** A non-error (or passed-through) answer. */
export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Uint8Array;
  /** The node that answered: its id when it said, else its URL. */
  readonly node: string;
}

type Outcome =
  | { readonly kind: "answer"; readonly answer: Answer }
  | { readonly kind: "fatal"; readonly error: GeokvError }
  | { readonly kind: "retry"; readonly error: GeokvError; readonly waitMinMs: number; readonly noAnswer: boolean };

/** The request loop shared by every call of one client. */
export class Transport {
  private readonly nodes: NodeSet;
  private readonly o: TransportOptions;
  private causal: string | null;
  private readonly closer = new AbortController();

  constructor(o: TransportOptions) {
    if (!(o.timeoutMs > 0)) throw new Error(`timeoutMs must be positive, got ${o.timeoutMs}`);
    this.o = o;
    this.nodes = new NodeSet(o.nodes.map((u) => u.replace(/\/+$/, "")));
    this.causal = o.causalToken ?? null;
  }

  /** The newest causal token this client holds (from its last write, or as given). */
  causalToken(): string | null {
    return this.causal;
  }

  /** The leader id as last reported by a node; null while unknown. */
  leader(): string | null {
    return this.nodes.leader();
  }

  /** Aborts calls under way (they fail with "unavailable") and refuses new ones. */
  close(): void {
    this.closer.abort();
  }

  /** Sends `spec`, retrying within the deadline; resolves with the answer or throws a GeokvError. */
  async request(spec: RequestSpec): Promise<Answer> {
    const started = performance.now();
    const deadline = started + this.o.timeoutMs;
    // One key for every attempt of this write: that is what makes a retry after a lost answer safe.
    const idempotencyKey = spec.write ? randomUUID() : undefined;
    let i = this.nodes.first(spec.write);
    let last: GeokvError | undefined;
    for (let attempt = 0; ; attempt++) {
      if (this.closer.signal.aborted) throw this.closedError(last);
      const left = deadline - performance.now();
      if (left <= 0 || attempt >= ATTEMPTS_MAX) throw this.exhausted(last, attempt, started);
      const outcome = await this.attempt(i, spec, idempotencyKey, Math.min(this.o.attemptTimeoutMs, left));
      if (outcome.kind === "answer") return outcome.answer;
      if (outcome.kind === "fatal") throw outcome.error;
      last = outcome.error;
      if (this.closer.signal.aborted) throw this.closedError(last);
      if (outcome.noAnswer) this.nodes.unreachable(i);
      i = this.nodes.next(i);
      const room = deadline - performance.now() - ATTEMPT_MS_MIN;
      // Retry-After is a floor: coming back earlier would only be refused again.
      if (outcome.waitMinMs > room) throw this.exhausted(last, attempt + 1, started);
      const waitMs = Math.min(room, Math.max(outcome.waitMinMs, fullJitterDelayMs(attempt, this.o.backoff, this.o.random)));
      await this.sleep(waitMs);
    }
  }

  private async attempt(i: number, spec: RequestSpec, idempotencyKey: string | undefined, budgetMs: number): Promise<Outcome> {
    const base = this.nodes.urls[i] as string;
    const headers: Record<string, string> = {};
    if (spec.contentType !== undefined) headers["content-type"] = spec.contentType;
    if (this.o.authToken !== undefined) headers.authorization = `Bearer ${this.o.authToken}`;
    if (idempotencyKey !== undefined) headers["idempotency-key"] = idempotencyKey;
    if (spec.causal && this.causal !== null) headers["x-geokv-token"] = this.causal;
    // One controller per attempt, aborted by its own timer or by close(). Not
    // AbortSignal.any: it ties every attempt's signal to the client-lifetime
    // close signal, which some Node 20 releases never let go of.
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, Math.max(1, Math.floor(budgetMs)));
    const onClose = () => ctl.abort();
    this.closer.signal.addEventListener("abort", onClose, { once: true });
    let res: Response;
    let body: Uint8Array;
    try {
      res = await this.o.fetch(`${base}${spec.path}`, { method: spec.method, headers, body: spec.body as RequestInit["body"], signal: ctl.signal });
      // Inside the try: a connection cut while the body streams is as much a lost answer as a refused one.
      body = new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      const node = this.nodes.idOf(i) ?? base;
      const why = timedOut ? `no answer within ${Math.round(budgetMs)} ms` : describeNetworkError(err);
      const error = new GeokvError({ code: "unavailable", message: `${base} did not answer: ${why}`, status: null, node });
      return { kind: "retry", error, waitMinMs: 0, noAnswer: true };
    } finally {
      clearTimeout(timer);
      this.closer.signal.removeEventListener("abort", onClose);
    }
    const node = res.headers.get("x-geokv-node") || this.nodes.idOf(i) || base;
    const ok = res.status >= 200 && res.status < 300;
    if (ok || spec.passStatuses?.includes(res.status)) {
      this.nodes.answered(i, res.headers, { usable: true, wroteLocally: ok && spec.write });
      if (ok && spec.write) this.takeToken(res.headers, body);
      return { kind: "answer", answer: { status: res.status, headers: res.headers, body, node } };
    }
    const error = errorFromAnswer(res.status, new TextDecoder().decode(body), node);
    if (RETRYABLE_STATUSES.has(res.status)) {
      this.nodes.answered(i, res.headers, { usable: false, wroteLocally: false });
      return { kind: "retry", error, waitMinMs: retryAfterMs(res.headers.get("retry-after"), Date.now()) ?? 0, noAnswer: false };
    }
    // The node served the request and refused it; asking again, here or elsewhere, gets the same answer.
    this.nodes.answered(i, res.headers, { usable: true, wroteLocally: false });
    return { kind: "fatal", error };
  }

  /**
   * A write's token supersedes the one held: a request carries one token,
   * and the newest write is the one a later read is most likely to miss.
   */
  private takeToken(headers: Headers, body: Uint8Array): void {
    const fromHeader = headers.get("x-geokv-token");
    if (fromHeader !== null && fromHeader !== "") {
      this.causal = fromHeader;
      return;
    }
    try {
      const t = (JSON.parse(new TextDecoder().decode(body)) as { token?: unknown }).token;
      if (typeof t === "string" && t !== "") this.causal = t;
    } catch {
      // No token to take; the held one still stands.
    }
  }

  private exhausted(last: GeokvError | undefined, attempts: number, started: number): GeokvError {
    const ms = Math.round(performance.now() - started);
    const why = last ? `; last: ${last.code}: ${last.message}` : "";
    return new GeokvError({
      code: "unavailable",
      message: `no usable answer from ${this.nodes.urls.join(", ")} after ${attempts} attempt(s) in ${ms} ms (deadline ${this.o.timeoutMs} ms)${why}`,
      status: last?.status ?? null,
      node: last?.node ?? null,
      cause: last,
    });
  }

  private closedError(last: GeokvError | undefined): GeokvError {
    return new GeokvError({ code: "unavailable", message: "the client was closed", status: null, node: null, cause: last });
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.closer.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.closer.signal.addEventListener("abort", done, { once: true });
    });
  }
}

/** "connect ECONNREFUSED 127.0.0.1:7101" rather than undici's bare "fetch failed". */
function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === "AbortError") return "aborted";
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code !== undefined && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
  }
  return err.message;
}
