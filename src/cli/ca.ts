// The CA a command that talks to nodes trusts for https:// URLs: `--ca FILE`,
// else GEOKV_CA, else only the system store (Node 20's fetch). Read once,
// before any request, so a wrong path is a usage error naming the file, not a
// certificate error from every node.

import { readFileSync } from "node:fs";
import { createHttpsFetch } from "../client/https-fetch.js";

/** What a command trusts: the CA's PEM (for the SDK) and a fetch that trusts it (for the plain calls). */
export interface Trust {
  readonly ca: Buffer | undefined;
  readonly fetch: typeof fetch;
}

/** The trust for `--ca` (or GEOKV_CA), or a problem description naming the file. */
export function loadTrust(flag: string | undefined, env: NodeJS.ProcessEnv, read: (path: string) => Buffer = readFileSync): Trust | string {
  const fromEnv = env.GEOKV_CA === undefined || env.GEOKV_CA === "" ? undefined : env.GEOKV_CA;
  const path = flag ?? fromEnv;
  if (path === undefined) return { ca: undefined, fetch: globalThis.fetch };
  const source = flag !== undefined ? "--ca" : "GEOKV_CA";
  let ca: Buffer;
  try {
    ca = read(path);
  } catch (e) {
    return `${source}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  if (!ca.includes("-----BEGIN CERTIFICATE-----")) return `${source}: ${path} is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)`;
  return { ca, fetch: createHttpsFetch({ ca }) };
}
