// Test support for the compose demo: checks docker-compose.yml in-process, so
// `npm test` needs no Docker tooling. Two kinds of check, both returning
// readable problems instead of throwing, so a test can assert on a broken
// copy: the Compose Specification schema (deploy/compose-spec.json, with ajv),
// and agreement with the region files the containers load (every node has a
// service that runs it, listens on its URL's port, publishes that port and
// shares a network with every peer it must reach).

import { Ajv, type ErrorObject } from "ajv";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parse } from "yaml";
import type { NodeId } from "../../src/core/ids.js";
import type { ClusterConfig, ClusterNode } from "../../src/node/config.js";

const require = createRequire(import.meta.url);

/** The parts of a compose service these checks read; the schema has checked their shapes. */
interface ComposeService {
  readonly command?: string | readonly string[];
  readonly hostname?: string;
  readonly container_name?: string;
  readonly ports?: readonly (string | number | { target: number | string; published?: number | string })[];
  readonly networks?: readonly string[] | Readonly<Record<string, unknown>>;
  readonly environment?: readonly string[] | Readonly<Record<string, unknown>>;
  readonly network_mode?: string;
}

interface ComposeFile {
  readonly services?: Readonly<Record<string, ComposeService>>;
  readonly networks?: Readonly<Record<string, unknown>>;
}

/** A compiled validator for the Compose Specification schema kept at `schemaFile`. */
export function composeSchemaValidator(schemaFile = "deploy/compose-spec.json"): (doc: unknown) => string[] {
  const schema = JSON.parse(readFileSync(schemaFile, "utf8")) as { $schema: string };
  // The spec declares draft-07 as "https://json-schema.org/draft-07/schema";
  // ajv ships the same meta-schema under its "http://…#" id, so register it
  // under the spec's spelling too instead of turning meta-validation off.
  const draft07 = require("ajv/dist/refs/json-schema-draft-07.json") as Record<string, unknown>;
  // The spec uses union types ("type": ["string", "number"]) and type-less
  // object keywords throughout; unknown keywords still fail (strictSchema).
  const ajv = new Ajv({ allErrors: true, allowUnionTypes: true, strictTypes: false });
  ajv.addMetaSchema({ ...draft07, $id: schema.$schema });
  const validate = ajv.compile(schema);
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []).map(formatSchemaError));
}

function formatSchemaError(e: ErrorObject): string {
  const at = e.instancePath === "" ? "(top level)" : e.instancePath;
  if (e.keyword === "additionalProperties") return `${at}: unknown key "${String(e.params.additionalProperty)}" (not in the Compose Specification)`;
  return `${at}: ${e.message ?? e.keyword}`;
}

/** Parses compose YAML with merge keys (`<<: *node`) resolved, as docker compose does. */
export function parseCompose(text: string): unknown {
  return parse(text, { merge: true });
}

function commandArgs(s: ComposeService): readonly string[] {
  if (s.command === undefined) return [];
  return typeof s.command === "string" ? s.command.split(/\s+/) : s.command;
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function networksOf(s: ComposeService): string[] {
  if (s.networks === undefined) return ["default"];
  return Array.isArray(s.networks) ? [...(s.networks as readonly string[])] : Object.keys(s.networks);
}

/** [host port, container port] of each published port; long or short syntax. */
function publishedPorts(s: ComposeService): [number | null, number][] {
  return (s.ports ?? []).map((p) => {
    if (typeof p === "object") return [p.published === undefined ? null : Number(p.published), Number(p.target)];
    // [ip:][host:]container[/proto]; a bare container port is published on a random host port.
    const parts = String(p).replace(/\/(tcp|udp)$/, "").split(":");
    const container = Number(parts[parts.length - 1]);
    return [parts.length >= 2 ? Number(parts[parts.length - 2]) : null, container];
  });
}

function envValue(s: ComposeService, name: string): string | undefined {
  const env = s.environment;
  if (env === undefined) return undefined;
  if (Array.isArray(env)) {
    const line = (env as readonly string[]).find((l) => l.startsWith(`${name}=`));
    return line?.slice(name.length + 1);
  }
  const v = (env as Record<string, unknown>)[name];
  return v === undefined || v === null ? undefined : String(v);
}

/** The service whose command runs `node`. */
function serviceForNode(services: Readonly<Record<string, ComposeService>>, node: ClusterNode): [string, ComposeService] | undefined {
  return Object.entries(services).find(([, s]) => flag(commandArgs(s), "--node") === node.id);
}

/** The names a service answers to on its networks: service name, hostname, container name. */
function namesOf(name: string, s: ComposeService): string[] {
  return [name, s.hostname, s.container_name].filter((x): x is string => x !== undefined);
}

/**
 * Problems where docker-compose.yml and the cluster configuration the
 * containers load (`cluster`, found at `regionsDirInContainer`) disagree.
 */
export function checkComposeAgainstCluster(doc: unknown, cluster: ClusterConfig, regionsDirInContainer: string): string[] {
  const problems: string[] = [];
  const file = doc as ComposeFile;
  const services = file.services ?? {};
  const declaredNetworks = new Set(["default", ...Object.keys(file.networks ?? {})]);
  const placed = new Map<string, { service: string; networks: Set<string> }>();

  for (const node of cluster.nodes.values()) {
    const found = serviceForNode(services, node);
    if (found === undefined) {
      problems.push(`node ${node.id} (${node.region}) has no service whose command runs "--node ${node.id}"`);
      continue;
    }
    const [name, s] = found;
    const args = commandArgs(s);
    const where = `service ${name} (node ${node.id}, ${node.url})`;
    if (s.network_mode !== undefined) problems.push(`${where}: network_mode ${s.network_mode} bypasses the compose networks its peers use`);
    if (args[0] !== "node") problems.push(`${where}: command must start with the "node" subcommand, got ${JSON.stringify(args[0])}`);
    const regions = flag(args, "--regions");
    if (regions !== regionsDirInContainer) problems.push(`${where}: --regions is ${JSON.stringify(regions)}, but the region files are at ${regionsDirInContainer} in the image`);
    if (!namesOf(name, s).includes(node.host)) problems.push(`${where}: the URL's host "${node.host}" is not the service's name, hostname or container_name, so peers cannot resolve it`);
    const listen = flag(args, "--listen");
    const listenPort = listen === undefined ? undefined : Number(listen.slice(listen.lastIndexOf(":") + 1));
    if (listenPort !== node.port) problems.push(`${where}: listens on ${listen ?? "its URL (no --listen)"} but its URL's port is ${node.port}`);
    const ports = publishedPorts(s);
    if (!ports.some(([host, container]) => host === node.port && container === node.port)) {
      const shown = ports.map(([h, c]) => `${h ?? "random"}:${c}`).join(", ") || "nothing";
      problems.push(`${where}: must publish ${node.port}:${node.port} (its URL's port, on the host too), publishes ${shown}`);
    }
    const portEnv = envValue(s, "PORT");
    if (portEnv !== undefined && Number(portEnv) !== node.port) problems.push(`${where}: PORT=${portEnv} (the healthcheck's port) is not its URL's port ${node.port}`);
    const networks = new Set(networksOf(s));
    for (const n of networks) if (!declaredNetworks.has(n)) problems.push(`${where}: network "${n}" is not declared under the top-level networks`);
    placed.set(node.id, { service: name, networks });
  }

  for (const [name, s] of Object.entries(services)) {
    const id = flag(commandArgs(s), "--node");
    if (id !== undefined && !cluster.nodes.has(id as NodeId)) problems.push(`service ${name} runs node ${id}, which is not in the region files`);
  }

  // Every node talks to every other (leaders across regions, followers to
  // their leader), so each pair must share a network; and a region's nodes
  // must share one that no other region is on, or cutting the region off
  // the shared network (the README's partition) would cut it apart too.
  const nodes = [...cluster.nodes.values()].filter((n) => placed.has(n.id));
  for (const [i, a] of nodes.entries()) {
    for (const b of nodes.slice(i + 1)) {
      const na = placed.get(a.id)?.networks ?? new Set<string>();
      const nb = placed.get(b.id)?.networks ?? new Set<string>();
      if (![...na].some((n) => nb.has(n))) problems.push(`nodes ${a.id} and ${b.id} share no network: ${a.id} is on ${[...na].join(", ")}, ${b.id} on ${[...nb].join(", ")}`);
    }
  }
  for (const r of cluster.regions) {
    const mine = r.nodes.filter((n) => placed.has(n.id)).map((n) => placed.get(n.id)?.networks ?? new Set<string>());
    const others = nodes.filter((n) => n.region !== r.region).map((n) => placed.get(n.id)?.networks ?? new Set<string>());
    const common = [...(mine[0] ?? [])].filter((net) => mine.every((m) => m.has(net)));
    if (mine.length > 0 && !common.some((net) => others.every((o) => !o.has(net)))) {
      problems.push(`region ${r.region} has no network of its own (one all its nodes are on and no other region's): disconnecting it from the shared network would split it`);
    }
  }
  return problems;
}

/** Where the Dockerfile puts `srcDir` inside the image (WORKDIR-relative COPY), or undefined. */
export function imagePathOf(dockerfile: string, srcDir: string): string | undefined {
  let workdir = "/";
  for (const line of dockerfile.split("\n")) {
    const w = /^WORKDIR\s+(\S+)/.exec(line);
    if (w?.[1] !== undefined) workdir = w[1];
    const c = /^COPY\s+(?!--from)(\S+)\s+(\S+)\s*$/.exec(line);
    if (c?.[1] === srcDir && c[2] !== undefined) {
      const dest = c[2].replace(/^\.\//, "").replace(/\/$/, "");
      return dest.startsWith("/") ? dest : `${workdir.replace(/\/$/, "")}/${dest}`;
    }
  }
  return undefined;
}
