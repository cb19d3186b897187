// A node that shuts down with live-doc edits still waiting in a room's queue
// (here a long batch delay holds them) writes them before it closes its
// clients: the author may have left already, and nobody would send them again.

import { afterEach, expect, it } from "vitest";
import WebSocket from "ws";
import * as encoding from "lib0/encoding";
import * as Y from "yjs";
import type { NodeId } from "../../src/core/ids.js";
import { formatConfigError, isConfigError, loadCluster } from "../../src/node/config.js";
import { formatSettingsError, isSettingsError, resolveSettings } from "../../src/node/settings.js";
import { startNode, type RunningNode } from "../../src/server.js";
import { makeTempCluster, waitFor, type TempCluster } from "../support/cluster-files.js";
import { httpText, metric } from "./support.js";

let tmp: TempCluster | undefined;
let node: RunningNode | undefined;
afterEach(async () => {
  await node?.close();
  tmp?.cleanup();
});

async function start(t: TempCluster): Promise<RunningNode> {
  const cluster = loadCluster(t.regionsDir);
  if (isConfigError(cluster)) throw new Error(formatConfigError(cluster));
  const settings = resolveSettings({ "yjs-batch-ms": "60000" }, { GEOKV_LOG_LEVEL: "silent" });
  if (isSettingsError(settings)) throw new Error(formatSettingsError(settings));
  const n = await startNode({ cluster, nodeId: "s-1" as NodeId, dataDir: t.dataDir, settings });
  await waitFor("the node leads", async () => (await fetch(`${t.urls.get("s-1")}/ready`)).status === 200);
  return n;
}

it("writes the queued edits of clients that already left before it closes", async () => {
  tmp = await makeTempCluster([{ region: "s", nodes: 1 }]);
  const url = tmp.urls.get("s-1") as string;
  node = await start(tmp);
  const d = new Y.Doc();
  d.getText("t").insert(0, "written at shutdown");
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 0);
  encoding.writeVarUint(e, 2);
  encoding.writeVarUint8Array(e, Y.encodeStateAsUpdate(d));
  const ws = new WebSocket(`${url.replace("http", "ws")}/yjs/leaving`);
  await new Promise((r) => ws.once("open", r));
  ws.send(encoding.toUint8Array(e));
  ws.close();
  // The 60 s batch delay holds it in the queue.
  await waitFor("queued", async () => (await metric(url, "geokv_yjs_queue_bytes")) > 0);
  expect(await httpText(url, "leaving")).toBe("");
  await node.close();
  node = await start(tmp);
  expect(await httpText(url, "leaving")).toBe("written at shutdown");
});
