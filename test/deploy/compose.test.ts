// The docker-compose demo is validated here in-process, with no Docker
// tooling: docker-compose.yml is parsed with `yaml`, checked by ajv against
// the Compose Specification schema kept in deploy/compose-spec.json (source
// and version in deploy/README.md), and checked against the region files the
// containers load. Broken copies show each check fails with a clear message.
// (.ci/run also runs Debian's `docker-compose config -q` as an extra check.)

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isConfigError, loadCluster, type ClusterConfig } from "../../src/node/config.js";
import { checkComposeAgainstCluster, composeSchemaValidator, imagePathOf, parseCompose } from "./compose-checks.js";

const COMPOSE = readFileSync("docker-compose.yml", "utf8");
const validate = composeSchemaValidator();

function composeCluster(): ClusterConfig {
  const cluster = loadCluster("deploy/compose-regions");
  if (isConfigError(cluster)) throw new Error(JSON.stringify(cluster));
  return cluster;
}

const regionsInImage = imagePathOf(readFileSync("Dockerfile", "utf8"), "deploy/compose-regions");

/** Every problem with `text`: schema first, then agreement with the region files. */
function problems(text: string): string[] {
  const doc = parseCompose(text);
  return [...validate(doc), ...checkComposeAgainstCluster(doc, composeCluster(), regionsInImage ?? "(not copied)")];
}

describe("docker-compose demo", () => {
  it("the schema is the Compose Specification and the Dockerfile ships the compose region files", () => {
    const schema = JSON.parse(readFileSync("deploy/compose-spec.json", "utf8")) as { title: string; $id: string };
    expect(schema.title).toBe("Compose Specification");
    expect(schema.$id).toBe("compose_spec.json");
    expect(regionsInImage).toBe("/app/compose-regions");
  });

  it("docker-compose.yml is valid Compose and matches deploy/compose-regions", () => {
    expect(problems(COMPOSE)).toEqual([]);
    const cluster = composeCluster();
    expect(cluster.nodes.size).toBe(9);
    for (const n of cluster.nodes.values()) expect(n.url).toBe(`http://${n.id}:${n.port}`);
  });

  it("a misspelled key fails the schema, naming the service and the key", () => {
    const broken = COMPOSE.replace('ports: ["7201:7201"]', 'prots: ["7201:7201"]');
    expect(broken).not.toBe(COMPOSE);
    const p = problems(broken);
    expect(p).toContain('/services/eu-west-1: unknown key "prots" (not in the Compose Specification)');
    // …and the node now publishes nothing, which the cluster check says too.
    expect(p.some((x) => x.includes("service eu-west-1") && x.includes("must publish 7201:7201"))).toBe(true);
  });

  it("a wrong type fails the schema", () => {
    const broken = COMPOSE.replace("restart: unless-stopped", "restart: [unless-stopped]");
    expect(problems(broken).some((x) => x.startsWith("/services/us-east-1/restart: must be string"))).toBe(true);
  });

  it("a published port that is not the node's URL port is reported", () => {
    const broken = COMPOSE.replace('ports: ["7202:7202"]', 'ports: ["7299:7202"]');
    expect(problems(broken)).toEqual([
      "service eu-west-2 (node eu-west-2, http://eu-west-2:7202): must publish 7202:7202 (its URL's port, on the host too), publishes 7299:7202",
    ]);
  });

  it("a listen port, a node name or a region dir that disagrees with the region files is reported", () => {
    const broken = COMPOSE.replace('"--listen", "0.0.0.0:7303"', '"--listen", "0.0.0.0:7333"')
      .replace('"--node", "us-east-3"', '"--node", "us-east-9"')
      .replace('"--node", "eu-west-1", "--regions", "/app/compose-regions"', '"--node", "eu-west-1", "--regions", "/app/regions"');
    const p = problems(broken);
    expect(p).toContain("service ap-south-3 (node ap-south-3, http://ap-south-3:7303): listens on 0.0.0.0:7333 but its URL's port is 7303");
    expect(p).toContain('node us-east-3 (us-east) has no service whose command runs "--node us-east-3"');
    expect(p).toContain("service us-east-3 runs node us-east-9, which is not in the region files");
    expect(p).toContain('service eu-west-1 (node eu-west-1, http://eu-west-1:7201): --regions is "/app/regions", but the region files are at /app/compose-regions in the image');
  });

  it("networks: a node off the shared network, or a region without its own, is reported", () => {
    const offWan = COMPOSE.replace("container_name: ap-south-1\n    networks: [ap-south, wan]", "container_name: ap-south-1\n    networks: [ap-south]");
    expect(offWan).not.toBe(COMPOSE);
    const p = problems(offWan);
    expect(p).toContain("nodes ap-south-1 and eu-west-1 share no network: ap-south-1 is on ap-south, eu-west-1 on eu-west, wan");
    const allOnWan = COMPOSE.replace(/networks: \[[a-z-]+, wan\]/g, "networks: [wan]");
    expect(problems(allOnWan)).toContain(
      "region eu-west has no network of its own (one all its nodes are on and no other region's): disconnecting it from the shared network would split it",
    );
    const undeclared = COMPOSE.replace("networks: [eu-west, wan]", "networks: [eu-wset, wan]");
    expect(problems(undeclared).some((x) => x.includes('network "eu-wset" is not declared'))).toBe(true);
  });
});
