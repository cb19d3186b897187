// `geokv stepdown --region R`: finds region R's leader through /status of
// R's nodes (from the region files, or --node URL when that node is in R)
// and asks it to step down with the admin token, so that another node of R
// is elected. A follower asked instead forwards to its leader, so a node of
// R is enough when the leader's URL is unknown.

import type { StatusView } from "../api/types.js";
import { isConfigError, type ClusterConfig, type ConfigError } from "../node/config.js";
import type { CliCommand } from "./args.js";
import { printFailure } from "./data-commands.js";

type StepdownCommand = Extract<CliCommand, { cmd: "stepdown" }>;

/** Per request: /status answers at once; a stepdown forwarded to the leader has its own 5 s bound on the node. */
const REQUEST_TIMEOUT_MS = 7_000;

async function statusOf(fetch: typeof globalThis.fetch, url: string): Promise<StatusView | null> {
  try {
    const res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (res.status !== 200) return null;
    return (await res.json()) as StatusView;
  } catch {
    return null;
  }
}

/** Where to send the stepdown, or a usage problem (exit 2) or a node problem (exit 1). */
type Target = { readonly url: string } | { readonly usage: string } | { readonly unreachable: string };

async function findTarget(cmd: StepdownCommand, cluster: ClusterConfig | ConfigError, fetch: typeof globalThis.fetch): Promise<Target> {
  const config = isConfigError(cluster) ? null : cluster;
  const region = config?.regions.find((r) => r.region === cmd.region);
  const urlOf = (id: string | null): string | undefined => (id === null ? undefined : config?.nodes.get(id as never)?.url);
  if (cmd.node !== undefined) {
    const s = await statusOf(fetch, cmd.node);
    if (s === null) return { unreachable: `cannot reach ${cmd.node}` };
    // Its leader's URL when the files name it; else the node itself, which forwards.
    if (s.region === cmd.region) return { url: urlOf(s.leader) ?? cmd.node };
    if (region === undefined) return { usage: `${cmd.node} is node ${s.node} of region ${s.region}, not ${cmd.region}; pass --node URL of a node in ${cmd.region}` };
  }
  if (config === null) return { usage: `no region files to find ${cmd.region}'s nodes in ${cmd.regions}; pass --node URL of a node in ${cmd.region}` };
  if (region === undefined) return { usage: `no region ${JSON.stringify(cmd.region)} in ${cmd.regions}; regions: ${config.regions.map((r) => r.region).join(", ")}` };
  const urls = region.nodes.map((n) => n.url);
  const answers = await Promise.all(urls.map((u) => statusOf(fetch, u)));
  const leaders = answers.filter((s): s is StatusView => s !== null && s.role === "leader").sort((a, b) => b.epoch - a.epoch);
  const leader = leaders[0];
  if (leader !== undefined) return { url: urlOf(leader.node) ?? (urls[answers.indexOf(leader)] as string) };
  const named = answers.map((s) => urlOf(s?.leader ?? null)).find((u) => u !== undefined);
  if (named !== undefined) return { url: named };
  // No leader known: any live node answers why (no_leader), which is the error to show.
  const live = urls.find((_, i) => answers[i] !== null);
  if (live !== undefined) return { url: live };
  return { unreachable: `cannot reach any node of region ${cmd.region} (${urls.join(", ")})` };
}

/** Runs `geokv stepdown`; returns the exit code. */
export async function runStepdown(cmd: StepdownCommand, loadCluster: (dir: string) => ClusterConfig | ConfigError, fetch: typeof globalThis.fetch = globalThis.fetch): Promise<number> {
  const json = cmd.json === true;
  const target = await findTarget(cmd, loadCluster(cmd.regions), fetch);
  if ("usage" in target) {
    process.stderr.write(`geokv: ${target.usage}\n`);
    return 2;
  }
  if ("unreachable" in target) {
    printFailure(json, { code: "unavailable", message: target.unreachable, status: null, node: null }, target.unreachable);
    return 1;
  }
  const token = cmd.adminToken ?? process.env.GEOKV_ADMIN_TOKEN;
  let res: Response;
  let body: unknown;
  try {
    res = await fetch(`${target.url}/leadership/stepdown`, {
      method: "POST",
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    body = await res.json().catch(() => null);
  } catch (err) {
    const message = `cannot reach ${target.url}: ${(err as Error).message}`;
    printFailure(json, { code: "unavailable", message, status: null, node: null }, message);
    return 1;
  }
  const node = res.headers.get("x-geokv-node");
  if (res.status !== 202) {
    const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = typeof e?.code === "string" ? e.code : "internal";
    const message = typeof e?.message === "string" ? e.message : `unexpected answer ${res.status} from ${target.url}`;
    printFailure(json, { code, message, status: res.status, node }, `${res.status} ${code}: ${message}`);
    return 1;
  }
  const steppedDown = (body as { steppedDown?: unknown } | null)?.steppedDown;
  const who = typeof steppedDown === "string" ? steppedDown : (node ?? target.url);
  process.stdout.write(
    json ? `${JSON.stringify({ region: cmd.region, steppedDown: who })}\n` : `${who} stepped down; region ${cmd.region} is electing another leader\n`,
  );
  return 0;
}
