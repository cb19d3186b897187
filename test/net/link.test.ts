// The liveness reaper of an established link, on a fake socket and fake
// timers: it must cut a connection that has gone silent, and must not cut one
// that is merely slow (its queue draining) or busy talking.
import { EventEmitter } from "node:events";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WebSocket } from "ws";
import { asNodeId } from "../../src/core/ids.js";
import { encodeFrame } from "../../src/net/frames.js";
import { Link, PONGS_MISSED_MAX } from "../../src/net/link.js";

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

function makeLink(ws: FakeWs, o: { sendQueueBytesMax?: number } = {}): { link: Link; downs: string[] } {
  const downs: string[] = [];
  const link = new Link(ws as unknown as WebSocket, {
    peer: asNodeId("p"),
    pingIntervalMs: PING_MS,
    sendQueueBytesMax: o.sendQueueBytesMax ?? 1000,
    logger: pino({ level: "silent" }),
    onFrame: () => {},
    onDown: (r) => downs.push(r),
  });
  return { link, downs };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "setTimeout", "clearTimeout"] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("link liveness", () => {
  it("terminates a silent connection after PONGS_MISSED_MAX unanswered pings, once", () => {
    const ws = new FakeWs();
    const { link, downs } = makeLink(ws);
    vi.advanceTimersByTime(PING_MS * PONGS_MISSED_MAX);
    expect(ws.terminated).toBe(false);
    expect(ws.pings).toBe(PONGS_MISSED_MAX);
    vi.advanceTimersByTime(PING_MS);
    expect(ws.terminated).toBe(true);
    expect(downs).toEqual([`no pong for ${PONGS_MISSED_MAX} pings: connection presumed dead`]);
    expect(link.isUp).toBe(false);
    vi.advanceTimersByTime(PING_MS * 10);
    expect(downs.length).toBe(1);
  });

  it("keeps a connection that answers pings", () => {
    const ws = new FakeWs();
    const { downs } = makeLink(ws);
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(PING_MS);
      ws.emit("pong");
    }
    expect(ws.terminated).toBe(false);
    expect(downs).toEqual([]);
  });

  it("keeps a connection whose peer keeps sending, even without pongs", () => {
    const ws = new FakeWs();
    const { downs } = makeLink(ws);
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(PING_MS);
      ws.emit("message", Buffer.from(encodeFrame({ t: "ack", batch: i, vv: {} })), true);
    }
    expect(downs).toEqual([]);
  });

  it("keeps a slow connection whose send queue drains, and cuts it once the queue stops moving", () => {
    const ws = new FakeWs();
    const { downs } = makeLink(ws);
    ws.bufferedAmount = 100_000;
    for (let i = 0; i < 20; i++) {
      ws.bufferedAmount -= 1000;
      vi.advanceTimersByTime(PING_MS);
    }
    expect(downs).toEqual([]);
    vi.advanceTimersByTime(PING_MS * (PONGS_MISSED_MAX + 1));
    expect(downs.length).toBe(1);
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
