// The node's metrics as Prometheus sees them: geokv_peer_bytes_sent_total is a
// counter that adds the hub's cumulative byte count as deltas (it never goes
// back), and geokv_event_loop_delay_seconds reports max and p99 of the delay
// since the previous scrape, resetting at every scrape.
import { afterEach, describe, expect, it } from "vitest";
import { createMetrics, type NodeMetrics } from "../../src/node/metrics.js";
import { waitFor } from "../support/cluster-files.js";

let metrics: NodeMetrics | undefined;
afterEach(() => metrics?.close());

function value(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
  if (line === undefined) throw new Error(`no ${name}{${labels}} in:\n${text}`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

function busyMs(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Block the event loop on purpose: the monitor must see the stall.
  }
}

describe("node metrics", () => {
  it("geokv_peer_bytes_sent_total is a counter fed by deltas of the cumulative count", async () => {
    const sent = { ops: 0, other: 0 };
    metrics = createMetrics({ storageBytes: () => 0, peerBytesSent: () => ({ ...sent }) }, false);
    sent.ops = 100;
    sent.other = 7;
    const first = await metrics.registry.metrics();
    expect(first).toContain("# TYPE geokv_peer_bytes_sent_total counter");
    expect(value(first, "geokv_peer_bytes_sent_total", 'kind="ops"')).toBe(100);
    expect(value(first, "geokv_peer_bytes_sent_total", 'kind="other"')).toBe(7);
    sent.ops = 250;
    const second = await metrics.registry.metrics();
    expect(value(second, "geokv_peer_bytes_sent_total", 'kind="ops"')).toBe(250);
    expect(value(second, "geokv_peer_bytes_sent_total", 'kind="other"')).toBe(7);
    // A scrape with nothing new adds nothing.
    expect(value(await metrics.registry.metrics(), "geokv_peer_bytes_sent_total", 'kind="ops"')).toBe(250);
  });

  it("geokv_peer_bytes_sent_total reads 0 before the first frame instead of missing", async () => {
    // A labelled counter that was never incremented exports no sample; the
    // replication bench (and any rate() over it) found no series on a node
    // that had not sent yet.
    metrics = createMetrics({ storageBytes: () => 0, peerBytesSent: () => ({ ops: 0, other: 0 }) }, false);
    const text = await metrics.registry.metrics();
    expect(value(text, "geokv_peer_bytes_sent_total", 'kind="ops"')).toBe(0);
    expect(value(text, "geokv_peer_bytes_sent_total", 'kind="other"')).toBe(0);
  });

  it("geokv_event_loop_delay_seconds shows a stall in the next scrape, then resets", async () => {
    metrics = createMetrics({ storageBytes: () => 0 }, false);
    await new Promise((r) => setTimeout(r, 50));
    busyMs(120);
    await new Promise((r) => setTimeout(r, 30));
    const stalled = await metrics.registry.metrics();
    expect(stalled).toContain("# TYPE geokv_event_loop_delay_seconds gauge");
    expect(value(stalled, "geokv_event_loop_delay_seconds", 'stat="max"')).toBeGreaterThan(0.08);
    expect(value(stalled, "geokv_event_loop_delay_seconds", 'stat="p99"')).toBeGreaterThan(0);
    // Reset: the 120 ms stall is not reported again (a loaded machine may still add a little delay).
    const stalledMax = value(stalled, "geokv_event_loop_delay_seconds", 'stat="max"');
    const m = metrics;
    await waitFor("a scrape without the stall", async () => value(await m.registry.metrics(), "geokv_event_loop_delay_seconds", 'stat="max"') < stalledMax, 5000, 20);
  });

  it("geokv_gc_pause_seconds shows a collection in the next scrape, then resets", async () => {
    metrics = createMetrics({ storageBytes: () => 0 }, false);
    const m = metrics;
    // Garbage enough to make V8 collect: a few young-generation passes at least.
    const churn = () => {
      let keep = 0;
      for (let i = 0; i < 200_000; i++) keep += { i, s: `v${i}` }.s.length;
      return keep;
    };
    let seen = "";
    await waitFor("a scrape that saw a GC pause", async () => {
      churn();
      await new Promise((r) => setTimeout(r, 10));
      seen = await m.registry.metrics();
      return value(seen, "geokv_gc_pause_seconds", 'stat="count"') > 0;
    }, 10_000, 0);
    expect(seen).toContain("# TYPE geokv_gc_pause_seconds gauge");
    expect(value(seen, "geokv_gc_pause_seconds", 'stat="max"')).toBeGreaterThan(0);
    // Reset: once no garbage is made, a scrape counts no pause (without the reset the count only grows).
    await waitFor("a scrape without a GC pause", async () => {
      const quiet = await m.registry.metrics();
      return value(quiet, "geokv_gc_pause_seconds", 'stat="count"') === 0 && value(quiet, "geokv_gc_pause_seconds", 'stat="max"') === 0;
    }, 5000, 20);
  });
});
