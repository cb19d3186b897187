// Live documents while the region has no leader, on real processes: a region
// of three nodes loses two, so the third cannot elect itself. Its client's
// edits wait in the room's bounded queue; past the bound the connection is
// closed with a reason (and the stock client reconnects later); once the
// region has a leader again every edit is written, none lost.

import { afterAll, beforeAll, expect, it } from "vitest";
import { call, startProcCluster, waitFor, type ProcCluster } from "../support/proc-cluster.js";
import { editor, httpText, metric, synced, type Editor } from "./support.js";

let c: ProcCluster;
let e: Editor | undefined;
const url = (node: string) => c.urls.get(node) as string;

beforeAll(async () => {
  c = await startProcCluster([{ region: "solo", nodes: 3 }], { env: { GEOKV_MAX_VALUE_BYTES: "4096", GEOKV_YJS_QUEUE_BYTES: "8192" } });
  await waitFor("a leader", async () => (await call(`${url("solo-3")}/status`)).body.leader !== null, 30_000);
}, 90_000);

afterAll(async () => {
  e?.destroy();
  await c?.close();
});

it("edits wait for a leader in a bounded queue, an overflow closes the connection with a reason, and every edit is written once a leader is back", async () => {
  e = editor(url("solo-3"), "waiting");
  await synced(e);
  e.text.insert(0, "before ");
  await waitFor("written", async () => (await httpText(url("solo-1"), "waiting")) === "before ");

  await c.stop("solo-1");
  await c.stop("solo-2");
  await waitFor("solo-3 knows it has no leader", async () => (await call(`${url("solo-3")}/status`)).body.leader === null, 20_000);

  // Small edits wait in the queue.
  for (let i = 0; i < 5; i++) e.text.insert(e.text.length, `queued${i} `);
  await waitFor("edits queued", async () => (await metric(url("solo-3"), "geokv_yjs_queue_bytes")) > 0);
  // Two 3 KB edits pass the 8 KB bound: the connection is closed with the reason, and the client reconnects.
  e.text.insert(e.text.length, "a".repeat(3000));
  e.text.insert(e.text.length, "b".repeat(3000));
  e.text.insert(e.text.length, "c".repeat(3000));
  await waitFor("closed for the full queue", () => e?.closes.some((x) => x.code === 4503) === true, 20_000);
  const closed = e.closes.find((x) => x.code === 4503) as { reason: string };
  expect(closed.reason).toMatch(/edits wait for a region leader; \d+ bytes of edits wait to be written \(bound 8192\)/);
  expect(await metric(url("solo-3"), "geokv_yjs_queue_bytes")).toBeLessThanOrEqual(8192);

  await c.start("solo-1");
  await c.start("solo-2");
  const expected = e.text.toString();
  await waitFor("every edit written on every node", async () => {
    const texts = await Promise.all(["solo-1", "solo-2", "solo-3"].map((n) => httpText(url(n), "waiting")));
    return texts.every((t) => t === expected);
  }, 40_000);
  expect(expected).toContain("queued4 ");
  expect(expected).toContain("c".repeat(3000));
  await waitFor("the queue drained", async () => (await metric(url("solo-3"), "geokv_yjs_queue_bytes")) === 0);
  await waitFor("the client reconnected", () => e?.provider.synced === true, 20_000);
});
