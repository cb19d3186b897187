// `geokv status`: asks every node for /status and prints one table: region,
// node, role, leader, epoch, ops applied, and how many of its peers are up.
// `geokv watch` redraws the same table.

import type { ClusterConfig } from "../node/config.js";
import type { StatusView } from "../api/types.js";

/** Rows under a header, columns padded to their widest cell, two spaces apart. */
export function formatTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (r: readonly string[]) => r.map((x, c) => x.padEnd(widths[c] ?? 0)).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

/** The status table of every node in `cluster`, as it answers now (unreachable ones say so). */
export async function statusTable(cluster: ClusterConfig, fetch: typeof globalThis.fetch = globalThis.fetch): Promise<string> {
  const nodes = [...cluster.nodes.values()];
  const answers = await Promise.all(
    nodes.map(async (n) => {
      try {
        const res = await fetch(`${n.url}/status`, { signal: AbortSignal.timeout(2000) });
        return (await res.json()) as StatusView;
      } catch {
        return null;
      }
    }),
  );
  const head = ["REGION", "NODE", "ROLE", "LEADER", "EPOCH", "OPS", "LINKS UP", "MAX LAG"];
  const rows = nodes.map((n, i) => {
    const s = answers[i];
    if (!s) return [n.region, n.id, "unreachable", "-", "-", "-", "-", "-"];
    const ops = Object.values(s.vv).reduce((a, b) => a + b, 0);
    const up = s.peers.filter((p) => p.state === "up").length;
    const lag = Math.max(0, ...s.peers.map((p) => p.lagOps));
    return [s.region, s.node, s.role, s.leader ?? "none", String(s.epoch), String(ops), `${up}/${s.peers.length}`, String(lag)];
  });
  return formatTable(head, rows);
}

/** Prints the cluster table. */
export async function runStatus(cluster: ClusterConfig, fetch: typeof globalThis.fetch = globalThis.fetch): Promise<void> {
  process.stdout.write(`${await statusTable(cluster, fetch)}\n`);
}
