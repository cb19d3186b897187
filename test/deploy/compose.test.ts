// The docker-compose demo is validated here without a Docker engine: Debian's
// docker-compose parses and resolves the file (`config -q`), and the region
// files the containers use load as a valid cluster whose node URLs name the
// compose services.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isConfigError, loadCluster } from "../../src/node/config.js";

describe("docker-compose demo", () => {
  it("docker-compose config accepts the file", () => {
    // .ci/run installs docker-compose from Debian; a missing binary is a setup error, not a pass.
    const out = execFileSync("docker-compose", ["config", "--services"], { encoding: "utf8" });
    const services = out.trim().split("\n").sort();
    expect(services).toHaveLength(9);
    expect(services).toContain("us-east-1");
  });

  it("the containers' region files form a valid cluster of the compose services", () => {
    const cluster = loadCluster("deploy/compose-regions");
    if (isConfigError(cluster)) throw new Error(JSON.stringify(cluster));
    expect(cluster.nodes.size).toBe(9);
    const compose = readFileSync("docker-compose.yml", "utf8");
    for (const n of cluster.nodes.values()) {
      expect(n.url).toBe(`http://${n.id}:${n.port}`);
      expect(compose).toContain(`"--node", "${n.id}"`);
      expect(compose).toContain(`"--listen", "0.0.0.0:${n.port}"`);
    }
  });
});
