// `geokv status`: asks every node for /status and prints one table: region,
// node, role, leader, epoch, ops applied, and how many of its peers are up.

import type { ClusterConfig } from "../node/config.js";
import type { StatusView } from "../api/types.js";

/** Prints the cluster table. */
export async function runStatus(cluster: ClusterConfig): Promise<void> {
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
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]) => r.map((x, c) => x.padEnd(widths[c] ?? 0)).join("  ");
  process.stdout.write(`${[line(head), ...rows.map(line)].join("\n")}\n`);
}
