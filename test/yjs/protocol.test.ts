// GET /yjs/:room on one real node (SQLite file, HTTP server on loopback):
// the protocol's messages, tokens (?token=, Sec-WebSocket-Protocol, the
// read-only token), presence throttling, and bad input: a malformed
// frame, an update yjs rejects, an oversized message and 2,000 random frames
// each close only their own connection with a reason and change nothing.

import fc from "fast-check";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import * as awarenessProtocol from "y-protocols/awareness";
import * as Y from "yjs";
import { docDigest, validateDocUpdate } from "../../src/core/crdt/ydoc.js";
import { awarenessUpdateProblem } from "../../src/core/docs/awareness.js";
import { startTestNode, type TestNode } from "../http/helpers.js";
import { waitFor } from "../support/cluster-files.js";
import { editor, synced, type Editor } from "./support.js";

const SYNC = 0;
const AWARENESS = 1;
const AUTH = 2;
const QUERY_AWARENESS = 3;

/** A raw protocol client: every frame it got, and how its connection closed. */
interface Raw {
  readonly ws: WebSocket;
  readonly got: Uint8Array[];
  readonly closed: Promise<{ code: number; reason: string }>;
  send(message: Uint8Array): void;
}

function raw(url: string, room: string, o: { query?: string; protocols?: string[] } = {}): Promise<Raw> {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/yjs/${room}${o.query ?? ""}`, o.protocols ?? []);
  const got: Uint8Array[] = [];
  ws.on("message", (data: Buffer) => got.push(new Uint8Array(data)));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, got, closed, send: (m) => ws.send(m) }));
    ws.once("error", reject);
  });
}

function message(...parts: Array<{ uint: number } | { bytes: Uint8Array } | { str: string }>): Uint8Array {
  const e = encoding.createEncoder();
  for (const p of parts) {
    if ("uint" in p) encoding.writeVarUint(e, p.uint);
    else if ("bytes" in p) encoding.writeVarUint8Array(e, p.bytes);
    else encoding.writeVarString(e, p.str);
  }
  return encoding.toUint8Array(e);
}

const updateMessage = (u: Uint8Array) => message({ uint: SYNC }, { uint: 2 }, { bytes: u });

/** An update that inserts `s` into the Y.Text "t" of a fresh doc with client id `client`. */
function textUpdate(s: string, client = 7): Uint8Array {
  const d = new Y.Doc();
  d.clientID = client;
  d.getText("t").insert(0, s);
  const u = Y.encodeStateAsUpdate(d);
  d.destroy();
  return u;
}

async function docState(url: string, room: string, headers: Record<string, string> = {}): Promise<Uint8Array> {
  const res = await fetch(`${url}/docs/${encodeURIComponent(room)}`, { headers });
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

function textOf(state: Uint8Array): string {
  const d = new Y.Doc();
  Y.applyUpdate(d, state);
  const s = d.getText("t").toString();
  d.destroy();
  return s;
}

const editors: Editor[] = [];
function open(url: string, room: string, o: Parameters<typeof editor>[2] = {}): Editor {
  const e = editor(url, room, o);
  editors.push(e);
  return e;
}
afterEach(() => {
  for (const e of editors.splice(0)) e.destroy();
});

describe("the protocol on one node", () => {
  let n: TestNode;
  beforeAll(async () => {
    n = await startTestNode({ flags: { "max-value-bytes": "4096" } });
  });
  afterAll(async () => n?.close());

  it("sends its sync step 1 first, answers a client's step 1 with what the client lacks, and writes the client's updates", async () => {
    const c = await raw(n.url, "proto");
    await waitFor("the node's sync step 1", () => c.got.length >= 1);
    const first = decoding.createDecoder(c.got[0] as Uint8Array);
    expect(decoding.readVarUint(first)).toBe(SYNC);
    expect(decoding.readVarUint(first)).toBe(0);
    c.send(updateMessage(textUpdate("hello")));
    await waitFor("the update written", async () => textOf(await docState(n.url, "proto")) === "hello");
    // A client that has nothing asks with an empty state vector and gets the whole doc in step 2.
    const d = await raw(n.url, "proto");
    d.send(message({ uint: SYNC }, { uint: 0 }, { bytes: Y.encodeStateVector(new Y.Doc()) }));
    await waitFor("step 2", () => d.got.some((m) => m[0] === SYNC && m[1] === 1));
    const step2 = decoding.createDecoder(d.got.find((m) => m[0] === SYNC && m[1] === 1) as Uint8Array);
    decoding.readVarUint(step2);
    decoding.readVarUint(step2);
    expect(textOf(decoding.readVarUint8Array(step2))).toBe("hello");
    // A client that already has it gets an update with nothing new.
    d.send(message({ uint: SYNC }, { uint: 0 }, { bytes: Y.encodeStateVectorFromUpdate(textUpdate("hello")) }));
    await waitFor("second step 2", () => d.got.filter((m) => m[0] === SYNC && m[1] === 1).length === 2);
    c.ws.close();
    d.ws.close();
  });

  it("relays an update to the room's other clients at once, and not back to its sender", async () => {
    const a = await raw(n.url, "relay");
    const b = await raw(n.url, "relay");
    await waitFor("both got step 1", () => a.got.length >= 1 && b.got.length >= 1);
    const before = a.got.length;
    a.send(updateMessage(textUpdate("x", 11)));
    await waitFor("b got the update", () => b.got.some((m) => m[0] === SYNC && m[1] === 2));
    // The commit's echo is not sent again to anyone in this room.
    await waitFor("written", async () => textOf(await docState(n.url, "relay")) === "x");
    const c = await raw(n.url, "relay");
    await waitFor("c got step 1", () => c.got.length >= 1);
    expect(a.got.length).toBe(before);
    expect(b.got.filter((m) => m[0] === SYNC && m[1] === 2)).toHaveLength(1);
    for (const x of [a, b, c]) x.ws.close();
  });

  it("relays presence coalesced per client: many changes in a burst reach the others as a few messages with the latest state", async () => {
    const a = await raw(n.url, "presence");
    const b = await raw(n.url, "presence");
    await waitFor("both got step 1", () => a.got.length >= 1 && b.got.length >= 1);
    const host = new Y.Doc();
    const aw = new awarenessProtocol.Awareness(host);
    for (let i = 0; i < 50; i++) {
      aw.setLocalState({ cursor: i });
      a.send(message({ uint: AWARENESS }, { bytes: awarenessProtocol.encodeAwarenessUpdate(aw, [host.clientID]) }));
    }
    const seen = new awarenessProtocol.Awareness(new Y.Doc());
    const presenceOf = () => {
      for (const m of b.got.filter((x) => x[0] === AWARENESS)) {
        const d = decoding.createDecoder(m);
        decoding.readVarUint(d);
        awarenessProtocol.applyAwarenessUpdate(seen, decoding.readVarUint8Array(d), "test");
      }
      return seen.getStates().get(host.clientID) as { cursor?: number } | undefined;
    };
    await waitFor("b sees the last cursor", () => presenceOf()?.cursor === 49);
    const messages = b.got.filter((x) => x[0] === AWARENESS).length;
    expect(messages).toBeLessThan(10);
    // A query is answered with every state the node knows.
    b.send(message({ uint: QUERY_AWARENESS }));
    await waitFor("the answer to the query", () => b.got.filter((x) => x[0] === AWARENESS).length > messages);
    // The client leaves: its presence is removed at the others.
    a.ws.close();
    await waitFor("a's presence removed at b", () => {
      presenceOf();
      return !seen.getStates().has(host.clientID);
    });
    aw.destroy();
    seen.destroy();
    b.ws.close();
  });

  it("closes only the connection that sent a malformed frame, a rejected update, an oversized update or a text frame, with a reason, and changes nothing", async () => {
    const good = open(n.url, "bad");
    await synced(good);
    good.text.insert(0, "intact");
    await waitFor("written", async () => textOf(await docState(n.url, "bad")) === "intact");
    const before = await docState(n.url, "bad");

    const cases: Array<{ what: string; frame: Uint8Array | string; code: number; reason: RegExp }> = [
      { what: "truncated lengths", frame: Uint8Array.of(SYNC, 2, 200, 1), code: 4400, reason: /malformed message/ },
      { what: "bytes after the message", frame: Uint8Array.of(...message({ uint: QUERY_AWARENESS }), 9), code: 4400, reason: /one message per frame/ },
      { what: "unknown message type", frame: message({ uint: 77 }), code: 4400, reason: /unknown message type 77/ },
      { what: "unknown sync type", frame: message({ uint: SYNC }, { uint: 9 }, { bytes: new Uint8Array(0) }), code: 4400, reason: /unknown sync message type/ },
      { what: "an update yjs rejects", frame: updateMessage(Uint8Array.of(1, 1, 0xff, 0xff, 0xff, 0x0f, 0, 9, 9, 9)), code: 4400, reason: /yjs rejected the update/ },
      { what: "a bad state vector", frame: message({ uint: SYNC }, { uint: 0 }, { bytes: Uint8Array.of(5, 1) }), code: 4400, reason: /no valid state vector/ },
      { what: "bad awareness JSON", frame: message({ uint: AWARENESS }, { bytes: message({ uint: 1 }, { uint: 5 }, { uint: 1 }, { str: "{nope" }) }), code: 4400, reason: /malformed awareness update/ },
      { what: "an oversized update", frame: updateMessage(textUpdate("y".repeat(4095))), code: 1009, reason: /update of \d+ bytes is over max-value-bytes \(4096\)/ },
      { what: "a frame over the payload bound", frame: new Uint8Array(64 * 1024), code: 1009, reason: /a message over 4128 bytes/ },
      { what: "a text frame", frame: "hello", code: 4400, reason: /text frames/ },
    ];
    for (const k of cases) {
      const c = await raw(n.url, "bad");
      c.send(k.frame as Uint8Array);
      const closed = await c.closed;
      expect({ what: k.what, code: closed.code }).toEqual({ what: k.what, code: k.code });
      expect(closed.reason, k.what).toMatch(k.reason);
    }
    // The document is as it was, and the well-behaved client is still connected and editing.
    expect(Buffer.from(await docState(n.url, "bad")).equals(Buffer.from(before))).toBe(true);
    expect(good.provider.wsconnected).toBe(true);
    good.text.insert(6, "!");
    await waitFor("still editing", async () => textOf(await docState(n.url, "bad")) === "intact!");
  });

  it("refuses an update that is valid alone but breaks the doc it goes to, over /yjs and over HTTP, and the doc still loads", async () => {
    const state = Uint8Array.from(Buffer.from("01020100040101740b68656c6c6f20776f726c642801016d0161017d0100", "hex"));
    const bad = Uint8Array.from(Buffer.from("01010200c402040105072c2074686572650101010002", "hex"));
    expect((await fetch(`${n.url}/docs/poison/updates`, { method: "POST", body: state, headers: { "content-type": "application/octet-stream" } })).status).toBe(200);
    const c = await raw(n.url, "poison");
    c.send(updateMessage(bad));
    const closed = await c.closed;
    expect(closed.code).toBe(4400);
    expect(closed.reason).toMatch(/rejected the update against the document/);
    const http = await fetch(`${n.url}/docs/poison/updates`, { method: "POST", body: bad, headers: { "content-type": "application/octet-stream" } });
    expect(http.status).toBe(400);
    expect(((await http.json()) as { error: { message: string } }).error.message).toMatch(/does not apply to this doc/);
    expect(textOf(await docState(n.url, "poison"))).toBe("hello world");
    // A client can still open it.
    const e = open(n.url, "poison");
    await synced(e);
    expect(e.text.toString()).toBe("hello world");
  });

  it("serves a room named as y-websocket sends it, unencoded", async () => {
    const pct = await raw(n.url, "50%");
    pct.send(updateMessage(textUpdate("percent")));
    await waitFor("written", async () => textOf(await docState(n.url, "50%")) === "percent");
    pct.ws.close();
  });

  it("2,000 random frames: each bad one closes its own connection with a reason, the valid ones apply, and the doc ends as a reference says", async () => {
    // Frames shaped like the protocol's, with random or mutated parts, so they get past the first byte.
    const valid = textUpdate("seed", 3);
    const mutate = fc.tuple(fc.constant(valid), fc.nat(valid.length), fc.integer({ min: 0, max: 255 }), fc.nat(valid.length)).map(([u, at, b, cut]) => {
      const m = u.slice(0, Math.max(1, cut));
      if (at < m.length) m[at] = b;
      return m;
    });
    const payload = fc.oneof(fc.uint8Array({ maxLength: 40 }), mutate);
    const frame = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 40 }),
      fc.tuple(fc.constantFrom(0, 1, 2), payload).map(([kind, p]) => message({ uint: SYNC }, { uint: kind }, { bytes: p })),
      payload.map((p) => message({ uint: AWARENESS }, { bytes: p })),
      fc.constant(message({ uint: QUERY_AWARENESS })),
      fc.tuple(fc.nat(4), fc.uint8Array({ maxLength: 8 })).map(([t, rest]) => Uint8Array.of(t, ...rest)),
    );
    const frames = fc.sample(frame, { numRuns: 2000, seed: 20261202 });

    // The reference: a frame is valid when its framing reads exactly, and then its update (if any) is one yjs takes.
    const reference = new Y.Doc({ gc: false });
    let closes = 0;
    let conn = await raw(n.url, "fuzz");
    for (const f of frames) {
      const ok = referenceAccepts(f, reference);
      conn.send(f);
      if (!ok) {
        const closed = await conn.closed;
        expect(closed.reason).toMatch(/^geokv: /);
        closes++;
        conn = await raw(n.url, "fuzz");
      }
    }
    conn.ws.close();
    expect(closes).toBeGreaterThan(500);
    expect(closes).toBeLessThan(2000);
    const expected = docDigest(Y.encodeStateAsUpdate(reference));
    await waitFor("the node's doc matches the reference", async () => JSON.stringify(docDigest(await docState(n.url, "fuzz"))) === JSON.stringify(expected));
    expect((await fetch(`${n.url}/health`)).status).toBe(200);
  });
});

/** What a node must do with a frame: true when it is a valid message (applied to `doc` if it is an update). */
function referenceAccepts(f: Uint8Array, doc: Y.Doc): boolean {
  const d = decoding.createDecoder(f);
  try {
    const type = decoding.readVarUint(d);
    if (type === SYNC) {
      const kind = decoding.readVarUint(d);
      const p = decoding.readVarUint8Array(d);
      if (decoding.hasContent(d)) return false;
      if (kind === 0) {
        Y.decodeStateVector(p);
        return true;
      }
      if (kind !== 1 && kind !== 2) return false;
      if (p.length === 2 && p[0] === 0 && p[1] === 0) return true;
      if (!validateDocUpdate(p)) return false;
      Y.applyUpdate(doc, p);
      return true;
    }
    if (type === AWARENESS) {
      const p = decoding.readVarUint8Array(d);
      return !decoding.hasContent(d) && awarenessUpdateProblem(p) === null;
    }
    if (type === AUTH) {
      decoding.readVarUint(d);
      decoding.readVarString(d);
      return !decoding.hasContent(d);
    }
    if (type === QUERY_AWARENESS) return !decoding.hasContent(d);
    return false;
  } catch {
    return false;
  }
}

describe("tokens", () => {
  let n: TestNode;
  const auth = { authorization: "Bearer rw-token" };
  beforeAll(async () => {
    n = await startTestNode({ env: { GEOKV_CLIENT_TOKEN: "rw-token", GEOKV_READ_TOKEN: "ro-token" } });
  });
  afterAll(async () => n?.close());

  it("refuses a connection without a token (4401) or with a wrong one (4403), with the reason", async () => {
    const none = await (await raw(n.url, "secret")).closed;
    expect(none.code).toBe(4401);
    expect(none.reason).toMatch(/needs a client token/);
    const wrong = await (await raw(n.url, "secret", { query: "?token=nope" })).closed;
    expect(wrong.code).toBe(4403);
    expect(wrong.reason).toMatch(/wrong client token/);
  });

  it("takes the client token as ?token= or as Sec-WebSocket-Protocol, and its edits are written", async () => {
    const byQuery = open(n.url, "secret", { params: { token: "rw-token" } });
    await synced(byQuery);
    byQuery.text.insert(0, "q");
    const byProtocol = open(n.url, "secret", { protocols: ["rw-token"] });
    await synced(byProtocol);
    expect(byProtocol.provider.ws?.protocol).toBe("rw-token");
    byProtocol.text.insert(0, "p");
    await waitFor("both edits written", async () => textOf(await docState(n.url, "secret", auth)).length === 2);
    await waitFor("the providers agree", () => byQuery.text.toString() === byProtocol.text.toString());
  });

  it("a read-only token syncs and receives, but its updates are dropped and it is told so", async () => {
    const writer = open(n.url, "ro", { params: { token: "rw-token" } });
    await synced(writer);
    writer.text.insert(0, "from the writer");
    await waitFor("written", async () => textOf(await docState(n.url, "ro", auth)) === "from the writer");

    const reader = await raw(n.url, "ro", { query: "?token=ro-token" });
    reader.send(message({ uint: SYNC }, { uint: 0 }, { bytes: Y.encodeStateVector(new Y.Doc()) }));
    await waitFor("the reader synced", () => reader.got.some((m) => m[0] === SYNC && m[1] === 1));
    reader.send(updateMessage(textUpdate("from the reader", 99)));
    await waitFor("permission denied", () => reader.got.some((m) => m[0] === AUTH));
    const denied = decoding.createDecoder(reader.got.find((m) => m[0] === AUTH) as Uint8Array);
    decoding.readVarUint(denied);
    expect(decoding.readVarUint(denied)).toBe(0);
    expect(decoding.readVarString(denied)).toMatch(/read-only/);
    // The reader still receives the writer's edits.
    writer.text.insert(0, ">");
    await waitFor("the reader got the edit", () => reader.got.some((m) => m[0] === SYNC && m[1] === 2));
    await waitFor("written", async () => textOf(await docState(n.url, "ro", auth)) === ">from the writer");
    expect(textOf(await docState(n.url, "ro", auth))).not.toContain("reader");
    reader.ws.close();
  });

  it("closes a connection whose presence is over 64 KiB, with the reason (a read token is enough to send presence)", async () => {
    const c = await raw(n.url, "big-presence", { query: "?token=ro-token" });
    const big = message({ uint: 1 }, { uint: 5 }, { uint: 1 }, { str: JSON.stringify({ name: "x".repeat(70 * 1024) }) });
    c.send(message({ uint: AWARENESS }, { bytes: big }));
    const closed = await c.closed;
    expect(closed.code).toBe(1009);
    expect(closed.reason).toMatch(/an awareness update of \d+ bytes \(at most 65536\)/);
    expect((await fetch(`${n.url}/health`)).status).toBe(200);
  });

  it("the read token reads the HTTP data API and cannot write it", async () => {
    const ro = { authorization: "Bearer ro-token" };
    expect((await fetch(`${n.url}/kv/k`, { method: "PUT", body: "1", headers: { ...ro, "content-type": "application/json" } })).status).toBe(403);
    expect((await fetch(`${n.url}/kv/k`, { method: "PUT", body: "1", headers: { ...auth, "content-type": "application/json" } })).status).toBe(200);
    const read = await fetch(`${n.url}/kv/k`, { headers: ro });
    expect(read.status).toBe(200);
    expect(((await read.json()) as { value: unknown }).value).toBe(1);
  });
});
