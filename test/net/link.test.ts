// An established link on a fake socket and fake timers: it pings, reports the
// connection's signs of life (a pong, a draining send queue) once per ping
// interval, and never cuts a connection by itself: the replication machine
// decides when a silent link is dead, and the hub terminates it.
import { EventEmitter } from "node:events";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WebSocket } from "ws";
import { asNodeId } from "../../src/core/ids.js";
import { Link } from "../../src/net/link.js";

class FakeWs extends EventEmitter {
  readyState = 1;
  bufferedAmount = 0;
  pings = 0;
  terminated = false;
  sent: Uint8Array[] = [];
  ping(): void {
    this.pings++;
  }
  send(b: Uint8Array): void {
    this.sent.push(b);
  }
  close(): void {
    this.readyState = 2;
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
    this.emit("close", 1006, Buffer.alloc(0));
  }
}

const PING_MS = 100;

function makeLink(ws: FakeWs, o: { sendQueueBytesMax?: number } = {}): { link: Link; downs: string[]; alive: { count: number } } {
  const downs: string[] = [];
  const alive = { count: 0 };
  const link = new Link(ws as unknown as WebSocket, {
    peer: asNodeId("p"),
    pingIntervalMs: PING_MS,
    sendQueueBytesMax: o.sendQueueBytesMax ?? 1000,
    logger: pino({ level: "silent" }),
    onFrame: () => {},
    onDown: (r) => downs.push(r),
    onAlive: () => alive.count++,
  });
  return { link, downs, alive };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "setTimeout", "clearTimeout"] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("link liveness", () => {
  it("pings every interval and never cuts a silent connection by itself", () => {
    const ws = new FakeWs();
    const { link, downs, alive } = makeLink(ws);
    vi.advanceTimersByTime(PING_MS * 200);
    expect(ws.pings).toBe(200);
    expect(ws.terminated).toBe(false);
    expect(downs).toEqual([]);
    expect(alive.count).toBe(0);
    expect(link.isUp).toBe(true);
  });

  it("reports alive once per interval in which a pong arrived", () => {
    const ws = new FakeWs();
    const { alive } = makeLink(ws);
    ws.emit("pong");
    ws.emit("pong");
    vi.advanceTimersByTime(PING_MS);
    expect(alive.count).toBe(1);
    vi.advanceTimersByTime(PING_MS * 5);
    expect(alive.count).toBe(1);
    for (let i = 0; i < 5; i++) {
      ws.emit("pong");
      vi.advanceTimersByTime(PING_MS);
    }
    expect(alive.count).toBe(6);
  });

  it("reports alive while the send queue drains (a slow link, not a dead one), and not once it stops moving", () => {
    const ws = new FakeWs();
    const { alive } = makeLink(ws);
    ws.bufferedAmount = 100_000;
    vi.advanceTimersByTime(PING_MS);
    expect(alive.count).toBe(0);
    for (let i = 0; i < 20; i++) {
      ws.bufferedAmount -= 1000;
      vi.advanceTimersByTime(PING_MS);
    }
    expect(alive.count).toBe(20);
    vi.advanceTimersByTime(PING_MS * 10);
    expect(alive.count).toBe(20);
  });

  it("terminates when told to, reporting down once with the reason given", () => {
    const ws = new FakeWs();
    const { link, downs } = makeLink(ws);
    link.terminate("connection presumed dead");
    link.terminate("again");
    expect(ws.terminated).toBe(true);
    expect(downs).toEqual(["connection presumed dead"]);
    const pings = ws.pings;
    vi.advanceTimersByTime(PING_MS * 10);
    expect(ws.pings).toBe(pings);
  });

  it("reports down once when closed, not again on the socket's close event", () => {
    const ws = new FakeWs();
    const { link, downs } = makeLink(ws);
    link.close(4007, "blocked by fault injection");
    ws.emit("close", 4007, Buffer.from("blocked by fault injection"));
    expect(downs).toEqual(["blocked by fault injection"]);
    expect(link.send({ t: "ack", batch: 1, vv: {} })).toBe(false);
  });
});

describe("link sends", () => {
  it("always takes a frame into an empty queue, and refuses past the bound", () => {
    const ws = new FakeWs();
    const { link } = makeLink(ws, { sendQueueBytesMax: 10 });
    const big = { t: "control", json: JSON.stringify("x".repeat(50)) } as const;
    expect(link.send(big)).toBe(true);
    ws.bufferedAmount = 5;
    expect(link.send({ t: "ack", batch: 1, vv: {} })).toBe(true);
    expect(link.send(big)).toBe(false);
    ws.bufferedAmount = 10;
    expect(link.send({ t: "ack", batch: 1, vv: {} })).toBe(false);
    expect(ws.sent.length).toBe(2);
  });
});
